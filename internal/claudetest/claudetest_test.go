package claudetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

func TestBinaryFromEnv(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "claude")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SWITCHBOARD_CLAUDE", exe)
	if got := Binary(t); got != exe {
		t.Errorf("Binary = %q, want $SWITCHBOARD_CLAUDE %q", got, exe)
	}
}

func TestBinaryRejectsBadEnv(t *testing.T) {
	t.Setenv("SWITCHBOARD_CLAUDE", filepath.Join(t.TempDir(), "missing"))
	if p, err := find(); err == nil {
		t.Errorf("find() = %q, want an error for a missing $SWITCHBOARD_CLAUDE", p)
	}
}

func TestEnvIsolatesConfig(t *testing.T) {
	env := Env(t, fakeapi.New(t))
	dir := ConfigDir(env)
	if dir == "" {
		t.Fatal("Env sets no CLAUDE_CONFIG_DIR")
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("config dir %s not created: %v", dir, err)
	}
	home := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = v
		}
	}
	if real, _ := os.UserHomeDir(); home == "" || home == real {
		t.Errorf("HOME = %q, want a fresh temp dir", home)
	}
}
