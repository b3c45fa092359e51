package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/models"
)

// ErrUnknownTeam is wrapped by errors about a team that is not configured.
var ErrUnknownTeam = errors.New("unknown team")

func (b *Broker) unknownTeam(name string) error {
	return fmt.Errorf("%w %q; teams are: %s", ErrUnknownTeam, name, strings.Join(b.cfg.TeamNames(), ", "))
}

// checkPair validates a (from, to) pair as it arrives from a caller.
func (b *Broker) checkPair(from, to string) error {
	if err := configs.ValidTeamName(from); err != nil {
		return fmt.Errorf("fromTeam: %w", err)
	}
	if to == "" {
		return fmt.Errorf("toTeam is required; teams are: %s", strings.Join(b.cfg.TeamNames(), ", "))
	}
	if err := configs.ValidTeamName(to); err != nil {
		return fmt.Errorf("toTeam: %w", err)
	}
	if _, ok := b.cfg.Team(to); !ok {
		return b.unknownTeam(to)
	}
	return nil
}

func (b *Broker) checkText(text string) error {
	limit := b.cfg.Settings.MaxMessageBytes
	if limit <= 0 {
		limit = 1 << 20
	}
	switch {
	case strings.TrimSpace(text) == "":
		return errors.New("message is empty; write the question for the other team")
	case len(text) > limit:
		return fmt.Errorf("message is %d bytes, over the limit of %d; shorten it or point to a file the team can read", len(text), limit)
	case !utf8.ValidString(text):
		return errors.New("message is not valid UTF-8; send text")
	}
	return nil
}

// SendRequest is one message to deliver.
type SendRequest struct {
	From, To string
	Text     string
	// Wait is how long to wait for the answer: 0 waits without limit.
	Wait time.Duration
	// NoWait queues the message and returns at once.
	NoWait bool
	// Progress, when set, receives partial assistant text while waiting.
	Progress func(text string)
}

// Reply tells what became of a message.
type Reply struct {
	MessageID  uint64               `json:"messageId"`
	From       string               `json:"fromTeam"`
	To         string               `json:"toTeam"`
	Status     models.MessageStatus `json:"status"`
	Answer     string               `json:"response,omitempty"`
	Error      string               `json:"error,omitempty"`
	SessionID  string               `json:"sessionId,omitempty"`
	Duration   time.Duration        `json:"-"`
	DurationMS int64                `json:"duration,omitempty"`
	Created    time.Time            `json:"createdAt"`
	Delivered  *time.Time           `json:"deliveredAt,omitempty"`
	Finished   *time.Time           `json:"finishedAt,omitempty"`
	Attempts   int                  `json:"attempts,omitempty"`
	// TimedOut says the wait ended before the answer; the turn goes on.
	TimedOut bool `json:"timedOut,omitempty"`
}

func replyOf(m *models.Message) *Reply {
	return &Reply{
		MessageID: m.ID, From: m.FromTeam, To: m.ToTeam, Status: m.Status,
		Answer: m.Answer, Error: m.Error, SessionID: m.SessionID,
		Duration: time.Duration(m.DurationMs) * time.Millisecond, DurationMS: m.DurationMs,
		Created: m.CreatedAt, Delivered: m.DeliveredAt, Finished: m.FinishedAt, Attempts: m.Attempts,
	}
}

