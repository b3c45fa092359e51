package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/hosts"
	"github.com/switchboard-mcp/switchboard/hosts/claudepath"
	"github.com/switchboard-mcp/switchboard/internal/claudetest"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/internal/fakeclaude/fakeclaudebin"
	"github.com/switchboard-mcp/switchboard/internal/poll"
	"github.com/switchboard-mcp/switchboard/local"
	"github.com/switchboard-mcp/switchboard/models"
	"github.com/switchboard-mcp/switchboard/proc"
)

// hostsOf hands hs to the broker, as cmd/switchboard does.
func hostsOf(hs *hosts.Hosts) Hosts {
	return HostsFunc(func(t *configs.Team) (Host, error) {
		tm, err := hs.For(t)
		if tm == nil {
			return nil, err
		}
		return tm, err
	})
}

// recorder is a runner that logs the argv of every process it starts.
type recorder struct {
	proc.Runner
	mu    sync.Mutex
	argvs []string
	procs []proc.Process
}

func (r *recorder) Start(ctx context.Context, spec proc.Spec) (proc.Process, error) {
	p, err := r.Runner.Start(ctx, spec)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.argvs = append(r.argvs, spec.Command+" "+strings.Join(spec.Args, " "))
	if err == nil {
		r.procs = append(r.procs, p)
	}
	return p, err
}

// backend is a Claude Code to run the broker against: the fake claude (fast,
// exact) or the real binary talking to the fake Messages API.
type backend struct {
	name  string
	setup func(t *testing.T, root string) (bin string, env []string, configDir string)
}

var fakeBackend = backend{"fake", func(t *testing.T, root string) (string, []string, string) {
	dir := filepath.Join(root, "claude-config")
	return fakeclaudebin.Build(t), append(os.Environ(), "CLAUDE_CONFIG_DIR="+dir), dir
}}

var realBackend = backend{"real", func(t *testing.T, root string) (string, []string, string) {
	bin := claudetest.Binary(t)
	api := fakeapi.New(t)
	env := append(claudetest.Env(t, api), "CLAUDE_CODE_MAX_RETRIES=0")
	return bin, env, claudetest.ConfigDir(env)
}}

// eachBackend runs f against the fake claude and, unless -short, the real one,
// in parallel: each run has a harness of its own.
func eachBackend(t *testing.T, f func(t *testing.T, be backend)) {
	for _, be := range []backend{fakeBackend, realBackend} {
		t.Run(be.name, func(t *testing.T) {
			if be.name == "real" && testing.Short() {
				t.Skip("-short: the real Claude Code runs in the full test run")
			}
			t.Parallel()
			f(t, be)
		})
	}
}

// harness is a broker over real local processes and a real SQLite file, all
// under one temp dir.
type harness struct {
	t         *testing.T
	root      string
	cfg       *configs.Config
	dbPath    string
	configDir string // CLAUDE_CONFIG_DIR of the local claude processes
	env       []string
	rec       *recorder
	hosts     Hosts // default: every team on h.rec
	// serveSessions, when set, is the broker's Options.ServeSessions.
	serveSessions func(http.Handler)
	store         *models.Store
	b             *Broker
}

func newHarness(t *testing.T, be backend, settings string, teams ...string) *harness {
	t.Helper()
	root := t.TempDir()
	bin, env, configDir := be.setup(t, root)
	h := &harness{t: t, root: root, dbPath: filepath.Join(root, "db", "switchboard.db"), configDir: configDir, env: env}
	var y strings.Builder
	// sessionInitTimeout bounds a hang only: a real Claude Code start can
	// exceed the 30 s default under CPU load.
	fmt.Fprintf(&y, "settings:\n  healthCheckInterval: 1h\n  sessionInitTimeout: 3m\n%s\nteams:\n", settings)
	for _, team := range teams {
		dir := filepath.Join(root, "teams", team+" dir")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&y, "  %s:\n    path: %q\n    claudePath: %q\n    description: the %s team\n", team, dir, bin, team)
	}
	cfg, err := configs.Parse([]byte(y.String()), filepath.Join(root, "switchboard.yaml"))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y.String())
	}
	h.cfg = cfg
	h.rec = &recorder{Runner: local.New(local.Options{Env: env})}
	h.hosts = hostsOf(hosts.New(hosts.Options{Local: h.rec, LocalConfigDir: h.configDir}))
	h.open()
	return h
}

