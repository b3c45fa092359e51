package broker

import (
	"context"
	"fmt"
	"slices"
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
	// Broker and BrokerAlive, in a fleet of brokers sharing one store, name
	// the broker that runs the team and say whether it is alive.
	Broker      string `json:"broker,omitempty"`
	BrokerAlive *bool  `json:"brokerAlive,omitempty"`
}

// Teams lists every configured team and, in a fleet, the other brokers'.
func (b *Broker) Teams() []TeamInfo { return b.TeamsContext(context.Background()) }

// TeamsContext is Teams with a context for reading the fleet's brokers.
func (b *Broker) TeamsContext(ctx context.Context) []TeamInfo {
	var out []TeamInfo
	for _, name := range b.config().TeamNames() {
		t, _ := b.config().Team(name)
		ti := TeamInfo{Name: name, Description: t.Description, Where: b.where(t), Path: t.Path, Waiting: b.waitingFor(name)}
		b.ownInfo(&ti)
		out = append(out, ti)
	}
	return append(out, b.fleetInfo(ctx)...)
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
	others, err := b.fleetTeams(ctx)
	if err != nil {
		// The store's trouble shows in every team's problem; the teams
		// this broker runs are still reported.
		b.log.Warn("list the fleet's teams for team_status", "err", err)
	}
	if name != "" {
		_, own := b.config().Team(name)
		_, fleet := others[name]
		if !own && !fleet {
			return nil, b.unknownTeamIn(others, name)
		}
		names = []string{name}
	} else {
		names = append(names, slices.Sorted(mapKeys(others))...)
	}
	out := make([]TeamStatus, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if h, ok := others[n]; ok {
				out[i] = b.fleetTeamStatus(ctx, n, h)
				return
			}
			out[i] = b.teamStatus(ctx, n)
		}()
	}
	wg.Wait()
	return out, nil
}

func (b *Broker) teamStatus(ctx context.Context, name string) TeamStatus {
	t, _ := b.config().Team(name)
	st := TeamStatus{TeamInfo: TeamInfo{Name: name, Description: t.Description, Where: b.where(t), Path: t.Path}, Sessions: []PairStatus{}}
	b.ownInfo(&st.TeamInfo)
	st.Reachable, st.Problem = b.reachable(ctx, t)
	st.Problem = join(st.Problem, b.StoreProblem())
	if st.Reachable {
		st.AskBack = b.askBackStatus(ctx, t)
	}
	b.storedStatus(ctx, &st)
	st.Waiting = b.waitingFor(name)
	return st
}

// fleetTeamStatus reports on a team another broker runs, from the shared
// store: that broker alone can reach the team.
func (b *Broker) fleetTeamStatus(ctx context.Context, name string, h teamHome) TeamStatus {
	st := TeamStatus{TeamInfo: fleetTeamInfo(name, h), Sessions: []PairStatus{}, Reachable: h.Alive}
	if !h.Alive {
		st.Problem = fmt.Sprintf("broker %s, which runs this team, is not alive (last heartbeat %s ago)", h.Broker, time.Since(h.Heartbeat).Round(time.Second))
	}
	b.storedStatus(ctx, &st)
	return st
}

// storedStatus fills in a team's sessions and message counts from the store.
func (b *Broker) storedStatus(ctx context.Context, st *TeamStatus) {
	name := st.Name
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
	} else if b.fleet != nil {
		// Not run here, perhaps by another broker: the store has its state.
		ps.State = s.ProcessState
	}
	return ps
}
