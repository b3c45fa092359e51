package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Claude Code itself as the MCP client: the web team's Claude, told by its
// model to call switchboard's send_message, gets the api team's answer back
// as the tool result.
func TestClaudeCodeCallsSendMessage(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	needsRealClaude(t)
	w := newWorld(t, "web", "api")
	mcpConfig := filepath.Join(w.root, "mcp.json")
	cfg, _ := json.Marshal(map[string]any{"mcpServers": map[string]any{"switchboard": map[string]any{
		"type": "stdio", "command": binary, "args": []string{"mcp", "--config", w.config, "--as", "web"},
	}}})
	mustWrite(t, mcpConfig, string(cfg), 0o600)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.claude, "-p", "--output-format", "json",
		"--mcp-config", mcpConfig, "--strict-mcp-config",
		"--allowedTools", "mcp__switchboard__send_message")
	cmd.Dir = w.teamDir("web")
	cmd.Env = w.env
	// The person's prompt is the fake model's script: call the tool.
	cmd.Stdin = strings.NewReader(`TOOL mcp__switchboard__send_message {"toTeam":"api","message":"which port does the api listen on?"}`)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("claude: %v\nstdout: %s\nstderr: %s", err, out, stderr)
	}
	var res struct {
		Result  string `json:"result"`
		IsError bool   `json:"is_error"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("claude output %q: %v", out, err)
	}
	// The web Claude's final text is "TOOL RESULT: <what send_message
	// returned>", and that holds the api Claude's echo, written in api's
	// dir. (Claude Code shows the model the structured result, JSON with
	// the answer under "response", rather than the text content.)
	if res.IsError || !strings.HasPrefix(res.Result, "TOOL RESULT: ") || !strings.Contains(res.Result, "ECHO: ") ||
		!strings.Contains(res.Result, "which port does the api listen on?") ||
		!strings.Contains(res.Result, "CWD: "+w.teamDir("api")) {
		t.Fatalf("web Claude's result = %q (is_error %v), want the api team's answer as the tool result", res.Result, res.IsError)
	}
	// The api team was asked by web: the session is web->api.
	r := w.run("", "sessions")
	if got := lines(r.stdout); len(got) != 2 || !strings.HasPrefix(got[1], "web ") || strings.Fields(got[1])[1] != "api" {
		t.Errorf("sessions after the call: %q", r.stdout)
	}
	var sawToolResult bool
	for _, req := range w.api.Turns() {
		if req.HasToolResult && strings.Contains(req.ToolResult, "CWD: "+w.teamDir("api")) {
			sawToolResult = true
		}
	}
	if !sawToolResult {
		t.Error("the fake API never saw the api team's answer as a tool_result")
	}
	_ = os.Remove(mcpConfig)
}
