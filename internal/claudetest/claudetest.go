// Package claudetest finds the real Claude Code binary for integration tests
// and builds an environment that runs it against internal/fakeapi, isolated
// from the user's own ~/.claude. PROTOCOL.md beside this file records what
// the binary was verified to do.
package claudetest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

// Version is the Claude Code release the tests and PROTOCOL.md were checked
// against; `make claude` installs it.
const Version = "2.1.332"

// cachePath is where `make claude` installs the binary, relative to the
// module root.
const cachePath = ".cache/claude/node_modules/.bin/claude"

// Binary returns the path of the real claude executable: $SWITCHBOARD_CLAUDE,
// else the copy `make claude` installs under the module root, else `claude`
// on PATH. The test is skipped when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := find()
	if err != nil {
		t.Skipf("real Claude Code not found (%v); `make claude` installs it "+
			"(npm install --prefix .cache/claude @anthropic-ai/claude-code@%s)", err, Version)
	}
	return path
}

func find() (string, error) {
	if p := os.Getenv("SWITCHBOARD_CLAUDE"); p != "" {
		if !isExecutable(p) {
			return "", errors.New("$SWITCHBOARD_CLAUDE=" + p + " is not an executable file")
		}
		return p, nil
	}
	if root, err := moduleRoot(); err == nil {
		if p := filepath.Join(root, cachePath); isExecutable(p) {
			return p, nil
		}
	}
	return exec.LookPath("claude")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// moduleRoot walks up from the working directory (a test's package
// directory) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Env returns a complete environment for running claude in a test: a fresh
// HOME and CLAUDE_CONFIG_DIR under t.TempDir (so session files land there and
// the real ~/.claude is never touched), the caller's PATH, and api.Env().
// Session files end up under ConfigDir(env)/projects.
func Env(t testing.TB, api *fakeapi.Server) []string {
	t.Helper()
	home := t.TempDir()
	config := filepath.Join(home, ".claude")
	if err := os.Mkdir(config, 0o700); err != nil {
		t.Fatalf("create claude config dir: %v", err)
	}
	env := []string{
		"HOME=" + home,
		"CLAUDE_CONFIG_DIR=" + config,
		"PATH=" + os.Getenv("PATH"),
		// Claude Code writes temp files and its messaging socket there.
		"TMPDIR=" + os.TempDir(),
		"LANG=C.UTF-8",
	}
	return append(env, api.Env()...)
}

// ConfigDir returns the CLAUDE_CONFIG_DIR set in env, or "" when it has none.
func ConfigDir(env []string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "CLAUDE_CONFIG_DIR="); ok {
			return v
		}
	}
	return ""
}
