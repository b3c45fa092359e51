package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/hosts/claudepath"
	"github.com/switchboard-mcp/switchboard/internal/claudetest"
)

func callTool(t *testing.T, sess *mcp.ClientSession, name string, args map[string]any) (string, bool) {
	t.Helper()
	res, err := sess.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return text(res), res.IsError
}

// The whole local path as a user meets it: a real MCP client on
// `switchboard mcp`, the daemon, the real Claude Code in the team's
// directory, and the session surviving a daemon restart.
func TestSpineThroughBinary(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	needsRealClaude(t)
	w := newWorld(t, "web", "api")
	sess := w.proxy("web", nil)
	ctx := context.Background()

	res, err := send(ctx, sess, "api", "how does auth work?")
	if err != nil || res.IsError {
		t.Fatalf("first ask: %v %s", err, text(res))
	}
	if a := text(res); !strings.Contains(a, "how does auth work?") || !strings.Contains(a, "CWD: "+w.teamDir("api")) {
		t.Fatalf("answer %q: want the question echoed from %s", a, w.teamDir("api"))
	}
	var first struct {
		SessionID string `json:"sessionId"`
	}
	raw, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(raw, &first); err != nil || first.SessionID == "" {
		t.Fatalf("no sessionId in %s", raw)
	}

	res, err = send(ctx, sess, "api", "and refresh tokens?")
	if err != nil || res.IsError {
		t.Fatalf("second ask: %v %s", err, text(res))
	}
	status, _ := callTool(t, sess, "team_status", map[string]any{"team": "api"})
	if !strings.Contains(status, `"sessionId": "`+first.SessionID+`"`) || !strings.Contains(status, `"messageCount": 2`) {
		t.Fatalf("team_status after two asks: %s", status)
	}
	file := claudepath.SessionFile(claudetest.ConfigDir(w.env), w.teamDir("api"), first.SessionID)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("session file: %v", err)
	}
	for _, q := range []string{"how does auth work?", "and refresh tokens?"} {
		if !strings.Contains(string(data), q) {
			t.Fatalf("session file %s lacks %q", file, q)
		}
	}
	report, isErr := callTool(t, sess, "session_report", map[string]any{"team": "api"})
	if isErr || !strings.Contains(report, "and refresh tokens?") || !strings.Contains(report, `"role": "assistant"`) {
		t.Fatalf("session_report: %s", report)
	}

	// session_cancel interrupts a slow turn; the next ask works.
	slow := make(chan string, 1)
	go func() {
		r, err := send(ctx, sess, "api", "SLEEP 60s\nslow question")
		if err != nil {
			slow <- err.Error()
			return
		}
		slow <- text(r)
	}()
	waitFor(t, "the slow turn to reach the API", func() bool { return w.api.Active() > 0 })
	if out, isErr := callTool(t, sess, "session_cancel", map[string]any{"team": "api"}); isErr || !strings.Contains(out, "interrupted message") {
		t.Fatalf("session_cancel: %s", out)
	}
	select {
	case got := <-slow:
		if !strings.Contains(got, "cancelled") {
			t.Fatalf("cancelled ask returned %q", got)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the cancelled ask did not return")
	}
	if res, err := send(ctx, sess, "api", "after the cancel"); err != nil || res.IsError || !strings.Contains(text(res), "after the cancel") {
		t.Fatalf("ask after cancel: %v %v", err, res)
	}

	// A daemon restart keeps the session: the next call starts a new daemon
	// that resumes the same session id.
	before := w.daemonPID()
	w.stopDaemon()
	res, err = send(ctx, sess, "api", "still the same session?")
	if err != nil || res.IsError {
		t.Fatalf("ask after daemon restart: %v %s", err, text(res))
	}
	if after := w.daemonPID(); after == before || after == 0 {
		t.Fatalf("daemon pid %d after restart, before %d", after, before)
	}
	raw, _ = json.Marshal(res.StructuredContent)
	if !strings.Contains(string(raw), first.SessionID) {
		t.Fatalf("after restart the answer came from another session: %s", raw)
	}
	_, argv := w.claudeStarts()
	if id, resumed := sessionArg(argv[len(argv)-1]); id != first.SessionID || !resumed {
		t.Fatalf("last claude start %q: want --resume %s", argv[len(argv)-1], first.SessionID)
	}
}
