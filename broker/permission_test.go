package broker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
	"github.com/switchboard-mcp/switchboard/models"
)

// setMode restarts the broker with team's grantPermission set to mode.
func (h *harness) setMode(team, mode string) {
	h.t.Helper()
	h.close()
	h.cfg.Teams[team].GrantPermission = mode
	h.open()
}

// writeAsk is a message that makes the team's Claude Write name in its
// directory, and the path it writes.
func (h *harness) writeAsk(team, name string) (text, path string) {
	path = filepath.Join(h.teamPath(team), name)
	return fakeapi.Tool("Write", map[string]string{"file_path": path, "content": "hi"}), path
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// pendingOf waits for the one pending request of team and returns it.
func (h *harness) pendingOf(team string) Permission {
	h.t.Helper()
	var got []Permission
	waitFor(h.t, "a pending permission request of "+team, func() bool {
		var err error
		got, err = h.b.PendingPermissions(context.Background(), team)
		return err == nil && len(got) == 1
	})
	return got[0]
}

// checkNoSkippedPermissions asserts every launch of the store's sessions
// asked over stdio and none skipped permission checks.
func (h *harness) checkNoSkippedPermissions() {
	h.t.Helper()
	sessions, err := h.store.ListSessions(context.Background(), models.SessionFilter{})
	if err != nil {
		h.t.Fatal(err)
	}
	launches := h.starts()
	for _, s := range sessions {
		launches = append(launches, s.LaunchCommand)
	}
	for _, l := range launches {
		if strings.Contains(l, "--dangerously-skip-permissions") || !strings.Contains(l, "--permission-prompt-tool stdio") {
			h.t.Errorf("claude started with %q; want --permission-prompt-tool stdio and no --dangerously-skip-permissions", l)
		}
	}
	if len(launches) == 0 {
		h.t.Error("no claude launch recorded")
	}
}

// checkModes runs yes, no and ask (approved) against team to, asked by from.
func checkModes(t *testing.T, h *harness, from, to string) {
	ctx := context.Background()

	h.setMode(to, "yes")
	msg, path := h.writeAsk(to, "yes.txt")
	r := h.ask(from, to, msg)
	if r.Status != models.MessageAnswered || !exists(path) || !strings.Contains(r.Answer, fakeapi.WriteCreated(path)) {
		t.Fatalf("yes: %s %q %q; file written: %v", r.Status, r.Answer, r.Error, exists(path))
	}
	if ps := r.Permissions; len(ps) != 0 {
		t.Fatalf("yes: Reply of Send carries permissions %v; message_status should", ps)
	}
	if got, _ := h.b.Message(ctx, r.MessageID); len(got.Permissions) != 1 || got.Permissions[0].Status != models.PermissionAllowed || got.Permissions[0].DecidedBy != "mode" || got.Permissions[0].Tool != "Write" {
		t.Fatalf("yes: message_status permissions %+v", got.Permissions)
	}

	h.setMode(to, "no")
	msg, path = h.writeAsk(to, "canary.txt")
	r = h.ask(from, to, msg)
	want := fakeapi.ToolResultPrefix + fmt.Sprintf("team %s does not grant tool permissions (grantPermission: no); it may use only the tools its allowedTools lists: none", to)
	if r.Status != models.MessageAnswered || exists(path) || r.Answer != want {
		t.Fatalf("no: %s %q %q; canary written: %v; want the answer %q", r.Status, r.Answer, r.Error, exists(path), want)
	}

	h.setMode(to, "ask")
	msg, path = h.writeAsk(to, "ask.txt")
	q, err := h.b.Send(ctx, SendRequest{From: from, To: to, Text: msg, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	p := h.pendingOf(to)
	if p.Tool != "Write" || p.MessageID != q.MessageID || !strings.Contains(p.Input, "ask.txt") || p.Mode != models.PermissionAsk {
		t.Fatalf("ask: pending %+v", p)
	}
	// The row is stored just before the pair is marked waiting.
	var st []TeamStatus
	waitFor(t, "team_status to show the pair waiting for permission", func() bool {
		var err error
		st, err = h.b.Status(ctx, to)
		if err != nil {
			t.Fatal(err)
		}
		var waiting *PermissionWait
		for _, s := range st[0].Sessions {
			if s.From == from && s.Waiting != nil {
				waiting = s.Waiting
			}
		}
		return waiting != nil && waiting.Tool == "Write" && waiting.State == WaitingForPermission && waiting.RequestID == p.ID && len(st[0].Waiting) == 1
	})
	if exists(path) {
		t.Fatal("ask: the file was written before anyone approved")
	}
	if _, err := h.b.DecidePermission(ctx, p.ID, true, "tester", ""); err != nil {
		t.Fatal(err)
	}
	r = h.waitFinal(q.MessageID)
	if r.Status != models.MessageAnswered || !exists(path) {
		t.Fatalf("ask approved: %s %q %q; file written: %v", r.Status, r.Answer, r.Error, exists(path))
	}
	if len(r.Permissions) != 1 || r.Permissions[0].DecidedBy != "tester" || r.Permissions[0].Status != models.PermissionAllowed {
		t.Fatalf("ask approved: rows %+v", r.Permissions)
	}
	if _, err := h.b.DecidePermission(ctx, p.ID, false, "late", ""); err == nil || !strings.Contains(err.Error(), "no longer pending") {
		t.Fatalf("a second decision: %v, want it refused as no longer pending", err)
	}
	h.checkNoSkippedPermissions()
}

func TestPermissionModesLocal(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		checkModes(t, h, "web", "api")
	})
}

func TestPermissionModesRemote(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		srv := sshdtest.Start(t)
		h := newRemoteHarness(t, be, srv, srv.SSHConfig)
		checkModes(t, h, "web", "api")
	})
}

