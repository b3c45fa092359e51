package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// grantPermission yes and no, decided by the daemon for the team's real
// Claude through permissions__approve: yes lets it change files (even as
// root, where --dangerously-skip-permissions is refused), no does not.
func TestGrantPermissionThroughBroker(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	needsRealClaude(t)
	w := newWorld(t, "web", "api", "db")
	cfg, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(cfg), "description: the api team\n", "description: the api team\n    grantPermission: \"yes\"\n", 1)
	y = strings.Replace(y, "description: the db team\n", "description: the db team\n    grantPermission: \"no\"\n", 1)
	mustWrite(t, w.config, y, 0o600)

	sess := w.proxy("web", nil)
	ctx := context.Background()
	ask := `TOOL Bash {"command":"touch marker.txt"}`

	res, err := send(ctx, sess, "api", ask)
	if err != nil || res.IsError {
		t.Fatalf("ask api: %v %s", err, text(res))
	}
	if _, err := os.Stat(filepath.Join(w.teamDir("api"), "marker.txt")); err != nil {
		t.Fatalf("grantPermission yes: the team's claude did not run its tool (%v); answer %q", err, text(res))
	}

	res, err = send(ctx, sess, "db", ask)
	if err != nil || res.IsError {
		t.Fatalf("ask db: %v %s", err, text(res))
	}
	if _, err := os.Stat(filepath.Join(w.teamDir("db"), "marker.txt")); !os.IsNotExist(err) {
		t.Fatalf("grantPermission no: the tool ran anyway (%v)", err)
	}
	if !strings.Contains(text(res), "does not grant tool permissions") {
		t.Fatalf("grantPermission no: the tool result should carry the broker's refusal, got %q", text(res))
	}
	logs, isErr := callTool(t, sess, "get_logs", map[string]any{"since": "10m"})
	if isErr || !strings.Contains(logs, "permission allow") || !strings.Contains(logs, "permission deny") {
		t.Fatalf("the decisions are not in the broker's log: %s", logs)
	}
}
