package broker

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/configs"

	"github.com/switchboard-mcp/switchboard/hosts"
	"github.com/switchboard-mcp/switchboard/internal/fakeclaude/fakeclaudebin"
	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
	"github.com/switchboard-mcp/switchboard/local"
	"github.com/switchboard-mcp/switchboard/models"
	"github.com/switchboard-mcp/switchboard/proc"
	"github.com/switchboard-mcp/switchboard/remote"
)

// claudesFor lists the pids of processes running Claude for a session in
// switchboard's stream-json mode, on this machine (where the test sshd's
// sessions run too).
func claudesFor(t *testing.T, sessionID string) []string {
	t.Helper()
	out, err := exec.Command("pgrep", "-f", stalePattern(sessionID)).Output()
	if err != nil {
		var exit *exec.ExitError
		if ok := errors.As(err, &exit); ok && exit.ExitCode() == 1 {
			return nil
		}
		t.Fatalf("pgrep: %v", err)
	}
	return strings.Fields(string(out))
}

// A Claude process left running for a session (its daemon was killed) is
// stopped before a new one resumes the session: never two at once.
func TestStaleClaudeReapedBeforeResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	r1 := h.ask("web", "api", "first")
	h.close()
	stale := exec.Command(fakeclaudebin.Build(t), "--resume", r1.SessionID, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose")
	stale.Dir, stale.Env = h.teamPath("api"), h.env
	stdin, err := stale.StdinPipe() // held open: the stale process waits for input
	if err != nil {
		t.Fatal(err)
	}
	if err := stale.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { stale.Wait(); close(exited) }()
	t.Cleanup(func() { stdin.Close(); stale.Process.Kill(); <-exited })
	waitFor(t, "the stale process to show", func() bool { return len(claudesFor(t, r1.SessionID)) == 1 })

	h.open()
	if r2 := h.ask("web", "api", "second"); r2.Status != models.MessageAnswered || r2.SessionID != r1.SessionID {
		t.Fatalf("resume: %+v", r2)
	}
	select {
	case <-exited:
	default:
		t.Fatalf("the stale claude (pid %d) still runs beside the resumed one: %v", stale.Process.Pid, claudesFor(t, r1.SessionID))
	}
	if got := claudesFor(t, r1.SessionID); len(got) != 1 {
		t.Fatalf("%d claude processes for session %s, want 1: %v", len(got), r1.SessionID, got)
	}
}

// When the SSH connection dies mid-turn (as when the daemon is killed), the
// remote Claude dies with its channel instead of running on.
func TestRemoteClaudeDiesWithItsConnection(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t)
	h := newRemoteHarness(t, fakeBackend, srv, srv.SSHConfig)
	// Our own pool, so the test can drop its connection as a killed daemon's
	// kernel would.
	h.close()
	pool := remote.NewPool(nil)
	t.Cleanup(func() { pool.Close() })
	h.hosts = hostsOf(hosts.New(hosts.Options{Local: local.New(local.Options{Env: h.env}), Pool: pool, SSHConfig: srv.SSHConfig, LocalConfigDir: h.configDir}))
	h.open()
	ctx := context.Background()
	m, err := h.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "SLEEP 1h\nlong", NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	h.running(m.MessageID)
	s, err := h.store.SessionByPair(ctx, "web", "api")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the remote claude to run", func() bool { return len(claudesFor(t, s.SessionID)) == 1 })
	pool.Close() // the connection drops; nobody stops the remote process
	start := time.Now()
	waitFor(t, "the remote claude to die with its connection", func() bool { return len(claudesFor(t, s.SessionID)) == 0 })
	t.Logf("remote claude gone %s after the connection dropped", time.Since(start).Round(time.Millisecond))
}

// A connection lost mid-turn is a retryable fault: the host's sshd dies
// (killing the remote claude with it) and comes back, and the message is
// settled from the session file and answered, never failed and never
// written to Claude twice.
func TestConnectionLostMidTurnIsRetried(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t)
	h := newRemoteHarness(t, fakeBackend, srv, srv.SSHConfig)
	if r := h.ask("web", "api", "warm up"); r.Status != models.MessageAnswered {
		t.Fatalf("warm up: %s %q", r.Status, r.Error)
	}
	type result struct {
		r   *Reply
		err error
	}
	done := make(chan result, 1)
	var id uint64
	go func() {
		r, err := h.b.Send(context.Background(), SendRequest{From: "web", To: "api", Text: "SLEEP 2s\nsurvives the cut", Wait: 3 * time.Minute})
		done <- result{r, err}
	}()
	waitFor(t, "the message to be queued", func() bool {
		return h.store.DB().Model(&models.Message{}).Where("text LIKE ?", "%survives the cut%").Select("id").Take(&id).Error == nil
	})
	h.running(id)
	srv.Stop()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.r.Status != models.MessageAnswered || res.r.Answer == "" {
		t.Fatalf("after the connection was lost mid-turn: %s %q %q; want it settled and answered", res.r.Status, res.r.Answer, res.r.Error)
	}
	if n := countContaining(h.userEntries("web", "api"), "survives the cut"); n != 1 {
		t.Fatalf("the message reached Claude %d times, want once", n)
	}
}

