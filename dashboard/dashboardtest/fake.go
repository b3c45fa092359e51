// Package dashboardtest holds a fake dashboard.Backend for tests (and for
// trying the page without a broker): its state is plain fields changed under
// Update, which signals every subscriber, and it records every action.
package dashboardtest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/dashboard"
)

// Call is one action the dashboard asked for.
type Call struct {
	Action   string // wake, sleep, cancel, reboot, send, decide
	From, To string
	Text     string
	ID       string
	Allow    bool
	Reason   string
}

// Fake is an in-memory dashboard.Backend. Change its state only through
// Update so subscribers are told.
type Fake struct {
	mu       sync.Mutex
	teams    []dashboard.Team
	messages []dashboard.Message
	sessions map[string][]dashboard.SessionEntry // "from>to"
	logs     []dashboard.LogRecord
	perms    dashboard.Permissions
	calls    []Call
	subs     map[int]chan struct{}
	nextSub  int
	// Err, when set, is returned by every action.
	err error
}

// State is the part of the fake a test changes in Update.
type State struct {
	Teams       []dashboard.Team
	Messages    []dashboard.Message // newest first
	Sessions    map[string][]dashboard.SessionEntry
	Logs        []dashboard.LogRecord // newest first
	Permissions dashboard.Permissions
	// ActionErr, when set, is returned by every action.
	ActionErr error
}

// New returns a fake holding s.
func New(s State) *Fake {
	f := &Fake{subs: map[int]chan struct{}{}}
	f.set(s)
	return f
}

func (f *Fake) set(s State) {
	f.teams, f.messages, f.logs, f.perms, f.err = s.Teams, s.Messages, s.Logs, s.Permissions, s.ActionErr
	f.sessions = s.Sessions
	if f.sessions == nil {
		f.sessions = map[string][]dashboard.SessionEntry{}
	}
}

// Update changes the state with fn and signals every subscriber.
func (f *Fake) Update(fn func(s *State)) {
	f.mu.Lock()
	s := State{Teams: f.teams, Messages: f.messages, Sessions: f.sessions, Logs: f.logs, Permissions: f.perms, ActionErr: f.err}
	fn(&s)
	f.set(s)
	subs := make([]chan struct{}, 0, len(f.subs))
	for _, c := range f.subs {
		subs = append(subs, c)
	}
	f.mu.Unlock()
	for _, c := range subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Calls returns the actions received so far.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Subscribers is how many Changes subscriptions are open.
func (f *Fake) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *Fake) Teams(ctx context.Context) ([]dashboard.Team, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]dashboard.Team{}, f.teams...), nil
}

func (f *Fake) Messages(ctx context.Context, q dashboard.MessageFilter) ([]dashboard.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []dashboard.Message{}
	for _, m := range f.messages {
		if q.Team != "" && m.From != q.Team && m.To != q.Team {
			continue
		}
		if q.Status != "" && m.Status != q.Status {
			continue
		}
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
		out = append(out, m)
	}
	return out, nil
}

func (f *Fake) Session(ctx context.Context, from, to string, limit int) ([]dashboard.SessionEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.sessions[from+">"+to]
	if !ok {
		return nil, fmt.Errorf("no session for %s->%s", from, to)
	}
	if limit > 0 && len(e) > limit {
		e = e[len(e)-limit:]
	}
	return append([]dashboard.SessionEntry{}, e...), nil
}

func (f *Fake) Logs(ctx context.Context, q dashboard.LogQuery) ([]dashboard.LogRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []dashboard.LogRecord{}
	for _, l := range f.logs {
		var lvl slog.Level
		if lvl.UnmarshalText([]byte(l.Level)) == nil && lvl < q.Level {
			continue
		}
		if q.Team != "" && l.Team != q.Team {
			continue
		}
		if !q.Since.IsZero() && l.Time.Before(q.Since) {
			continue
		}
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
		out = append(out, l)
	}
	return out, nil
}

func (f *Fake) Permissions(ctx context.Context) (dashboard.Permissions, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return dashboard.Permissions{
		Pending: append([]dashboard.PermissionRequest{}, f.perms.Pending...),
		Recent:  append([]dashboard.PermissionDecision{}, f.perms.Recent...),
	}, nil
}

func (f *Fake) Changes() (<-chan struct{}, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make(chan struct{}, 1)
	id := f.nextSub
	f.nextSub++
	f.subs[id] = c
	return c, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
	}
}

func (f *Fake) record(c Call) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	return f.err
}

func (f *Fake) Wake(ctx context.Context, from, to string) error {
	return f.record(Call{Action: "wake", From: from, To: to})
}
func (f *Fake) Sleep(ctx context.Context, from, to string) error {
	return f.record(Call{Action: "sleep", From: from, To: to})
}
func (f *Fake) Cancel(ctx context.Context, from, to string) error {
	return f.record(Call{Action: "cancel", From: from, To: to})
}
func (f *Fake) Reboot(ctx context.Context, from, to string) error {
	return f.record(Call{Action: "reboot", From: from, To: to})
}
func (f *Fake) Send(ctx context.Context, to, text string) (string, error) {
	if err := f.record(Call{Action: "send", To: to, Text: text}); err != nil {
		return "", err
	}
	return "m-op-" + strings.ToLower(to), nil
}

// Decide records the decision and, like the broker, moves the request from
// pending to the recent decisions.
func (f *Fake) Decide(ctx context.Context, id string, allow bool, reason string) error {
	if err := f.record(Call{Action: "decide", ID: id, Allow: allow, Reason: reason}); err != nil {
		return err
	}
	f.Update(func(s *State) {
		var keep []dashboard.PermissionRequest
		for _, p := range s.Permissions.Pending {
			if p.ID != id {
				keep = append(keep, p)
				continue
			}
			s.Permissions.Recent = append([]dashboard.PermissionDecision{{
				PermissionRequest: p, Allow: allow, Reason: reason, DecidedBy: "operator", Decided: time.Now(),
			}}, s.Permissions.Recent...)
		}
		s.Permissions.Pending = keep
	})
	return nil
}