func (h *harness) open() {
	h.t.Helper()
	ctx := context.Background()
	st, err := models.Open(ctx, models.Options{Path: h.dbPath, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		h.t.Fatal(err)
	}
	ring := NewLogRing(100)
	log := slog.New(ring.Handler(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	b, err := New(ctx, h.cfg, Options{Store: st, Logs: ring, Logger: log,
		Hosts: h.hosts, ServeSessions: h.serveSessions})
	if err != nil {
		h.t.Fatal(err)
	}
	h.store, h.b = st, b
	h.t.Cleanup(h.close)
}

func (h *harness) close() {
	if h.b != nil {
		h.b.Close()
		h.store.Close()
		h.b, h.store = nil, nil
	}
}

// restart stops the broker and opens a new one on the same database.
func (h *harness) restart() {
	h.close()
	h.open()
}

func (h *harness) teamPath(team string) string {
	t, _ := h.cfg.Team(team)
	return t.Path
}

func (h *harness) ask(from, to, text string) *Reply {
	h.t.Helper()
	r, err := h.b.Send(context.Background(), SendRequest{From: from, To: to, Text: text, Wait: 2 * time.Minute})
	if err != nil {
		h.t.Fatalf("ask %s->%s: %v", from, to, err)
	}
	return r
}

// starts returns the command line of every claude process started so far.
func (h *harness) starts() []string {
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	var out []string
	for _, a := range h.rec.argvs {
		if !strings.HasPrefix(a, "sh -c "+reapScript) { // reapStale's look for leftovers
			out = append(out, a)
		}
	}
	return out
}

func (h *harness) sessionFile(to, id string) string {
	return claudepath.SessionFile(h.configDir, h.teamPath(to), id)
}

// waitFor polls cond until it holds or the deadline passes.
// waitFor polls cond until it holds (see internal/poll).
var waitFor = poll.Until

// running waits until message id has been written to Claude.
func (h *harness) running(id uint64) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("message %d to be delivered", id), func() bool {
		m, err := h.b.Message(context.Background(), id)
		return err == nil && m.Status == models.MessageRunning && m.Delivered != nil
	})
}

func TestAskRunsInTeamDirAndResumesSession(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		r1 := h.ask("web", "api", "how does auth work?")
		if r1.Status != models.MessageAnswered {
			t.Fatalf("status %s, error %q", r1.Status, r1.Error)
		}
		if !strings.Contains(r1.Answer, "how does auth work?") || !strings.Contains(r1.Answer, "CWD: "+h.teamPath("api")) {
			t.Fatalf("answer %q does not echo the question from the api team's directory %s", r1.Answer, h.teamPath("api"))
		}
		r2 := h.ask("web", "api", "and tokens?")
		if r2.SessionID != r1.SessionID {
			t.Fatalf("second ask used session %s, want %s", r2.SessionID, r1.SessionID)
		}
		s, err := h.store.SessionByPair(context.Background(), "web", "api")
		if err != nil {
			t.Fatal(err)
		}
		if s.MessageCount != 2 {
			t.Fatalf("message count %d, want 2", s.MessageCount)
		}
		if n := len(h.starts()); n != 1 {
			t.Fatalf("%d claude processes started, want 1 reused for both asks", n)
		}
		rep, err := h.b.Report(context.Background(), "web", "api", 0)
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, e := range rep.Entries {
			if e.Role == "user" {
				users = append(users, e.Text)
			}
		}
		if len(users) != 2 || !strings.Contains(users[0], "how does auth work?") || !strings.Contains(users[1], "and tokens?") {
			t.Fatalf("session file holds user messages %q, want both questions in order", users)
		}
		if rep.File != h.sessionFile("api", s.SessionID) {
			t.Fatalf("report read %s, want %s", rep.File, h.sessionFile("api", s.SessionID))
		}
	})
}

