// Package brokerview is the dashboard's view of a running broker: it
// satisfies dashboard.Backend over *broker.Broker, its store and its log
// ring. It sits between the two so that neither imports the other: the
// dashboard renders its own view types, the broker knows nothing of pages.
//
// Actions go through the same Broker calls as the MCP tools, with the
// operator as the sender (Operator, the name `switchboard ask` uses when run
// outside a team); the dashboard logs each one and its outcome.
package brokerview

import (
	"context"
	"errors"
	"fmt"

	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/dashboard"
	"github.com/switchboard-mcp/switchboard/models"
)

// Operator is the team name the dashboard's actions are sent as.
const Operator = "user"

// Options are what New needs.
type Options struct {
	Broker *broker.Broker
	// Store is the broker's store, for the message list and queue depths.
	Store *models.Store
	// Logs is the ring the daemon's logger writes into; nil shows no logs.
	Logs *broker.LogRing
}

// View is a dashboard.Backend over a broker.
type View struct {
	b     *broker.Broker
	store *models.Store
	logs  *broker.LogRing
}

var _ dashboard.Backend = (*View)(nil)

// New returns the view of opts.Broker.
func New(opts Options) *View {
	return &View{b: opts.Broker, store: opts.Store, logs: opts.Logs}
}

// Teams lists every configured team with the pairs whose process runs in
// it (the sessions that ask it), as team_status reports them, plus each
// pair's queued messages.
func (v *View) Teams(ctx context.Context) ([]dashboard.Team, error) {
	sts, err := v.b.Status(ctx, "")
	if err != nil {
		return nil, err
	}
	queues, err := v.store.QueueDepths(ctx)
	if err != nil {
		return nil, err
	}
	waiting := v.waitingPairs(ctx)
	out := make([]dashboard.Team, 0, len(sts))
	for _, st := range sts {
		t := dashboard.Team{Name: st.Name, Description: st.Description, Where: st.Where, Reachable: st.Reachable, Reason: st.Problem, Pairs: []dashboard.Pair{}}
		seen := make(map[models.Pair]bool)
		for _, ps := range st.Sessions {
			key := models.Pair{From: ps.From, To: ps.To}
			seen[key] = true
			p := dashboard.Pair{From: ps.From, To: ps.To, SessionID: ps.SessionID, State: stateOf(ps.State), PID: ps.PID, Turns: ps.MessageCount, Queue: int(queues[key])}
			if waiting(ps) && p.State == dashboard.StateAnswering {
				p.State = dashboard.StateWaitingForPermission
			}
			if ps.LastUsed != nil {
				p.LastUsed = *ps.LastUsed
			}
			if ps.PID > 0 {
				p.StartedAt = ps.Started
			}
			t.Pairs = append(t.Pairs, p)
		}
		// A pair whose first message is still queued has no session yet.
		for key, n := range queues {
			if key.To == st.Name && !seen[key] {
				t.Pairs = append(t.Pairs, dashboard.Pair{From: key.From, To: key.To, State: dashboard.StateStopped, Queue: int(n)})
			}
		}
		slices.SortStableFunc(t.Pairs, func(a, b dashboard.Pair) int { return strings.Compare(a.From, b.From) })
		out = append(out, t)
	}
	return out, nil
}

func stateOf(s models.ProcessState) dashboard.PairState {
	switch s {
	case models.ProcessStarting:
		return dashboard.StateStarting
	case models.ProcessIdle:
		return dashboard.StateIdle
	case models.ProcessBusy:
		return dashboard.StateAnswering
	default: // stopped, error (the team's row says why)
		return dashboard.StateStopped
	}
}

// Messages lists the newest messages matching f.
func (v *View) Messages(ctx context.Context, f dashboard.MessageFilter) ([]dashboard.Message, error) {
	rows, err := v.store.RecentMessages(ctx, models.RecentFilter{Team: f.Team, Status: models.MessageStatus(f.Status), Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]dashboard.Message, 0, len(rows))
	for _, m := range rows {
		dm := dashboard.Message{
			ID: strconv.FormatUint(m.ID, 10), From: m.FromTeam, To: m.ToTeam, Status: string(m.Status),
			Created: m.CreatedAt, Question: m.Text, Answer: m.Answer, Error: m.Error,
		}
		if m.FinishedAt != nil {
			// What the asker waited, queue included.
			dm.Latency = m.FinishedAt.Sub(m.CreatedAt)
		}
		out = append(out, dm)
	}
	return out, nil
}