func TestPermissionTimeoutDenies(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "  permissionTimeout: 1s", "web", "api")
		msg, path := h.writeAsk("api", "late.txt")
		r := h.ask("web", "api", msg)
		want := "no decision within permissionTimeout 1s: team api may not use Write"
		if r.Status != models.MessageAnswered || exists(path) || r.Answer != fakeapi.ToolResultPrefix+want {
			t.Fatalf("timeout: %s %q %q; file written %v", r.Status, r.Answer, r.Error, exists(path))
		}
		got, _ := h.b.Message(context.Background(), r.MessageID)
		if len(got.Permissions) != 1 || got.Permissions[0].DecidedBy != "timeout" || got.Permissions[0].Status != models.PermissionDenied || got.Permissions[0].Reason != want {
			t.Fatalf("timeout rows: %+v", got.Permissions)
		}
	})
}

// An interrupt while a request waits withdraws it: the row says cancelled
// and a decision after the turn ended is refused, not sent.
func TestPermissionCancelledWhilePending(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		ctx := context.Background()
		msg, path := h.writeAsk("api", "never.txt")
		q, err := h.b.Send(ctx, SendRequest{From: "web", To: "api", Text: msg, NoWait: true})
		if err != nil {
			t.Fatal(err)
		}
		p := h.pendingOf("api")
		if _, err := h.b.Cancel(ctx, "web", "api"); err != nil {
			t.Fatal(err)
		}
		h.waitFinal(q.MessageID)
		var row *models.PermissionRequest
		waitFor(t, "the withdrawn request to be closed", func() bool {
			row, err = h.store.PermissionByID(ctx, p.ID)
			return err == nil && row.Status != models.PermissionPending
		})
		if row.Status != models.PermissionDenied || !strings.HasPrefix(row.Reason, "cancelled") {
			t.Fatalf("withdrawn request: %s %q", row.Status, row.Reason)
		}
		if _, err := h.b.DecidePermission(ctx, p.ID, true, "late", ""); err == nil || !strings.Contains(err.Error(), "cancelled") {
			t.Fatalf("decision after the turn ended: %v", err)
		}
		if exists(path) {
			t.Fatal("the file was written")
		}
		// The process stays usable.
		if r := h.ask("web", "api", "still there?"); r.Status != models.MessageAnswered {
			t.Fatalf("after the cancel: %s %q", r.Status, r.Error)
		}
	})
}

// connectElicit connects an MCP client as a 2025-11-25 client (as Claude
// Code is), with handler answering elicitations when set.
func (h *harness) connectElicit(caller string, handler func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error)) *mcp.ClientSession {
	h.t.Helper()
	ct, st := mcp.NewInMemoryTransports()
	ss, err := NewMCPServer(h.b, caller).Connect(context.Background(), st, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "elicit-test", Version: "1"}, &mcp.ClientOptions{ElicitationHandler: handler}).
		Connect(context.Background(), ct, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { cs.Close() })
	return cs
}

func TestPermissionForward(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		h.setMode("api", "forward")
		var mu sync.Mutex
		var asked []string
		answer := "accept"
		cs := h.connectElicit("user", func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, req.Params.Message)
			return &mcp.ElicitResult{Action: answer}, nil
		})
		msg, path := h.writeAsk("api", "accepted.txt")
		out, isErr := call(t, cs, "send_message", map[string]any{"toTeam": "api", "message": msg})
		if isErr || !exists(path) {
			t.Fatalf("accepted: %q; file written %v", out, exists(path))
		}
		mu.Lock()
		if len(asked) != 1 || !strings.Contains(asked[0], "Team api") || !strings.Contains(asked[0], "Write") || !strings.Contains(asked[0], "accepted.txt") {
			t.Fatalf("elicitation messages %q", asked)
		}
		answer = "decline"
		mu.Unlock()
		msg, path = h.writeAsk("api", "declined.txt")
		out, isErr = call(t, cs, "send_message", map[string]any{"toTeam": "api", "message": msg})
		if isErr || exists(path) || !strings.Contains(out, "the asker (user) did not allow Write: decline") {
			t.Fatalf("declined: %q; file written %v", out, exists(path))
		}

		// A client that cannot elicit: the request waits for an operator.
		plain := h.connect("user", nil)
		msg, path = h.writeAsk("api", "operator.txt")
		done := make(chan string, 1)
		go func() {
			out, _ := call(t, plain, "send_message", map[string]any{"toTeam": "api", "message": msg})
			done <- out
		}()
		p := h.pendingOf("api")
		if p.Mode != models.PermissionForward {
			t.Fatalf("fallback row mode %s", p.Mode)
		}
		if out, isErr := call(t, plain, "permissions_decide", map[string]any{"requestId": p.ID, "allow": true}); isErr {
			t.Fatal(out)
		}
		<-done
		if !exists(path) {
			t.Fatal("fallback to ask: approved but the file was not written")
		}

		// A configured team asking decides by its own grantPermission.
		h.setMode("web", "no")
		h.cfg.Teams["api"].GrantPermission = "forward"
		msg, path = h.writeAsk("api", "chain.txt")
		r := h.ask("web", "api", msg)
		if exists(path) || !strings.Contains(r.Answer, "team api leaves tool permissions to the asking team web, which does not grant them") {
			t.Fatalf("chain: %q; file written %v", r.Answer, exists(path))
		}
		got, _ := h.b.Message(context.Background(), r.MessageID)
		if len(got.Permissions) != 1 || got.Permissions[0].DecidedBy != "team web (grantPermission: no)" {
			t.Fatalf("chain rows %+v", got.Permissions)
		}
	})
}