func TestRestartResumesSameSession(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		r1 := h.ask("web", "api", "remember the number 7")
		h.restart()
		r2 := h.ask("web", "api", "what was the number?")
		if r2.SessionID != r1.SessionID {
			t.Fatalf("after restart session %s, want %s", r2.SessionID, r1.SessionID)
		}
		starts := h.starts()
		if len(starts) != 2 || !strings.Contains(starts[1], "--resume") || !strings.Contains(starts[1], r1.SessionID) {
			t.Fatalf("process starts %q: want the second to --resume %s", starts, r1.SessionID)
		}
	})
}

func TestSessionFileDeletedBehindBrokersBack(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		r1 := h.ask("web", "api", "first")
		if _, err := h.b.Sleep(context.Background(), "web", "api", false); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(h.sessionFile("api", r1.SessionID)); err != nil {
			t.Fatal(err)
		}
		r2 := h.ask("web", "api", "second")
		if r2.Status != models.MessageAnswered || r2.SessionID != r1.SessionID {
			t.Fatalf("after the file vanished: status %s session %s error %q", r2.Status, r2.SessionID, r2.Error)
		}
		starts := h.starts()
		if !strings.Contains(starts[len(starts)-1], "--session-id") {
			t.Fatalf("last start %q should create the session anew with --session-id", starts[len(starts)-1])
		}
		s, _ := h.store.SessionByPair(context.Background(), "web", "api")
		if !strings.Contains(s.LastError, "missing") {
			t.Fatalf("session note %q should say the file was missing", s.LastError)
		}
	})
}

func TestCancelInterruptsTurnAndProcessStaysUsable(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		ctx := context.Background()
		q, err := h.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "SLEEP 60s\nslow one", NoWait: true})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the slow turn to start", func() bool {
			m, _ := h.b.Message(ctx, q.MessageID)
			return m.Status == models.MessageRunning && m.Delivered != nil
		})
		if _, err := h.b.Cancel(ctx, "web", "api"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the cancelled message to fail", func() bool {
			m, _ := h.b.Message(ctx, q.MessageID)
			return m.Status == models.MessageFailed
		})
		m, _ := h.b.Message(ctx, q.MessageID)
		if !strings.Contains(m.Error, "cancelled") {
			t.Fatalf("error %q should say it was cancelled", m.Error)
		}
		if strings.Contains(m.Answer, "ede_diagnostic") || strings.Contains(m.Error, "ede_diagnostic") {
			t.Fatalf("cancelled message shows Claude's internal stream text: answer %q error %q", m.Answer, m.Error)
		}
		r := h.ask("web", "api", "after cancel")
		if r.Status != models.MessageAnswered {
			t.Fatalf("ask after cancel: %s %q", r.Status, r.Error)
		}
		if n := len(h.starts()); n != 1 {
			t.Fatalf("%d processes started; cancel must keep the process", n)
		}
	})
}

func TestClaudeKilledMidTurn(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		ctx := context.Background()
		first := h.ask("web", "api", "warm up")
		q, err := h.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "SLEEP 60s\nslow", NoWait: true})
		if err != nil {
			t.Fatal(err)
		}
		h.running(q.MessageID)
		h.rec.mu.Lock()
		victim := h.rec.procs[len(h.rec.procs)-1]
		h.rec.mu.Unlock()
		if err := victim.Kill(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the message to fail", func() bool {
			m, _ := h.b.Message(ctx, q.MessageID)
			return m.Status == models.MessageFailed
		})
		m, _ := h.b.Message(ctx, q.MessageID)
		if !strings.Contains(m.Error, "claude process exited") {
			t.Fatalf("error %q should say the claude process exited", m.Error)
		}
		again := h.ask("web", "api", "still there?")
		if again.Status != models.MessageAnswered || again.SessionID != first.SessionID {
			t.Fatalf("after the kill: %s session %s (want %s) %q", again.Status, again.SessionID, first.SessionID, again.Error)
		}
		starts := h.starts()
		if len(starts) != 2 || !strings.Contains(starts[1], "--resume "+first.SessionID) {
			t.Fatalf("starts %q: want a restart with --resume", starts)
		}
	})
}

