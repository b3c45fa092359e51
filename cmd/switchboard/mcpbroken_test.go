package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// `switchboard mcp` with a config error still starts and answers MCP:
// every tool call returns the problems at file:line and the fix, and says
// so once the file is fixed.
func TestMCPWithConfigErrorAnswers(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	dir := t.TempDir()
	config := filepath.Join(dir, "switchboard.yaml")
	mustWrite(t, config, "settings:\n  socket: "+filepath.Join(dir, "run", "broker.sock")+"\nteams:\n  api:\n    path: /tmp\n    idleTimeout: soon\n", 0o600)
	cmd := exec.Command(binary, "--config", config, "mcp", "--as", "web")
	cmd.Dir = dir
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	sess, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect to switchboard mcp with a broken config: %v\nstderr: %s", err, stderr.String())
	}
	defer sess.Close()
	tools, err := sess.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) == 0 {
		t.Fatalf("list tools: %v %v", err, tools)
	}
	for _, name := range []string{"send_message", "list_teams"} {
		res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{"toTeam": "api", "message": "hi"}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := text(res); !res.IsError || !strings.Contains(got, config+":6: teams.api.idleTimeout") || !strings.Contains(got, "/mcp") {
			t.Errorf("%s: isError %v, text %q; want the problem at file:line and the fix", name, res.IsError, got)
		}
	}
	// Fixed while the server runs: the next call says to reconnect.
	mustWrite(t, config, "settings:\n  socket: "+filepath.Join(dir, "run", "broker.sock")+"\nteams:\n  api:\n    path: /tmp\n", 0o600)
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "list_teams", Arguments: map[string]any{}})
	if err != nil || !strings.Contains(text(res), "fixed now") {
		t.Errorf("after the fix: %v %q", err, text(res))
	}
}
