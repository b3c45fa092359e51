package broker

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// connect returns an MCP client session on the harness's broker, as caller.
func (h *harness) connect(caller string, opts *mcp.ClientOptions) *mcp.ClientSession {
	h.t.Helper()
	ct, st := mcp.NewInMemoryTransports()
	srv := NewMCPServer(h.b, caller)
	ss, err := srv.Connect(context.Background(), st, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, opts).Connect(context.Background(), ct, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { cs.Close() })
	return cs
}

func call(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error %v (tool errors must be results)", name, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), res.IsError
}

// TestToolSchemas keeps every tool's public contract in testdata/toolsnaps:
// a change fails until regenerated on purpose with UPDATE_TOOLSNAPS=1.
func TestToolSchemas(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	cs := h.connect("web", nil)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ask_message", "get_date", "get_logs", "list_teams", "message_status", "permissions_decide", "permissions_pending", "quick_message", "send_message",
		"session_cancel", "session_delete", "session_fork", "session_reboot", "session_report",
		"team_launch", "team_sleep", "team_status", "team_wake", "team_wake_all"}
	var got []string
	for _, tool := range res.Tools {
		got = append(got, tool.Name)
		fields := map[string]any{"name": tool.Name, "description": tool.Description, "inputSchema": tool.InputSchema}
		if tool.Annotations != nil {
			fields["annotations"] = tool.Annotations
		}
		if tool.OutputSchema != nil {
			fields["outputSchema"] = tool.OutputSchema
		}
		snap, err := json.MarshalIndent(fields, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join("testdata", "toolsnaps", tool.Name+".json")
		if os.Getenv("UPDATE_TOOLSNAPS") != "" {
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, append(snap, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		old, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("no snapshot for tool %s: run UPDATE_TOOLSNAPS=1 go test ./broker -run TestToolSchemas", tool.Name)
			continue
		}
		if strings.TrimSpace(string(old)) != string(snap) {
			t.Errorf("tool %s changed its public schema; if on purpose, run UPDATE_TOOLSNAPS=1 go test ./broker -run TestToolSchemas\n got: %s", tool.Name, snap)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("tools %v, want %v", got, want)
	}
}

func TestToolErrorsAreActionableResults(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	cs := h.connect("web", nil)
	tests := []struct {
		tool string
		args map[string]any
		want string
	}{
		{"send_message", map[string]any{"toTeam": "apii", "message": "hi"}, "unknown team \"apii\"; teams are: api, web"},
		{"send_message", map[string]any{"message": "hi"}, "toTeam is required"},
		{"send_message", map[string]any{"toTeam": "api", "message": ""}, "message is empty"},
		{"send_message", map[string]any{"toTeam": "api", "message": "hi", "timeout": -5}, "timeout -5 is not valid"},
		{"quick_message", map[string]any{"toTeam": "a/b", "message": "hi"}, "invalid team name"},
		{"message_status", map[string]any{"messageId": 999}, "no message with id 999"},
		{"team_status", map[string]any{"team": "nope"}, "unknown team \"nope\""},
		{"session_report", map[string]any{"team": "api"}, "no session for web->api yet"},
		{"session_cancel", map[string]any{"team": "api"}, "nothing to cancel"},
		{"get_logs", map[string]any{"since": "yesterday"}, "neither an RFC 3339 time nor a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			text, isErr := call(t, cs, tt.tool, tt.args)
			if !isErr || !strings.Contains(text, tt.want) {
				t.Fatalf("%s(%v) = %q (isError %v), want an error containing %q", tt.tool, tt.args, text, isErr, tt.want)
			}
		})
	}
}

func TestToolsEndToEnd(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		var mu sync.Mutex
		var progress []string
		cs := h.connect("web", &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, r.Params.Message)
			mu.Unlock()
		}})

		text, isErr := call(t, cs, "list_teams", nil)
		if isErr || !strings.Contains(text, `"name": "api"`) || !strings.Contains(text, h.teamPath("api")) {
			t.Fatalf("list_teams: %s", text)
		}

		params := &mcp.CallToolParams{Name: "send_message", Arguments: map[string]any{"toTeam": "api", "message": "who are you?"}}
		params.SetProgressToken("p1")
		res, err := cs.CallTool(context.Background(), params)
		if err != nil || res.IsError {
			t.Fatalf("send_message: %v %+v", err, res)
		}
		answer := res.Content[0].(*mcp.TextContent).Text
		if !strings.Contains(answer, "who are you?") || !strings.Contains(answer, h.teamPath("api")) {
			t.Fatalf("answer %q", answer)
		}
		mu.Lock()
		gotProgress := len(progress) > 0 && strings.Contains(strings.Join(progress, ""), "who are you?")
		mu.Unlock()
		if !gotProgress {
			t.Errorf("no progress notification carried the partial answer: %q", progress)
		}

		text, isErr = call(t, cs, "send_message", map[string]any{"toTeam": "api", "message": "later please", "timeout": -1})
		if isErr || !strings.Contains(text, "message_status messageId=") {
			t.Fatalf("timeout -1: %s", text)
		}
		var id float64
		for _, f := range strings.Fields(text) {
			if strings.HasPrefix(f, "messageId=") {
				json.Unmarshal([]byte(strings.TrimRight(strings.TrimPrefix(f, "messageId="), ".")), &id)
			}
		}
		waitFor(t, "the queued message to be answered", func() bool {
			s, _ := call(t, cs, "message_status", map[string]any{"messageId": id})
			return strings.Contains(s, `"status": "answered"`) && strings.Contains(s, "later please")
		})

		text, isErr = call(t, cs, "session_report", map[string]any{"team": "api", "limit": 2})
		if isErr || !strings.Contains(text, "later please") || !strings.Contains(text, `"total": 4`) {
			t.Fatalf("session_report: %s", text)
		}
		text, isErr = call(t, cs, "team_status", map[string]any{"team": "api"})
		if isErr || !strings.Contains(text, `"reachable": true`) || !strings.Contains(text, `"messageCount": 2`) {
			t.Fatalf("team_status: %s", text)
		}
		text, isErr = call(t, cs, "session_fork", map[string]any{"team": "api"})
		if isErr || !strings.Contains(text, "--resume ") || !strings.Contains(text, "--fork-session") {
			t.Fatalf("session_fork: %s", text)
		}
		text, isErr = call(t, cs, "team_sleep", map[string]any{"team": "api"})
		if isErr || !strings.Contains(text, "stopped") {
			t.Fatalf("team_sleep: %s", text)
		}
		text, isErr = call(t, cs, "session_reboot", map[string]any{"team": "api"})
		if isErr || !strings.Contains(text, "oldSessionId") {
			t.Fatalf("session_reboot: %s", text)
		}
		text, isErr = call(t, cs, "session_delete", map[string]any{"team": "api", "deleteFile": true})
		if isErr || !strings.Contains(text, "forgot the session") {
			t.Fatalf("session_delete: %s", text)
		}
		text, isErr = call(t, cs, "get_logs", map[string]any{"since": "10m"})
		if isErr || !strings.Contains(text, "started claude") {
			t.Fatalf("get_logs: %s", text)
		}
	})
}

func TestSendMessageFanOut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "  maxProcesses: 2", "web", "api", "db", "ops")
	cs := h.connect("web", nil)
	text, isErr := call(t, cs, "send_message", map[string]any{"toTeams": []string{"api", "db", "ops", "nope"}, "message": "status report please"})
	if isErr {
		t.Fatalf("fan-out: %s", text)
	}
	var out struct {
		Results []struct {
			Team     string `json:"team"`
			Status   string `json:"status"`
			Response string `json:"response"`
			Error    string `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		t.Fatalf("%v: %s", err, text)
	}
	if len(out.Results) != 4 {
		t.Fatalf("%d results, want 4: %s", len(out.Results), text)
	}
	for _, r := range out.Results {
		switch r.Team {
		case "nope":
			if !strings.Contains(r.Error, "unknown team") {
				t.Errorf("nope: %+v", r)
			}
		default:
			if r.Status != "answered" || !strings.Contains(r.Response, "status report please") || !strings.Contains(r.Response, h.teamPath(r.Team)) {
				t.Errorf("%s: %+v", r.Team, r)
			}
		}
	}
}