func TestMissingClaudeBinary(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	team, _ := h.cfg.Team("api")
	team.ClaudePath = filepath.Join(h.root, "no such dir", "claude")
	// Retried like any unreachable team's message; the wait ends with the id
	// and the last error.
	r, err := h.sendUntilFailedAttempt(SendRequest{From: "web", To: "api", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.TimedOut || r.Status != models.MessageQueued || !strings.Contains(r.Error, team.ClaudePath) {
		t.Fatalf("status %s error %q: want still queued, naming %s", r.Status, r.Error, team.ClaudePath)
	}
	s, err := h.store.SessionByPair(context.Background(), "web", "api")
	if err != nil || s.Status != models.SessionError {
		t.Fatalf("session %+v, %v: want it marked error", s, err)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	big := strings.Repeat("x", 2<<20)
	tests := []struct {
		name, from, to, text, want string
	}{
		{"unknown team", "web", "apii", "hi", `unknown team "apii"; teams are: api, web`},
		{"path in team name", "web", "../api", "hi", "invalid team name"},
		{"slash in from", "a/b", "api", "hi", "invalid team name"},
		{"empty message", "web", "api", "  \n", "message is empty"},
		{"oversized message", "web", "api", big, "over the limit of 1048576"},
		{"invalid utf8", "web", "api", "bad \xff\xfe", "not valid UTF-8"},
		{"missing toTeam", "web", "", "hi", "toTeam is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.b.Send(context.Background(), SendRequest{From: tt.from, To: tt.to, Text: tt.text, Wait: time.Second})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	msgs, err := h.store.ListMessages(context.Background(), models.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 0 || len(h.starts()) != 0 {
		t.Fatalf("bad input queued %d messages and started %d processes", len(msgs), len(h.starts()))
	}
}

func TestShellMetacharactersStayText(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		canary := filepath.Join(h.root, "pwned")
		text := fmt.Sprintf("$(touch %[1]s); `touch %[1]s` && touch %[1]s | touch %[1]s > %[1]s '\"\n--resume x", canary)
		r := h.ask("web", "api", text)
		if !strings.Contains(r.Answer, text) {
			t.Fatalf("answer %q does not hold the message verbatim", r.Answer)
		}
		if _, err := os.Stat(canary); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a shell ran part of the message: %s exists", canary)
		}
		for _, s := range h.starts() {
			if strings.Contains(s, "touch") {
				t.Fatalf("message text reached a command line: %s", s)
			}
		}
	})
}

func TestWaitTimeoutKeepsAnswer(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		ctx := context.Background()
		r, err := h.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "SLEEP 1s\nlong question", Wait: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if !r.TimedOut || r.MessageID == 0 {
			t.Fatalf("reply %+v: want TimedOut with a message id", r)
		}
		waitFor(t, "the answer to land", func() bool {
			m, _ := h.b.Message(ctx, r.MessageID)
			return m.Status == models.MessageAnswered
		})
		m, _ := h.b.Message(ctx, r.MessageID)
		if !strings.Contains(m.Answer, "long question") {
			t.Fatalf("kept answer %q", m.Answer)
		}
	})
}

func TestQueuedMessagesInOrderPairsInParallel(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api", "db")
		ctx := context.Background()
		var ids []uint64
		for i := range 10 {
			for _, to := range []string{"api", "db"} {
				r, err := h.b.Send(ctx, SendRequest{From: "web", To: to, Text: fmt.Sprintf("msg %d for %s", i, to), NoWait: true})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, r.MessageID)
			}
		}
		waitFor(t, "every message answered", func() bool {
			for _, id := range ids {
				if m, _ := h.b.Message(ctx, id); m.Status != models.MessageAnswered {
					return false
				}
			}
			return true
		})
		for _, to := range []string{"api", "db"} {
			rep, err := h.b.Report(ctx, "web", to, 0)
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			for _, e := range rep.Entries {
				if e.Role != "user" {
					continue
				}
				if want := fmt.Sprintf("msg %d for %s", i, to); !strings.Contains(e.Text, want) {
					t.Fatalf("%s's session entry %d is %q, want %q", to, i, e.Text, want)
				}
				i++
			}
			if i != 10 {
				t.Fatalf("%s's session holds %d messages, want 10", to, i)
			}
		}
	})
}

func TestMaxProcessesEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "  maxProcesses: 1", "web", "api", "db")
	h.ask("web", "api", "one")
	h.ask("web", "db", "two")
	st, err := h.b.Status(context.Background(), "api")
	if err != nil {
		t.Fatal(err)
	}
	if got := st[0].Sessions[0].State; got != models.ProcessStopped {
		t.Fatalf("api's process is %s; with maxProcesses 1 it should have been evicted", got)
	}
	if r := h.ask("web", "api", "three"); r.Status != models.MessageAnswered {
		t.Fatalf("ask after eviction: %s %q", r.Status, r.Error)
	}
}