var _ dashboard.Backend = (*Fake)(nil)

// Demo is a plausible state: two teams (one local, one on an SSH host), a few
// pairs in different states, messages in every status, logs, one pending
// permission request and one decision. Times are relative to now.
func Demo(now time.Time) State {
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	return State{
		Teams: []dashboard.Team{
			{Name: "api", Description: "Go HTTP API: handlers, auth, the public OpenAPI spec", Where: "local", Reachable: true,
				Pairs: []dashboard.Pair{
					{From: "web", To: "api", SessionID: "4f1c2d9e-web-api", State: dashboard.StateIdle, PID: 48211, StartedAt: ago(42 * time.Minute), Turns: 12, LastUsed: ago(3 * time.Minute)},
					{From: "db", To: "api", SessionID: "b7a03e11-db-api", State: dashboard.StateStopped, Turns: 3, LastUsed: ago(5 * time.Hour)},
				}},
			{Name: "db", Description: "Postgres schema and migrations", Where: "db-box", Reachable: true,
				Pairs: []dashboard.Pair{
					{From: "api", To: "db", SessionID: "0c9e5a77-api-db", State: dashboard.StateWaitingForPermission, PID: 7342, StartedAt: ago(18 * time.Minute), Turns: 4, LastUsed: ago(40 * time.Second), Queue: 1},
				}},
		},
		Messages: []dashboard.Message{
			{ID: "m-1042", From: "api", To: "db", Status: "running", Created: ago(40 * time.Second), Question: "Add an index for orders.customer_id and tell me the migration's name."},
			{ID: "m-1041", From: "web", To: "api", Status: "answered", Created: ago(3 * time.Minute), Latency: 8400 * time.Millisecond, Question: "Which endpoint returns a customer's open orders?", Answer: "GET /v1/customers/{id}/orders?status=open — handler in api/orders.go, paginated with ?cursor=."},
			{ID: "m-1040", From: "web", To: "db", Status: "expired", Created: ago(25 * time.Minute), Question: "Is the orders table partitioned?", Error: "expired after 10m in the queue: db-box was unreachable"},
			{ID: "m-1039", From: "web", To: "api", Status: "failed", Created: ago(31 * time.Minute), Latency: 2100 * time.Millisecond, Question: "Run the integration tests and summarise failures.", Error: "claude exited with status 1: API rate limit reached"},
		},
		Sessions: map[string][]dashboard.SessionEntry{
			"web>api": {
				{Role: "user", Text: "Which endpoint returns a customer's open orders?", Time: ago(3*time.Minute + 8*time.Second)},
				{Role: "tool", Text: "Grep \"orders\" in api/ — 14 matches", Time: ago(3*time.Minute + 4*time.Second)},
				{Role: "assistant", Text: "GET /v1/customers/{id}/orders?status=open — handler in api/orders.go, paginated with ?cursor=.", Time: ago(3 * time.Minute)},
			},
			"api>db": {{Role: "user", Text: "Add an index for orders.customer_id and tell me the migration's name.", Time: ago(40 * time.Second)}},
		},
		Logs: []dashboard.LogRecord{
			{Time: ago(38 * time.Second), Level: "WARN", Team: "db", Message: "waiting for permission", Attrs: map[string]string{"tool": "Write", "pair": "api->db"}},
			{Time: ago(40 * time.Second), Level: "INFO", Team: "db", Message: "turn started", Attrs: map[string]string{"message": "m-1042", "pid": "7342"}},
			{Time: ago(3 * time.Minute), Level: "INFO", Team: "api", Message: "turn finished", Attrs: map[string]string{"message": "m-1041", "latency": "8.4s"}},
			{Time: ago(25 * time.Minute), Level: "ERROR", Team: "db", Message: "message expired", Attrs: map[string]string{"message": "m-1040", "err": "dial db-box: connection refused"}},
			{Time: ago(42 * time.Minute), Level: "INFO", Team: "api", Message: "process started", Attrs: map[string]string{"pid": "48211"}},
		},
		Permissions: dashboard.Permissions{
			Pending: []dashboard.PermissionRequest{
				{ID: "p-7", Team: "db", From: "api", To: "db", MessageID: "m-1042", Tool: "Write",
					Input:   `{"file_path":"migrations/0042_orders_customer_idx.sql","content":"CREATE INDEX CONCURRENTLY orders_customer_id_idx ON orders (customer_id);"}`,
					Created: ago(38 * time.Second), Deadline: ago(38 * time.Second).Add(5 * time.Minute)},
			},
			Recent: []dashboard.PermissionDecision{
				{PermissionRequest: dashboard.PermissionRequest{ID: "p-6", Team: "api", From: "web", To: "api", MessageID: "m-1041", Tool: "Bash", Input: `{"command":"go test ./api/..."}`, Created: ago(4 * time.Minute)},
					Allow: true, DecidedBy: "operator", Decided: ago(4 * time.Minute)},
				{PermissionRequest: dashboard.PermissionRequest{ID: "p-5", Team: "api", From: "web", To: "api", MessageID: "m-1039", Tool: "Bash", Input: `{"command":"rm -rf /tmp/cache"}`, Created: ago(32 * time.Minute)},
					Allow: false, Reason: "denied by the operator from the dashboard", DecidedBy: "operator", Decided: ago(31 * time.Minute)},
			},
		},
	}
}
