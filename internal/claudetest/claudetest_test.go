package claudetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

func TestEscapePath(t *testing.T) {
	long := "/tmp/pr/U/" + strings.Repeat("a", 250)
	tests := []struct {
		dir, want string
	}{
		// All cases below were read off the folders Claude Code 2.1.332 created.
		{"/tmp/a.b_c d/x-y", "-tmp-a-b-c-d-x-y"},
		{"/tmp/pr/A/work", "-tmp-pr-A-work"},
		{"/tmp/pr/U/ü😀x", "-tmp-pr-U----x"}, // ü is one UTF-16 unit, 😀 two
		{long, "-tmp-pr-U-" + strings.Repeat("a", 190) + "-8ytfr4"},
	}
	for _, tt := range tests {
		if got := EscapePath(tt.dir); got != tt.want {
			t.Errorf("EscapePath(%q) = %q, want %q", tt.dir, got, tt.want)
		}
	}
}

func TestSessionFile(t *testing.T) {
	got := SessionFile("/h/.claude", "/srv/my.app", "11111111-1111-4111-8111-111111111111")
	want := "/h/.claude/projects/-srv-my-app/11111111-1111-4111-8111-111111111111.jsonl"
	if got != want {
		t.Errorf("SessionFile = %q, want %q", got, want)
	}
}

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
