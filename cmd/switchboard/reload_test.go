package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// replaceFile saves path the way many editors do: write a new file beside
// it and rename it over the old one.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
	mustWrite(t, tmp, data, 0o600)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// The daemon follows its config: a team added to the file appears, a
// removed one goes, a bad edit is refused at file:line with the old config
// kept, and SIGHUP reloads too; all while another pair keeps its process.
func TestDaemonFollowsConfig(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	w := newWorld(t, "web", "api", "old")
	sess := w.proxy("web", nil)
	ctx := context.Background()
	if res, err := send(ctx, sess, "api", "first"); err != nil || res.IsError {
		t.Fatalf("first ask: %v %v", err, res)
	}
	pids, _ := w.claudeStarts()
	if len(pids) != 1 || !alive(pids[0]) {
		t.Fatalf("claude starts = %v, want one live process", pids)
	}
	apiPID := pids[0]

	orig, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	ghost := w.teamDir("ghost")
	if err := os.MkdirAll(ghost, 0o755); err != nil {
		t.Fatal(err)
	}
	// Drop team "old" (its three lines) and add "ghost".
	cfg := string(orig)
	i := strings.Index(cfg, "  old:\n")
	rest := cfg[i+len("  old:\n"):]
	for n := 0; n < 3; n++ {
		rest = rest[strings.IndexByte(rest, '\n')+1:]
	}
	cfg = cfg[:i] + rest + fmt.Sprintf("  ghost:\n    path: %s\n    description: the new team\n", ghost)
	replaceFile(t, w.config, cfg)

	waitFor(t, "switchboard teams to show ghost and not old", func() bool {
		r := w.run("", "teams")
		return r.code == 0 && strings.Contains(r.stdout, "ghost") && !strings.Contains(r.stdout, "old")
	})
	if !alive(apiPID) {
		t.Errorf("web->api's claude %d died in the reload", apiPID)
	}
	if res, err := send(ctx, sess, "api", "second"); err != nil || res.IsError {
		t.Fatalf("ask after reload: %v %v", err, res)
	}
	if pids, _ := w.claudeStarts(); len(pids) != 1 {
		t.Errorf("claude starts after reload = %v, want web->api's process kept (%d)", pids, apiPID)
	}

	// A bad edit keeps the running config and logs the problem at file:line.
	replaceFile(t, w.config, cfg+"  broken:\n    path: /tmp\n    idleTimeout: soon\n")
	logPath := filepath.Join(w.root, "run", "daemon.log")
	waitFor(t, "the daemon to log the bad config at file:line", func() bool {
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), "config not reloaded") && strings.Contains(string(data), w.config+":")
	})
	// (The CLI itself refuses the bad file; ask the daemon through the proxy.)
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "list_teams", Arguments: map[string]any{}})
	if err != nil || !strings.Contains(text(res), "ghost") || strings.Contains(text(res), "broken") {
		t.Errorf("list_teams after a bad edit = %v %q, want the running config kept", err, text(res))
	}

	// SIGHUP reloads: restore the original by copying in place (no rename
	// needed for SIGHUP, but the watcher may see it first; either is fine).
	replaceFile(t, w.config, string(orig))
	if err := syscall.Kill(w.daemonPID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "team old to come back", func() bool {
		r := w.run("", "teams")
		return r.code == 0 && strings.Contains(r.stdout, "old") && !strings.Contains(r.stdout, "ghost")
	})
	if !alive(apiPID) {
		t.Errorf("web->api's claude %d died across reloads", apiPID)
	}
}