// Session reads the pair's session file as session_report does.
func (v *View) Session(ctx context.Context, from, to string, limit int) ([]dashboard.SessionEntry, error) {
	rep, err := v.b.Report(ctx, from, to, limit)
	if err != nil {
		return nil, err
	}
	out := make([]dashboard.SessionEntry, 0, len(rep.Entries))
	for _, e := range rep.Entries {
		out = append(out, dashboard.SessionEntry{Role: e.Role, Text: e.Text, Time: e.Time})
	}
	return out, nil
}

// Logs returns the ring's records matching q, newest first. A record is a
// team's when it names the team as team, from, to or either side of pair.
func (v *View) Logs(_ context.Context, q dashboard.LogQuery) ([]dashboard.LogRecord, error) {
	if v.logs == nil {
		return []dashboard.LogRecord{}, nil
	}
	recs := v.logs.Records(q.Since, q.Level, 0)
	out := make([]dashboard.LogRecord, 0, min(len(recs), max(q.Limit, 0)))
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if q.Team != "" && !mentions(r.Attrs, q.Team) {
			continue
		}
		out = append(out, dashboard.LogRecord{Time: r.Time, Level: r.Level, Team: teamOf(r.Attrs), Message: r.Message, Attrs: r.Attrs})
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out, nil
}

func mentions(attrs map[string]string, team string) bool {
	for _, k := range []string{"team", "from", "to"} {
		if attrs[k] == team {
			return true
		}
	}
	from, to, ok := strings.Cut(attrs["pair"], "->")
	return ok && (from == team || to == team)
}

// teamOf is the team a record is about: the one whose Claude it concerns.
func teamOf(attrs map[string]string) string {
	if t := attrs["team"]; t != "" {
		return t
	}
	if t := attrs["to"]; t != "" {
		return t
	}
	if _, to, ok := strings.Cut(attrs["pair"], "->"); ok {
		return to
	}
	return ""
}

// Changes signals on every broker state change and every new log record.
func (v *View) Changes() (<-chan struct{}, func()) {
	bsig, bstop := v.b.Changes()
	var lsig <-chan struct{}
	lstop := func() {}
	if v.logs != nil {
		lsig, lstop = v.logs.Changes()
	}
	out := make(chan struct{}, 1)
	poke := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case _, ok := <-bsig:
				if !ok {
					return
				}
			case <-lsig:
			}
			poke()
		}
	}()
	var once sync.Once
	return out, func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			bstop()
			lstop()
			close(out)
		})
	}
}

// Wake starts the pair's process, as team_wake does.
func (v *View) Wake(ctx context.Context, from, to string) error {
	_, err := v.b.Wake(ctx, from, to)
	return err
}

// Sleep stops the pair's process, as team_sleep does (without force: a
// running turn is cancelled first, from the page).
func (v *View) Sleep(ctx context.Context, from, to string) error {
	stopped, err := v.b.Sleep(ctx, from, to, false)
	if err == nil && !stopped {
		return fmt.Errorf("no process is running for %s->%s", from, to)
	}
	return err
}

// Cancel interrupts the pair's turn, as session_cancel does.
func (v *View) Cancel(ctx context.Context, from, to string) error {
	_, err := v.b.Cancel(ctx, from, to)
	return err
}

// Reboot starts the pair over with a new session, as session_reboot does.
func (v *View) Reboot(ctx context.Context, from, to string) error {
	_, _, err := v.b.Reboot(ctx, from, to)
	return err
}

// Send queues text for team to from the operator, as quick_message does.
func (v *View) Send(ctx context.Context, to, text string) (string, error) {
	r, err := v.b.Send(ctx, broker.SendRequest{From: Operator, To: to, Text: text, NoWait: true})
	if err != nil {
		return "", err
	}
	return strconv.FormatUint(r.MessageID, 10), nil
}

func parseID(id string) (uint64, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return 0, errors.New("permission request ids are numbers; reload the page")
	}
	return n, nil
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// clip shortens s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