// An idle remote process whose connection froze is reported as a lost SSH
// connection, and the message is kept for a retry, not failed as "did not
// start the turn within sessionInitTimeout".
func TestFrozenConnectionReportedAsLost(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t)
	h := newRemoteHarness(t, fakeBackend, srv, srv.SSHConfig)
	ctx := context.Background()
	if r := h.ask("web", "api", "warm up"); r.Status != models.MessageAnswered {
		t.Fatalf("warm up: %s %q", r.Status, r.Error)
	}
	h.close()
	h.cfg.Settings.SessionInitTimeout.Duration = 300 * time.Millisecond
	h.open()
	if _, err := h.b.Wake(ctx, "web", "api"); err != nil {
		t.Fatal(err)
	}
	srv.Freeze()
	t.Cleanup(func() { srv.Stop() })
	m, err := h.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "into the void", NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	var cur *Reply
	waitFor(t, "the failed attempt to be recorded", func() bool {
		cur, err = h.b.Message(ctx, m.MessageID)
		return err == nil && cur.Error != ""
	})
	if cur.Status.Final() || strings.Contains(cur.Error, "sessionInitTimeout") || !strings.Contains(strings.ToLower(cur.Error), "connection") || !strings.Contains(cur.Error, "lost") {
		t.Fatalf("message %s with error %q; want it kept for a retry, saying the SSH connection was lost", cur.Status, cur.Error)
	}
}

// sessionWriterHost lets a stand-in for a stale process write the session's
// file just before the broker's first --session-id start, as a process an
// earlier daemon left running can do after spawn looked for the file.
type sessionWriterHost struct {
	Host
	once  *sync.Once
	write func(sessionID string)
}

func (s sessionWriterHost) Start(ctx context.Context, spec proc.Spec) (proc.Process, error) {
	if i := slices.Index(spec.Args, "--session-id"); i >= 0 && i+1 < len(spec.Args) {
		s.once.Do(func() { s.write(spec.Args[i+1]) })
	}
	return s.Host.Start(ctx, spec)
}

// A Claude that refuses to start because another process wrote the
// session's file since the broker looked (Claude Code: "Session ID … is
// already in use") costs a retry, not the message: the retry finds the
// file, resumes the session and answers, once.
func TestSessionInUseAtStartIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	ctx := context.Background()
	// A session on record with no file yet: the broker starts Claude with
	// --session-id, not --resume.
	sess, _, err := h.store.GetOrCreateSession(ctx, "web", "api")
	if err != nil {
		t.Fatal(err)
	}
	h.close()
	inner := h.hosts
	var once sync.Once
	h.hosts = HostsFunc(func(team *configs.Team) (Host, error) {
		host, err := inner.For(team)
		if err != nil {
			return host, err
		}
		return sessionWriterHost{Host: host, once: &once, write: func(id string) {
			stale := exec.Command(fakeclaudebin.Build(t), "--session-id", id, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose")
			stale.Dir, stale.Env = h.teamPath("api"), h.env
			stale.Stdin = strings.NewReader(`{"type":"user","message":{"role":"user","content":"from the stale process"}}` + "\n")
			if out, err := stale.CombinedOutput(); err != nil {
				t.Errorf("stale process: %v\n%s", err, out)
			}
		}}, nil
	})
	h.open()

	r := h.ask("web", "api", "survives the race")
	if r.Status != models.MessageAnswered || r.SessionID != sess.SessionID {
		t.Fatalf("after Claude found its session in use: %s %q (session %s, want %s); want it retried and answered", r.Status, r.Error, r.SessionID, sess.SessionID)
	}
	starts := h.starts()
	if len(starts) != 2 || !strings.Contains(starts[0], "--session-id "+sess.SessionID) || !strings.Contains(starts[1], "--resume "+sess.SessionID) {
		t.Fatalf("claude starts:\n%s\nwant a --session-id start that failed, then a --resume", strings.Join(starts, "\n"))
	}
	if n := countContaining(h.userEntries("web", "api"), "survives the race"); n != 1 {
		t.Fatalf("the message reached Claude %d times, want once", n)
	}
}
