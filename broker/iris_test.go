package broker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/models"
)

// iris-mcp's clients call the tools with iris's argument names; each call
// is accepted and means what it meant there.
func TestIrisClientCallsAccepted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	cs := h.connect("web", nil)
	ctx := context.Background()
	call := func(name string, args map[string]any) *mcp.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		if res.IsError {
			t.Fatalf("%s %v: %s", name, args, text(res))
		}
		return res
	}
	// persist: queued at once, with its own TTL.
	res := call("send_message", map[string]any{"toTeam": "api", "message": "persisted", "fromTeam": "web", "persist": true, "ttlDays": 2})
	var r Reply
	if err := json.Unmarshal(mustJSON(t, res.StructuredContent), &r); err != nil || r.MessageID == 0 {
		t.Fatalf("persist reply %s: %v", text(res), err)
	}
	m, err := h.store.MessageByID(ctx, r.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if ttl := m.ExpiresAt.Sub(m.CreatedAt); ttl < 47*time.Hour || ttl > 49*time.Hour {
		t.Errorf("ttlDays 2 gave a TTL of %s", ttl)
	}
	if fin := h.waitFinal(r.MessageID); fin.Status != models.MessageAnswered {
		t.Fatalf("persisted message: %s %q", fin.Status, fin.Error)
	}
	call("ask_message", map[string]any{"toTeam": "api", "message": "asked", "fromTeam": "web", "timeout": 60000, "persist": false})
	call("team_status", map[string]any{"fromTeam": "web", "team": "api", "includeNotifications": true})
	call("team_wake", map[string]any{"team": "api", "fromTeam": "web"})
	call("team_launch", map[string]any{"toTeam": "api", "fromTeam": "web"})
	call("session_report", map[string]any{"team": "api", "fromTeam": "web"})
	call("session_report", map[string]any{"toTeam": "api", "fromTeam": "web"})
	call("session_fork", map[string]any{"toTeam": "api", "fromTeam": "web"})
	call("session_reboot", map[string]any{"toTeam": "api", "fromTeam": "web"})
	call("team_sleep", map[string]any{"toTeam": "api", "fromTeam": "web", "force": true})
	call("session_delete", map[string]any{"toTeam": "api", "fromTeam": "web"})
	logs := call("get_logs", map[string]any{"logs_since": float64(time.Now().Add(-time.Hour).UnixMilli()), "storeName": "iris-mcp", "format": "parsed", "level": []any{"error", "info"}})
	if !strings.Contains(text(logs), "records") {
		t.Errorf("get_logs: %s", text(logs))
	}
	date := call("get_date", map[string]any{})
	var d DateResult
	if err := json.Unmarshal(mustJSON(t, date.StructuredContent), &d); err != nil || d.Components.Year < 2025 || !strings.HasSuffix(d.ISO, "Z") {
		t.Errorf("get_date: %s (%v)", text(date), err)
	}

	// Both names for different teams is a mistake, said as one.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "session_report", Arguments: map[string]any{"team": "api", "toTeam": "web"}})
	if err != nil || !res.IsError || !strings.Contains(text(res), "give one of them") {
		t.Errorf("team and toTeam differing: %v %s", err, text(res))
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "session_cancel", Arguments: map[string]any{"fromTeam": "web"}})
	if err != nil || !res.IsError || !strings.Contains(text(res), "team is required") {
		t.Errorf("no team: %v %s", err, text(res))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func text(res *mcp.CallToolResult) string {
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			sb.WriteString(tc.Text)
		}
	}
	return sb.String()
}
