package broker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/models"
)

// TeamInfo describes a configured team.
type TeamInfo struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Where       string `json:"where"`
	Path        string `json:"path"`
	// Waiting lists the team's sessions waiting for a tool permission.
	Waiting []PermissionWait `json:"waitingForPermission,omitempty"`
}

// Teams lists every configured team.
func (b *Broker) Teams() []TeamInfo {
	var out []TeamInfo
	for _, name := range b.config().TeamNames() {
		t, _ := b.config().Team(name)
		out = append(out, TeamInfo{Name: name, Description: t.Description, Where: b.where(t), Path: t.Path, Waiting: b.waitingFor(name)})
	}
	return out
}

func (b *Broker) where(t *configs.Team) string {
	if h, _ := b.hosts.For(t); h != nil {
		return h.Where()
	}
	return ""
}

// PairStatus is the live state of one session's process.
type PairStatus struct {
	From         string              `json:"fromTeam"`
	To           string              `json:"toTeam"`
	SessionID    string              `json:"sessionId,omitempty"`
	State        models.ProcessState `json:"processState"`
	PID          int                 `json:"pid,omitempty"`
	UptimeSec    int64               `json:"uptimeSeconds,omitempty"`
	Started      time.Time           `json:"-"` // for the dashboard's steady uptime
	MessageCount int                 `json:"messageCount"`
	Current      uint64              `json:"answeringMessageId,omitempty"`
	LastUsed     *time.Time          `json:"lastUsed,omitempty"`
	Note         string              `json:"note,omitempty"`
	// Waiting is set while the session's Claude waits for a tool permission.
	Waiting *PermissionWait `json:"waitingForPermission,omitempty"`
}

// TeamStatus is what team_status reports for one team.
type TeamStatus struct {
	TeamInfo
	Reachable bool   `json:"reachable"`
	Problem   string `json:"problem,omitempty"`
	// SessionCount counts every session to the team; Sessions lists the
	// most recently used of them.
	SessionCount int64                          `json:"sessionCount"`
	Sessions     []PairStatus                   `json:"sessions"`
	Messages     map[models.MessageStatus]int64 `json:"messages"`
	LastUsed     *time.Time                     `json:"lastUsed,omitempty"`
	// AskBack says whether the team's Claude can ask other teams through
	// switchboard's tools: "available", or "unavailable: " and why.
	AskBack string `json:"askBack,omitempty"`
}

// statusSessions is how many of a team's sessions team_status lists: a team
// asked by thousands of pairs must not load them all.
const statusSessions = 50

// Status reports on one team, or on every team when name is "".
func (b *Broker) Status(ctx context.Context, name string) ([]TeamStatus, error) {
	names := b.config().TeamNames()
	if name != "" {
		if _, ok := b.config().Team(name); !ok {
			return nil, b.unknownTeam(name)
		}
		names = []string{name}
	}
	out := make([]TeamStatus, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = b.teamStatus(ctx, n)
		}()
	}
	wg.Wait()
	return out, nil
}

func (b *Broker) teamStatus(ctx context.Context, name string) TeamStatus {
	t, _ := b.config().Team(name)
	st := TeamStatus{TeamInfo: TeamInfo{Name: name, Description: t.Description, Where: b.where(t), Path: t.Path, Waiting: b.waitingFor(name)}, Sessions: []PairStatus{}}
	st.Reachable, st.Problem = b.reachable(ctx, t)
	st.Problem = join(st.Problem, b.StoreProblem())
	if st.Reachable {
		st.AskBack = b.askBackStatus(ctx, t)
	}
	filter := models.SessionFilter{ToTeam: name}
	n, err := b.store.CountSessions(ctx, filter)
	if err != nil {
		st.Problem = join(st.Problem, "count sessions: "+err.Error())
	}
	st.SessionCount = n
	filter.Limit = statusSessions
	sessions, err := b.store.ListSessions(ctx, filter)
	if err != nil {
		st.Problem = join(st.Problem, "read sessions: "+err.Error())
	}
	for _, s := range sessions {
		ps := b.pairStatus(s)
		st.Sessions = append(st.Sessions, ps)
		if s.LastUsedAt != nil && (st.LastUsed == nil || s.LastUsedAt.After(*st.LastUsed)) {
			st.LastUsed = s.LastUsedAt
		}
	}
	if counts, err := b.store.MessageCounts(ctx, name); err == nil {
		st.Messages = counts
	}
	return st
}

func join(a, b string) string {
	if b == "" {
		return a
	}
	if a == "" {
		return b
	}
	return a + "; " + b
}

func (b *Broker) reachable(ctx context.Context, t *configs.Team) (bool, string) {
	r, err := b.hosts.For(t)
	if err != nil {
		return false, err.Error()
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.Ping(pctx); err != nil {
		return false, err.Error()
	}
	fi, err := r.Files().Stat(ctx, t.Path)
	switch {
	case err != nil:
		return false, fmt.Sprintf("team path %s on %s: %v", t.Path, r.Where(), err)
	case !fi.IsDir():
		return false, fmt.Sprintf("team path %s on %s is not a directory", t.Path, r.Where())
	}
	return true, ""
}

func (b *Broker) pairStatus(s models.Session) PairStatus {
	ps := PairStatus{From: s.FromTeam, To: s.ToTeam, SessionID: s.SessionID, State: models.ProcessStopped, MessageCount: s.MessageCount, LastUsed: s.LastUsedAt, Note: s.LastError}
	if p := b.existingPair(s.FromTeam, s.ToTeam); p != nil {
		p.mu.Lock()
		ps.State = p.state
		if p.cl != nil {
			ps.PID = p.cl.p.Pid()
			ps.UptimeSec = int64(time.Since(p.cl.started).Seconds())
			ps.Started = p.cl.started
		}
		ps.Current = p.current
		ps.Waiting = p.waitingOf(time.Now())
		p.mu.Unlock()
	}
	return ps
}
