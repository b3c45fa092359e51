package brokerview_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/dashboard"
	"github.com/switchboard-mcp/switchboard/dashboard/brokerview"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/internal/poll"
)

// Every view and action of the page, through the dashboard's HTTP API, on a
// real broker with the fake claude.
func TestDashboardOverRealBroker(t *testing.T) {
	e := newEnv(t, "api", "db")
	ctx := context.Background()

	// The token is required; Host must be the listener's.
	if resp := e.do(t, http.MethodGet, "/api/teams", "", false); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/teams without token: %s, want 401", resp.Status)
	}

	var teams []dashboard.Team
	e.get(t, "/api/teams", &teams)
	if len(teams) != 2 || teams[0].Name != "api" || teams[1].Name != "db" || !teams[0].Reachable || teams[0].Where != "local" {
		t.Fatalf("teams = %+v, want api and db, local and reachable", teams)
	}

	// A turn: the pair goes answering, then idle, and the message shows
	// with its answer.
	q, err := e.b.Send(ctx, broker.SendRequest{From: "web", To: "api", Text: "SLEEP 1s\nIs /v1/orders paginated?", NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "web->api answering", func() bool {
		e.get(t, "/api/teams", &teams)
		p, ok := pairOf(teams, "web", "api")
		return ok && p.State == dashboard.StateAnswering && p.PID > 0 && !p.StartedAt.IsZero()
	})
	first, _ := pairOf(teams, "web", "api")
	// The start time is the process's own, the same in every snapshot, so
	// the page's uptime does not jump and the view is not resent.
	e.get(t, "/api/teams", &teams)
	if again, _ := pairOf(teams, "web", "api"); !again.StartedAt.Equal(first.StartedAt) || first.StartedAt.After(time.Now()) {
		t.Errorf("StartedAt %v then %v; want the same time in the past", first.StartedAt, again.StartedAt)
	}
	poll.Until(t, "web->api idle", func() bool {
		e.get(t, "/api/teams", &teams)
		p, ok := pairOf(teams, "web", "api")
		return ok && p.State == dashboard.StateIdle && p.Turns == 1 && !p.LastUsed.IsZero()
	})
	var msgs []dashboard.Message
	e.get(t, "/api/messages?team=api", &msgs)
	if len(msgs) != 1 || msgs[0].Status != "answered" || !strings.Contains(msgs[0].Answer, "Is /v1/orders paginated?") || msgs[0].Latency <= 0 || msgs[0].From != "web" {
		t.Fatalf("messages of api = %+v, want web's answered question with its answer", msgs)
	}
	if id := msgs[0].ID; id != itoa(q.MessageID) {
		t.Errorf("message id %s, want %d", id, q.MessageID)
	}
	e.get(t, "/api/messages?team=db", &msgs)
	if len(msgs) != 0 {
		t.Errorf("messages of db = %+v, want none", msgs)
	}
	e.get(t, "/api/messages?status=failed", &msgs)
	if len(msgs) != 0 {
		t.Errorf("failed messages = %+v, want none", msgs)
	}

	// The session as its file has it.
	var entries []dashboard.SessionEntry
	e.get(t, "/api/session?from=web&to=api", &entries)
	if len(entries) != 2 || entries[0].Role != "user" || entries[1].Role != "assistant" || !strings.Contains(entries[1].Text, "paginated") {
		t.Errorf("session web->api = %+v, want the question and its answer", entries)
	}

	// Logs filtered by team: api's start is there, nothing of db.
	var logs []dashboard.LogRecord
	e.get(t, "/api/logs?team=api", &logs)
	if !hasLog(logs, "started claude", "api") {
		t.Errorf("logs of api lack \"started claude\": %+v", logs)
	}
	e.get(t, "/api/logs?team=db", &logs)
	if hasLog(logs, "started claude", "") {
		t.Errorf("logs of db show api's process: %+v", logs)
	}

	// Actions, as the MCP tools do them, the sender being the operator.
	if code, out := e.post(t, "/api/send", `{"to":"db","text":"What is the schema of orders?"}`); code != http.StatusOK || out["id"] == "" {
		t.Fatalf("send: %d %v", code, out)
	}
	poll.Until(t, "the operator's message answered", func() bool {
		e.get(t, "/api/messages?team=user&status=answered", &msgs)
		return len(msgs) == 1 && msgs[0].From == brokerview.Operator && msgs[0].To == "db"
	})
	if code, out := e.post(t, "/api/pairs/sleep", `{"from":"web","to":"api"}`); code != http.StatusOK {
		t.Fatalf("sleep: %d %v", code, out)
	}
	e.get(t, "/api/teams", &teams)
	if p, _ := pairOf(teams, "web", "api"); p.State != dashboard.StateStopped || p.PID != 0 {
		t.Errorf("after sleep web->api = %+v, want stopped", p)
	}
	if code, out := e.post(t, "/api/pairs/wake", `{"from":"web","to":"api"}`); code != http.StatusOK {
		t.Fatalf("wake: %d %v", code, out)
	}
	e.get(t, "/api/teams", &teams)
	if p, _ := pairOf(teams, "web", "api"); p.State != dashboard.StateIdle || p.PID == 0 {
		t.Errorf("after wake web->api = %+v, want idle with a pid", p)
	}
	old := sessionOf(teams, "web", "api")
	if code, out := e.post(t, "/api/pairs/reboot", `{"from":"web","to":"api"}`); code != http.StatusOK {
		t.Fatalf("reboot: %d %v", code, out)
	}
	e.get(t, "/api/teams", &teams)
	if s := sessionOf(teams, "web", "api"); s == old || s == "" {
		t.Errorf("reboot kept session %q", s)
	}
	// Errors an operator can act on.
	if code, out := e.post(t, "/api/pairs/cancel", `{"from":"web","to":"api"}`); code == http.StatusOK || !strings.Contains(out["error"].(string), "nothing to cancel") {
		t.Errorf("cancel with no turn: %d %v", code, out)
	}
	if code, out := e.post(t, "/api/send", `{"to":"nosuch","text":"hello"}`); code == http.StatusOK || !strings.Contains(out["error"].(string), "unknown team") {
		t.Errorf("send to an unknown team: %d %v", code, out)
	}

	// A cancel from the page ends a running turn.
	q, err = e.b.Send(ctx, broker.SendRequest{From: "web", To: "db", Text: "SLEEP 60s\nslow", NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "web->db answering", func() bool {
		e.get(t, "/api/teams", &teams)
		p, ok := pairOf(teams, "web", "db")
		return ok && p.State == dashboard.StateAnswering
	})
	if code, out := e.post(t, "/api/pairs/cancel", `{"from":"web","to":"db"}`); code != http.StatusOK {
		t.Fatalf("cancel: %d %v", code, out)
	}
	poll.Until(t, "the cancelled message failed with its reason", func() bool {
		e.get(t, "/api/messages?team=db&status=failed", &msgs)
		return len(msgs) == 1 && strings.Contains(msgs[0].Error, "cancelled")
	})

	var perms dashboard.Permissions
	e.get(t, "/api/permissions", &perms)
	if perms.Pending == nil || perms.Recent == nil {
		t.Errorf("permissions = %+v, want empty lists", perms)
	}
}

// The page's event stream carries a new snapshot when the broker's state
// changes, without waiting for its poll.
func TestEventsFollowBroker(t *testing.T) {
	e := newEnv(t, "api", "db")
	req, err := http.NewRequest(http.MethodGet, e.base+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	if _, err := e.b.Send(context.Background(), broker.SendRequest{From: "web", To: "api", Text: "REPLY pong", NoWait: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(time.Minute)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("event stream ended")
			}
			if strings.HasPrefix(l, "data:") && strings.Contains(l, `"pong"`) {
				return // the answer reached the page
			}
		case <-deadline:
			t.Fatal("no event carried the answer")
		}
	}
}

func hasLog(logs []dashboard.LogRecord, msg, team string) bool {
	for _, l := range logs {
		if l.Message == msg && (team == "" || l.Team == team) {
			return true
		}
	}
	return false
}

func sessionOf(teams []dashboard.Team, from, to string) string {
	p, _ := pairOf(teams, from, to)
	return p.SessionID
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// A tool use in ask mode waits for the operator: the pair shows it, the
// request is listed with its deadline, approving it from the page lets the
// turn finish, and the decision is listed as the operator's.
func TestApprovePermissionFromDashboard(t *testing.T) {
	e := newEnv(t, "api", "db")
	path := filepath.Join(e.root, "teams", "api", "approved.txt")
	q, err := e.b.Send(context.Background(), broker.SendRequest{From: "web", To: "api", Text: fakeapi.Tool("Write", map[string]string{"file_path": path, "content": "hi"}), NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	var perms dashboard.Permissions
	poll.Until(t, "a pending Write request", func() bool {
		e.get(t, "/api/permissions", &perms)
		return len(perms.Pending) == 1
	})
	p := perms.Pending[0]
	if p.Tool != "Write" || p.From != "web" || p.To != "api" || p.Team != "api" || p.MessageID != itoa(q.MessageID) ||
		!strings.Contains(p.Input, "approved.txt") || !p.Deadline.Equal(p.Created.Add(10*time.Minute)) {
		t.Errorf("pending request = %+v", p)
	}
	var teams []dashboard.Team
	e.get(t, "/api/teams", &teams)
	if pr, _ := pairOf(teams, "web", "api"); pr.State != dashboard.StateWaitingForPermission {
		t.Errorf("web->api while its Write waits: %+v, want waiting-for-permission", pr)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("the file exists before the approval")
	}

	if code, out := e.post(t, "/api/decide", `{"id":"`+p.ID+`","allow":true}`); code != http.StatusOK {
		t.Fatalf("decide: %d %v", code, out)
	}
	var msgs []dashboard.Message
	poll.Until(t, "the turn finished after the approval", func() bool {
		e.get(t, "/api/messages?team=api", &msgs)
		return len(msgs) == 1 && msgs[0].Status == "answered"
	})
	if _, err := os.Stat(path); err != nil {
		t.Errorf("approved, but no file: %v", err)
	}
	e.get(t, "/api/permissions", &perms)
	if len(perms.Pending) != 0 || len(perms.Recent) != 1 || !perms.Recent[0].Allow || perms.Recent[0].DecidedBy != brokerview.Operator {
		t.Errorf("after approving: %+v, want one allowed decision by %s", perms, brokerview.Operator)
	}
	e.get(t, "/api/teams", &teams)
	if pr, _ := pairOf(teams, "web", "api"); pr.State != dashboard.StateIdle {
		t.Errorf("web->api after the turn: %+v, want idle", pr)
	}
	// Deciding again says how it ended.
	if code, out := e.post(t, "/api/decide", `{"id":"`+p.ID+`","allow":false}`); code == http.StatusOK || !strings.Contains(out["error"].(string), "no longer pending") {
		t.Errorf("second decision: %d %v", code, out)
	}
}