// Send queues a message durably and, unless NoWait, waits for its answer. A
// wait that ends first returns the message id with TimedOut set: the answer
// is kept and message_status fetches it later.
func (b *Broker) Send(ctx context.Context, req SendRequest) (*Reply, error) {
	if err := b.checkPair(req.From, req.To); err != nil {
		return nil, err
	}
	if err := b.checkText(req.Text); err != nil {
		return nil, err
	}
	p, err := b.pairFor(req.From, req.To)
	if err != nil {
		return nil, err
	}
	ttl := b.cfg.Settings.MessageTTL.Duration
	if ttl <= 0 {
		ttl = 30 * 24 * time.Hour
	}
	m := &models.Message{FromTeam: req.From, ToTeam: req.To, Text: req.Text, Async: req.NoWait, ExpiresAt: time.Now().Add(ttl)}
	var w *waiter
	if err := b.store.EnqueueMessage(ctx, m); err != nil {
		return nil, fmt.Errorf("queue message for %s: %w", req.To, err)
	}
	if !req.NoWait {
		w = b.addWaiter(m.ID, req.Progress)
		defer b.removeWaiter(m.ID, w)
	}
	p.poke()
	if req.NoWait {
		return replyOf(m), nil
	}
	var timeout <-chan time.Time
	if req.Wait > 0 {
		t := time.NewTimer(req.Wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case r := <-w.done:
		if r.err != nil {
			return nil, r.err
		}
		return replyOf(r.msg), nil
	case <-timeout:
	case <-ctx.Done():
	}
	cur, err := b.store.MessageByID(context.Background(), m.ID)
	if err != nil {
		return nil, fmt.Errorf("read message %d: %w", m.ID, err)
	}
	r := replyOf(cur)
	r.TimedOut = !isFinal(cur.Status)
	return r, nil
}

func isFinal(s models.MessageStatus) bool {
	return s == models.MessageAnswered || s == models.MessageFailed || s == models.MessageExpired
}

// Message returns what became of a message.
func (b *Broker) Message(ctx context.Context, id uint64) (*Reply, error) {
	m, err := b.store.MessageByID(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		return nil, fmt.Errorf("no message with id %d; ids come from send_message or quick_message", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read message %d: %w", id, err)
	}
	return replyOf(m), nil
}

type waitResult struct {
	msg *models.Message
	err error
}

type waiter struct {
	done     chan waitResult
	progress func(string)
}

func (b *Broker) addWaiter(id uint64, progress func(string)) *waiter {
	w := &waiter{done: make(chan waitResult, 1), progress: progress}
	b.mu.Lock()
	b.waiters[id] = append(b.waiters[id], w)
	b.mu.Unlock()
	return w
}

func (b *Broker) removeWaiter(id uint64, w *waiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ws := b.waiters[id]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(b.waiters, id)
	} else {
		b.waiters[id] = ws
	}
}

// notify hands a finished message to its waiters. A nil msg with an error is
// an attempt that failed while the message stays queued: waiters keep waiting.
func (b *Broker) notify(id uint64, msg *models.Message, err error) {
	if msg == nil && err != nil {
		return
	}
	b.mu.Lock()
	ws := b.waiters[id]
	delete(b.waiters, id)
	b.mu.Unlock()
	for _, w := range ws {
		w.done <- waitResult{msg: msg, err: err}
	}
}

func (b *Broker) progress(id uint64, text string) {
	b.mu.Lock()
	ws := append([]*waiter(nil), b.waiters[id]...)
	b.mu.Unlock()
	for _, w := range ws {
		if w.progress != nil {
			w.progress(text)
		}
	}
}

// TeamInfo describes a configured team.
type TeamInfo struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Where       string `json:"where"`
	Path        string `json:"path"`
}

// Teams lists every configured team.
func (b *Broker) Teams() []TeamInfo {
	var out []TeamInfo
	for _, name := range b.cfg.TeamNames() {
		t, _ := b.cfg.Team(name)
		out = append(out, TeamInfo{Name: name, Description: t.Description, Where: b.where(t), Path: t.Path})
	}
	return out
}

func (b *Broker) where(t *configs.Team) string {
	if !t.IsRemote() {
		return "local"
	}
	if r, err := b.runners.For(t); err == nil {
		return r.Where()
	}
	if t.SSH != "" {
		return t.SSH
	}
	return t.Remote
}

// PairStatus is the live state of one session's process.
type PairStatus struct {
	From         string              `json:"fromTeam"`
	To           string              `json:"toTeam"`
	SessionID    string              `json:"sessionId,omitempty"`
	State        models.ProcessState `json:"processState"`
	PID          int                 `json:"pid,omitempty"`
	UptimeSec    int64               `json:"uptimeSeconds,omitempty"`
	MessageCount int                 `json:"messageCount"`
	Current      uint64              `json:"answeringMessageId,omitempty"`
	LastUsed     *time.Time          `json:"lastUsed,omitempty"`
	Note         string              `json:"note,omitempty"`
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
}

// statusSessions is how many of a team's sessions team_status lists: a team
// asked by thousands of pairs must not load them all.
const statusSessions = 50

// pinger is what a runner offers when it can check its host cheaply.
type pinger interface {
	Ping(ctx context.Context) error
}