// The permission_pending tool and the send_message progress notifications
// show a waiting request.
func TestPermissionPendingToolAndProgress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	var mu sync.Mutex
	var notes []string
	plain, err := mcp.NewClient(&mcp.Implementation{Name: "p", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			notes = append(notes, req.Params.Message)
			mu.Unlock()
		},
	}).Connect(context.Background(), inMemory(t, h.b, "web"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	msg, _ := h.writeAsk("api", "p.txt")
	done := make(chan struct{})
	go func() {
		defer close(done)
		params := &mcp.CallToolParams{Name: "send_message", Arguments: map[string]any{"toTeam": "api", "message": msg}}
		params.SetProgressToken("t1")
		_, _ = plain.CallTool(context.Background(), params)
	}()
	p := h.pendingOf("api")
	waitFor(t, "a progress notification saying the team waits for permission", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range notes {
			if strings.Contains(n, "waiting for permission: team api wants to use Write") {
				return true
			}
		}
		return false
	})
	out, isErr := call(t, plain, "permissions_pending", map[string]any{"team": "api"})
	if isErr || !strings.Contains(out, fmt.Sprintf(`"id": %d`, p.ID)) || !strings.Contains(out, `"tool": "Write"`) {
		t.Fatalf("permissions_pending: %s", out)
	}
	waitFor(t, "list_teams to show the wait", func() bool {
		teams, _ := call(t, plain, "list_teams", map[string]any{})
		return strings.Contains(teams, `"state": "waiting for permission"`)
	})
	if out, isErr := call(t, plain, "permissions_decide", map[string]any{"requestId": p.ID, "allow": false, "reason": "not today"}); isErr || !strings.Contains(out, "denied request") {
		t.Fatalf("permissions_decide: %s", out)
	}
	<-done
	rows, _ := h.store.PermissionsForMessage(context.Background(), p.MessageID)
	if len(rows) != 1 || rows[0].Reason != "not today" || rows[0].DecidedBy != "operator web" {
		t.Fatalf("rows %+v", rows)
	}
}

func inMemory(t *testing.T, b *Broker, caller string) mcp.Transport {
	ct, st := mcp.NewInMemoryTransports()
	ss, err := NewMCPServer(b, caller).Connect(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	return ct
}

// An old config's permissionPromptTool is ignored with one warning, and a
// request a previous daemon left pending is expired when the next starts.
func TestPermissionStartup(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	ctx := context.Background()
	stale := &models.PermissionRequest{MessageID: 99, SessionID: "s", FromTeam: "web", ToTeam: "api", RequestID: "r", Tool: "Write", Mode: models.PermissionAsk}
	if err := h.store.CreatePermissionRequest(ctx, stale); err != nil {
		t.Fatal(err)
	}
	h.close()
	h.cfg.Teams["api"].PermissionPromptTool = "mcp__switchboard__permissions__approve"
	h.open()
	row, err := h.store.PermissionByID(ctx, stale.ID)
	if err != nil || row.Status != models.PermissionExpired {
		t.Fatalf("stale request after a restart: %+v %v", row, err)
	}
	var warned int
	for _, r := range h.b.logs.Records(time.Time{}, slog.LevelWarn, 100) {
		if strings.Contains(r.Message, "permissionPromptTool is deprecated and ignored") && strings.Contains(r.Attrs["teams"], "api (mcp__switchboard__permissions__approve)") {
			warned++
		}
	}
	if warned != 1 {
		t.Fatalf("%d deprecation lines, want 1", warned)
	}
	if r := h.ask("web", "api", "hello"); r.Status != models.MessageAnswered {
		t.Fatalf("ask: %s %q", r.Status, r.Error)
	}
	for _, a := range h.starts() {
		if strings.Contains(a, "permissions__approve") || !strings.Contains(a, "--permission-prompt-tool stdio") {
			t.Fatalf("claude started with %q", a)
		}
	}
}