func TestConcurrentAsksOnePairOneProcess(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				q := fmt.Sprintf("question %d", i)
				r, err := h.b.Send(context.Background(), SendRequest{From: "web", To: "api", Text: q, Wait: time.Minute})
				if err != nil {
					errs <- err
					return
				}
				if !strings.Contains(r.Answer, q+"\n") && !strings.HasSuffix(strings.SplitN(r.Answer, " | CWD", 2)[0], q) {
					errs <- fmt.Errorf("asker %d got %q", i, r.Answer)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := len(h.starts()); n != 1 {
			t.Fatalf("%d processes for one session, want 1", n)
		}
	})
}

func TestRecoversAnswerWrittenBeforeCrash(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		ctx := context.Background()
		r := h.ask("web", "api", "the answer survives")
		// Make the store look as if the broker died after Claude answered but
		// before the answer was recorded.
		if err := h.store.DB().Model(&models.Message{}).Where("id = ?", r.MessageID).
			Updates(map[string]any{"status": models.MessageRunning, "answer": "", "finished_at": nil}).Error; err != nil {
			t.Fatal(err)
		}
		h.restart()
		waitFor(t, "recovery", func() bool {
			m, _ := h.b.Message(ctx, r.MessageID)
			return m.Status == models.MessageAnswered
		})
		m, _ := h.b.Message(ctx, r.MessageID)
		if m.Answer != r.Answer {
			t.Fatalf("recovered answer %q, want %q", m.Answer, r.Answer)
		}
		rep, _ := h.b.Report(ctx, "web", "api", 0)
		n := 0
		for _, e := range rep.Entries {
			if e.Role == "user" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("session holds the message %d times, want exactly once", n)
		}
	})
}

func TestRebootWithFullPool(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "  maxProcesses: 1", "web", "api")
	r := h.ask("web", "api", "before reboot")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old, fresh, err := h.b.Reboot(ctx, "web", "api")
	if err != nil {
		t.Fatalf("reboot with the pool full: %v", err)
	}
	if old != r.SessionID || fresh == old {
		t.Fatalf("reboot: old %s fresh %s, want old %s and a new id", old, fresh, r.SessionID)
	}
	if r2 := h.ask("web", "api", "after reboot"); r2.SessionID != fresh || r2.Status != models.MessageAnswered {
		t.Fatalf("after reboot: %+v", r2)
	}
	if _, err := os.Stat(h.sessionFile("api", old)); err != nil {
		t.Fatalf("the old session file must be kept: %v", err)
	}
}

func TestLongSessionIsCompacted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, realBackend, "", "web", "api")
	if testing.Short() {
		t.Skip("-short: compaction needs the real Claude Code")
	}
	ctx := context.Background()
	first := h.ask("web", "api", "the first question")
	// As if 500 messages had gone by: the next answer tips it over.
	if err := h.store.DB().Model(&models.Session{}).Where("session_id = ?", first.SessionID).Update("message_count", 500).Error; err != nil {
		t.Fatal(err)
	}
	if r := h.ask("web", "api", "the 501st question"); r.Status != models.MessageAnswered {
		t.Fatalf("ask: %s %q", r.Status, r.Error)
	}
	var s *models.Session
	waitFor(t, "the compaction to be recorded", func() bool {
		s, _ = h.store.SessionByPair(ctx, "web", "api")
		return s.CompactionCount == 1
	})
	if s.MessageCount != 0 || s.Status != models.SessionActive || s.SessionID != first.SessionID {
		t.Fatalf("after compaction: %+v", s)
	}
	data, err := os.ReadFile(h.sessionFile("api", first.SessionID))
	if err != nil || !strings.Contains(string(data), `"compact_boundary"`) {
		t.Fatalf("the session file has no compact boundary (%v)", err)
	}
	if r := h.ask("web", "api", "after compaction"); r.Status != models.MessageAnswered || r.SessionID != first.SessionID {
		t.Fatalf("ask after compaction: %+v", r)
	}
}