// Status reports on one team, or on every team when name is "".
func (b *Broker) Status(ctx context.Context, name string) ([]TeamStatus, error) {
	names := b.cfg.TeamNames()
	if name != "" {
		if _, ok := b.cfg.Team(name); !ok {
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
	t, _ := b.cfg.Team(name)
	st := TeamStatus{TeamInfo: TeamInfo{Name: name, Description: t.Description, Where: b.where(t), Path: t.Path}, Sessions: []PairStatus{}}
	st.Reachable, st.Problem = b.reachable(ctx, t)
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
	if a == "" {
		return b
	}
	return a + "; " + b
}

func (b *Broker) reachable(ctx context.Context, t *configs.Team) (bool, string) {
	r, err := b.runners.For(t)
	if err != nil {
		return false, err.Error()
	}
	if p, ok := r.(pinger); ok {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := p.Ping(pctx); err != nil {
			return false, err.Error()
		}
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
		}
		ps.Current = p.current
		p.mu.Unlock()
	}
	return ps
}

// Wake starts the pair's process, or keeps the one that runs.
func (b *Broker) Wake(ctx context.Context, from, to string) (*PairStatus, error) {
	if err := b.checkPair(from, to); err != nil {
		return nil, err
	}
	p, err := b.pairFor(from, to)
	if err != nil {
		return nil, err
	}
	if _, _, err := b.ensureProcess(ctx, p, false); err != nil {
		return nil, err
	}
	s, err := b.store.SessionByPair(ctx, from, to)
	if err != nil {
		return nil, err
	}
	ps := b.pairStatus(*s)
	return &ps, nil
}

// WakeResult is one team's outcome in WakeAll.
type WakeResult struct {
	Team   string      `json:"team"`
	Status *PairStatus `json:"status,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// WakeAll wakes every team for from. In parallel the pool bound still holds:
// at most maxProcesses start at once.
func (b *Broker) WakeAll(ctx context.Context, from string, parallel bool) []WakeResult {
	names := b.cfg.TeamNames()
	out := make([]WakeResult, len(names))
	limit := 1
	if parallel {
		limit = cap(b.slots)
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i].Team = n
			st, err := b.Wake(ctx, from, n)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Status = st
		}()
	}
	wg.Wait()
	return out
}

// Sleep stops the pair's process. Without force it refuses while a turn runs.
func (b *Broker) Sleep(ctx context.Context, from, to string, force bool) (bool, error) {
	if err := b.checkPair(from, to); err != nil {
		return false, err
	}
	p := b.existingPair(from, to)
	if p == nil {
		return false, nil
	}
	p.mu.Lock()
	running, busy, cur := p.cl != nil, p.busy, p.current
	p.mu.Unlock()
	if !running {
		return false, nil
	}
	if busy && !force {
		return false, fmt.Errorf("team %s is answering message %d for %s; wait, cancel it with session_cancel, or sleep with force", to, cur, from)
	}
	p.stopProcess(b, "team_sleep")
	return true, nil
}

// Cancel interrupts the pair's running turn; the process stays up.
func (b *Broker) Cancel(ctx context.Context, from, to string) (uint64, error) {
	if err := b.checkPair(from, to); err != nil {
		return 0, err
	}
	p := b.existingPair(from, to)
	if p == nil {
		return 0, fmt.Errorf("nothing to cancel: no process for %s->%s", from, to)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cl == nil || !p.busy {
		return 0, fmt.Errorf("nothing to cancel: team %s is not answering %s", to, from)
	}
	p.cancelled = true
	if p.turnStarted {
		if err := p.cl.interrupt(); err != nil {
			return 0, fmt.Errorf("interrupt %s->%s: %w", from, to, err)
		}
	}
	return p.current, nil
}

// Reboot gives the pair a new session id and a fresh process. The old
// session file is kept.
func (b *Broker) Reboot(ctx context.Context, from, to string) (old, fresh string, err error) {
	if err := b.checkPair(from, to); err != nil {
		return "", "", err
	}
	if s, err := b.store.SessionByPair(ctx, from, to); err == nil {
		old = s.SessionID
	}
	p, err := b.pairFor(from, to)
	if err != nil {
		return "", "", err
	}
	p.mu.Lock()
	busy := p.busy
	p.mu.Unlock()
	if busy {
		return "", "", fmt.Errorf("team %s is answering %s; cancel the turn with session_cancel first", to, from)
	}
	p.stopProcess(b, "session_reboot")
	s, err := b.store.ReplaceSessionID(ctx, from, to, models.NewSessionID())
	if err != nil {
		return "", "", fmt.Errorf("new session for %s->%s: %w", from, to, err)
	}
	if _, _, err := b.ensureProcess(ctx, p, false); err != nil {
		return old, s.SessionID, err
	}
	return old, s.SessionID, nil
}

// Delete forgets the pair's session, and removes its file when asked.
func (b *Broker) Delete(ctx context.Context, from, to string, deleteFile bool) (string, error) {
	if err := b.checkPair(from, to); err != nil {
		return "", err
	}
	s, err := b.store.SessionByPair(ctx, from, to)
	if errors.Is(err, models.ErrNotFound) {
		return "", fmt.Errorf("no session for %s->%s", from, to)
	}
	if err != nil {
		return "", err
	}
	if p := b.existingPair(from, to); p != nil {
		p.stopProcess(b, "session_delete")
	}
	var removed string
	if deleteFile {
		t, _ := b.cfg.Team(to)
		r, err := b.runners.For(t)
		if err != nil {
			return "", err
		}
		file, err := b.sessionFile(ctx, r, t, s.SessionID)
		if err != nil {
			return "", err
		}
		if err := r.Files().Remove(ctx, file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("remove session file %s on %s: %w", file, r.Where(), err)
		}
		removed = file
	}
	if err := b.store.DeleteSession(ctx, s.SessionID); err != nil {
		return "", fmt.Errorf("delete session %s: %w", s.SessionID, err)
	}
	return removed, nil
}

// Report is a session's conversation as its session file holds it.
type Report struct {
	SessionID string  `json:"sessionId"`
	File      string  `json:"file"`
	Where     string  `json:"where"`
	Total     int     `json:"total"`
	Entries   []Entry `json:"entries"`
}

// Report reads the pair's session file from the team's host.
func (b *Broker) Report(ctx context.Context, from, to string, limit int) (*Report, error) {
	if err := b.checkPair(from, to); err != nil {
		return nil, err
	}
	s, err := b.store.SessionByPair(ctx, from, to)
	if errors.Is(err, models.ErrNotFound) {
		return nil, fmt.Errorf("no session for %s->%s yet; send a message first", from, to)
	}
	if err != nil {
		return nil, err
	}
	t, _ := b.cfg.Team(to)
	r, err := b.runners.For(t)
	if err != nil {
		return nil, err
	}
	file, err := b.sessionFile(ctx, r, t, s.SessionID)
	if err != nil {
		return nil, err
	}
	entries, err := readTranscript(ctx, r.Files(), file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("session file %s is missing on %s; the next message starts a new conversation", file, r.Where())
	}
	if err != nil {
		return nil, fmt.Errorf("read session file %s on %s: %w", file, r.Where(), err)
	}
	rep := &Report{SessionID: s.SessionID, File: file, Where: r.Where(), Total: len(entries), Entries: entries}
	if limit > 0 && len(entries) > limit {
		rep.Entries = entries[len(entries)-limit:]
	}
	return rep, nil
}

// Fork returns the command that opens the pair's session interactively in a
// terminal, as a fork so the broker's session is left alone.
func (b *Broker) Fork(ctx context.Context, from, to string) (string, error) {
	if err := b.checkPair(from, to); err != nil {
		return "", err
	}
	s, err := b.store.SessionByPair(ctx, from, to)
	if errors.Is(err, models.ErrNotFound) {
		return "", fmt.Errorf("no session for %s->%s yet; send a message first", from, to)
	}
	if err != nil {
		return "", err
	}
	t, _ := b.cfg.Team(to)
	bin := t.ClaudePath
	if bin == "" {
		bin = "claude"
	}
	cmd := "cd " + shellQuote(t.Path) + " && " + shellQuote(bin) + " --resume " + s.SessionID + " --fork-session"
	if !t.IsRemote() {
		return cmd, nil
	}
	dest := t.SSH
	if dest == "" {
		dest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t.Remote), "ssh"))
		return "ssh -t " + dest + " " + shellQuote(cmd), nil
	}
	return "ssh -t " + shellQuote(dest) + " " + shellQuote(cmd), nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@=+,~", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
