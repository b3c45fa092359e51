package broker

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/claudetest"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
	"github.com/switchboard-mcp/switchboard/models"
)

// apiBackends are the backends with a handle on the fake Messages API the
// real claude talks to (nil for the fake claude, which makes no requests).
func apiBackends(t *testing.T, f func(t *testing.T, be backend, api func() *fakeapi.Server)) {
	var srv *fakeapi.Server
	real := backend{"real", func(t *testing.T, root string) (string, []string, string) {
		bin := claudetest.Binary(t)
		srv = fakeapi.New(t)
		env := append(claudetest.Env(t, srv), "CLAUDE_CODE_MAX_RETRIES=0")
		return bin, env, claudetest.ConfigDir(env)
	}}
	for _, be := range []backend{fakeBackend, real} {
		t.Run(be.name, func(t *testing.T) {
			if be.name == "real" && testing.Short() {
				t.Skip("-short: the real Claude Code runs in the full test run")
			}
			srv = nil
			f(t, be, func() *fakeapi.Server { return srv })
		})
	}
}

// withStandby gives team n standby processes and restarts the broker so it
// starts them.
func (h *harness) withStandby(team string, n int) {
	h.t.Helper()
	tm, ok := h.cfg.Team(team)
	if !ok {
		h.t.Fatalf("no team %s", team)
	}
	tm.Standby = &n
	h.restart()
}

// readyStandby waits until team has n ready standby processes and returns them.
func (h *harness) readyStandby(team string, n int) []*standby {
	h.t.Helper()
	waitFor(h.t, "standby claude for "+team+" to be ready", func() bool { return h.b.Standby(team) == n })
	h.b.standby.mu.Lock()
	defer h.b.standby.mu.Unlock()
	return append([]*standby(nil), h.b.standby.ready[team]...)
}

func (h *harness) pairProcess(from, to string) *claude {
	p := h.b.existingPair(from, to)
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cl
}

func exited(c *claude) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// noRequestBefore fails when the fake Messages API saw any request before t:
// a standby process must cost no model call while it waits.
func noRequestBefore(tb testing.TB, api *fakeapi.Server, t time.Time) {
	tb.Helper()
	if api == nil {
		return
	}
	for _, r := range api.Requests() {
		if r.Time.Before(t) {
			tb.Errorf("the Messages API got %s %s at %s, before the first real message at %s", r.Method, r.Path, r.Time.Format(time.StampMicro), t.Format(time.StampMicro))
		}
	}
}

func TestStandbyTakenByFirstAskOfNewPairAndReplaced(t *testing.T) {
	t.Parallel()
	apiBackends(t, func(t *testing.T, be backend, api func() *fakeapi.Server) {
		h := newHarness(t, be, "", "web", "api", "db")
		h.withStandby("api", 1)
		sb := h.readyStandby("api", 1)[0]
		if h.b.Standby("web") != 0 {
			t.Fatalf("team web has %d standby processes, want 0 (standby is set on api only)", h.b.Standby("web"))
		}
		if a := api(); a != nil && a.Count() != 0 {
			t.Fatalf("a standby process that has had no message made %d API requests: %v", a.Count(), a.Requests())
		}
		// The real Claude Code lists the warm-up hook as sure to block; the
		// fake answers no hooks listing and gets /cost.
		if want := map[bool]string{true: warmedByHook, false: warmedByCommand}[api() != nil]; sb.warmedBy != want {
			t.Fatalf("standby warmed by %q, want %q", sb.warmedBy, want)
		}
		starts := h.starts()
		if len(starts) != 1 || !strings.Contains(starts[0], "--session-id "+sb.cl.sessionID) {
			t.Fatalf("starts %q: want one claude with --session-id %s", starts, sb.cl.sessionID)
		}

		asked := time.Now()
		r := h.ask("web", "api", "first question")
		if r.Status != models.MessageAnswered || !strings.Contains(r.Answer, "first question") {
			t.Fatalf("first ask: %s %q %q", r.Status, r.Answer, r.Error)
		}
		noRequestBefore(t, api(), asked)
		if r.SessionID != sb.cl.sessionID {
			t.Fatalf("the new pair got session %s, want the standby's %s", r.SessionID, sb.cl.sessionID)
		}
		if cl := h.pairProcess("web", "api"); cl != sb.cl || cl.p.Pid() != sb.cl.p.Pid() {
			t.Fatalf("the pair runs pid %v, want the standby's pid %d", cl, sb.cl.p.Pid())
		}
		next := h.readyStandby("api", 1)[0]
		if next == sb || next.cl.p.Pid() == sb.cl.p.Pid() {
			t.Fatal("the replacement standby is the one just taken")
		}
		if n := len(h.starts()); n != 2 {
			// One standby taken, one replacement: no cold start for the ask.
			t.Fatalf("%d claude starts, want 2 (the standby and its replacement): %q", n, h.starts())
		}
		s, err := h.store.SessionByPair(context.Background(), "web", "api")
		if err != nil || !strings.Contains(s.LaunchCommand, "--session-id "+sb.cl.sessionID) {
			t.Fatalf("session record: %+v, %v; want the standby's launch command", s, err)
		}

		// The warm-up left no trace in the conversation.
		if users := h.userEntries("web", "api"); len(users) != 1 || !strings.Contains(users[0], "first question") {
			t.Fatalf("session file user entries %q, want only the first question", users)
		}
		// A second pair to the same team takes the replacement; an existing
		// pair never takes one.
		r2 := h.ask("db", "api", "from the db team")
		if r2.SessionID != next.cl.sessionID {
			t.Fatalf("second new pair got session %s, want the replacement's %s", r2.SessionID, next.cl.sessionID)
		}
		h.readyStandby("api", 1)
		r3 := h.ask("web", "api", "second question")
		if r3.SessionID != r.SessionID {
			t.Fatalf("existing pair moved to session %s from %s", r3.SessionID, r.SessionID)
		}

		// The adopted session survives a restart: --resume of a session whose
		// file began with the warm-up.
		h.restart()
		r4 := h.ask("web", "api", "after restart")
		if r4.Status != models.MessageAnswered || r4.SessionID != r.SessionID {
			t.Fatalf("after restart: %s session %s (want %s) %q", r4.Status, r4.SessionID, r.SessionID, r4.Error)
		}
		found := false
		for _, s := range h.starts() {
			found = found || strings.Contains(s, "--resume "+r.SessionID)
		}
		if !found {
			t.Fatalf("no --resume %s among starts %q", r.SessionID, h.starts())
		}
		if users := h.userEntries("web", "api"); len(users) != 3 || !strings.Contains(users[2], "after restart") {
			t.Fatalf("session file user entries %q, want the three questions", users)
		}
	})
}

func TestStandbyRetiredOnConfigChange(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		h.withStandby("api", 2)
		old := h.readyStandby("api", 2)
		tm, _ := h.cfg.Team("api")
		tm.Model = "claude-retired-test"
		h.b.retireStandby("api")
		for _, sb := range old {
			if !exited(sb.cl) {
				t.Fatalf("standby pid %d still runs after its team's config changed", sb.cl.p.Pid())
			}
			if _, err := os.Stat(h.sessionFile("api", sb.cl.sessionID)); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("retired standby's session file: %v, want it removed", err)
			}
		}
		fresh := h.readyStandby("api", 2)
		for _, sb := range fresh {
			if sb == old[0] || sb == old[1] || !strings.Contains(sb.launch, "--model claude-retired-test") {
				t.Fatalf("standby after the change launched as %q, want the new config's --model", sb.launch)
			}
		}
	})
}

func TestStandbyDiesWithBroker(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		h.withStandby("api", 2)
		sbs := h.readyStandby("api", 2)
		h.close()
		for _, sb := range sbs {
			if !exited(sb.cl) {
				t.Fatalf("standby pid %d outlived the broker", sb.cl.p.Pid())
			}
			if err := syscall.Kill(sb.cl.p.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
				t.Fatalf("standby pid %d after Close: kill -0 says %v, want no such process", sb.cl.p.Pid(), err)
			}
		}
	})
}

func TestStandbyEvictedFirstAndExpiresWhenIdle(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "  maxProcesses: 1", "web", "api")
		h.withStandby("api", 1)
		sb := h.readyStandby("api", 1)[0]
		// The only slot is the standby's: a pair to another team evicts it.
		r := h.ask("api", "web", "needs the slot")
		if r.Status != models.MessageAnswered {
			t.Fatalf("ask with the pool full of standby: %s %q", r.Status, r.Error)
		}
		if !exited(sb.cl) {
			t.Fatal("the standby process was not evicted for a pair")
		}
		if h.b.Standby("api") != 0 {
			t.Fatal("a standby started while the pool was full")
		}

		h.withStandby("api", 1) // a fresh broker: the slot is free again
		sb = h.readyStandby("api", 1)[0]
		h.b.expireStandby(time.Now().Add(2 * time.Hour)) // idleTimeout 1h
		if !exited(sb.cl) || h.b.Standby("api") != 0 {
			t.Fatal("a standby older than the idle timeout still runs")
		}
	})
}

func TestStandbyRemoteTeamOverRealSSH(t *testing.T) {
	t.Parallel()
	apiBackends(t, func(t *testing.T, be backend, api func() *fakeapi.Server) {
		srv := sshdtest.Start(t)
		h := newRemoteHarness(t, be, srv, srv.SSHConfig)
		h.withStandby("api", 1)
		sb := h.readyStandby("api", 1)[0]
		if sb.host.Where() != srv.Alias {
			t.Fatalf("standby runs on %s, want %s", sb.host.Where(), srv.Alias)
		}
		// The hook is a shell command: it runs on the team's host.
		if want := map[bool]string{true: warmedByHook, false: warmedByCommand}[api() != nil]; sb.warmedBy != want {
			t.Fatalf("remote standby warmed by %q, want %q", sb.warmedBy, want)
		}
		asked := time.Now()
		r := h.ask("web", "api", "remote first question")
		if r.Status != models.MessageAnswered || !strings.Contains(r.Answer, "CWD: "+h.teamPath("api")) {
			t.Fatalf("remote ask: %s %q %q", r.Status, r.Answer, r.Error)
		}
		noRequestBefore(t, api(), asked)
		if r.SessionID != sb.cl.sessionID || h.pairProcess("web", "api") != sb.cl {
			t.Fatalf("remote pair got session %s, want the standby's %s", r.SessionID, sb.cl.sessionID)
		}
		if next := h.readyStandby("api", 1)[0]; next == sb {
			t.Fatal("no replacement standby on the remote host")
		}
		if users := h.userEntries("web", "api"); len(users) != 1 {
			t.Fatalf("remote session file user entries %q, want the one question", users)
		}
	})
}

// The lines Claude Code 2.1.332 writes for a /cost run and for a prompt a
// hook blocked (recorded from the real binary): none of them is a
// conversation entry.
func TestTranscriptSkipsLocalCommandLines(t *testing.T) {
	t.Parallel()
	file := `{"type":"queue-operation","operation":"enqueue","timestamp":"2026-11-25T23:15:04.264Z","sessionId":"s"}
{"parentUuid":null,"isSidechain":false,"type":"user","message":{"role":"user","content":"<local-command-caveat>The command below was run directly in Claude Code, not sent to you as a request, and its output goes straight to the user.</local-command-caveat>"},"isMeta":true,"uuid":"a","timestamp":"2026-11-25T23:15:04.611Z"}
{"parentUuid":"a","isSidechain":false,"type":"user","message":{"role":"user","content":"<command-name>/usage</command-name>\n            <command-message>usage</command-message>\n            <command-args></command-args>"},"uuid":"b","timestamp":"2026-11-25T23:15:04.607Z"}
{"parentUuid":"b","isSidechain":false,"type":"system","subtype":"local_command","content":"<local-command-stdout>Estimated cost: $0.0000</local-command-stdout>","isMeta":false,"uuid":"c","timestamp":"2026-11-25T23:15:04.611Z"}
{"type":"queue-operation","operation":"dequeue","timestamp":"2026-11-26T04:36:56.249Z","sessionId":"s"}
{"parentUuid":"c","isSidechain":false,"type":"system","subtype":"informational","content":"UserPromptSubmit operation blocked by hook:\nswitchboard standby warm-up\n\nOriginal prompt: switchboard standby warm-up (blocked by a hook; never sent to the model)","isMeta":false,"timestamp":"2026-11-26T04:36:57.380Z","uuid":"e","level":"warning","preventContinuation":true,"promptSubmitEnding":{"ending":{"kind":"blocked_by_hook","reason":"switchboard standby warm-up"}}}
{"parentUuid":"e","isSidechain":false,"type":"user","message":{"role":"user","content":[{"type":"text","text":"the real question"}]},"uuid":"d","timestamp":"2026-11-25T23:15:05.000Z"}
`
	got := parseTranscript([]byte(file))
	if len(got) != 1 || got[0].Text != "the real question" {
		t.Fatalf("entries %+v, want only the real question", got)
	}
}

// A standby process's ask-back credential acts for the pair that adopts it:
// once it answers web's message, asking web back is the loop it would be for
// any process of web->api.
func TestStandbyCredentialFollowsAdoptingPair(t *testing.T) {
	t.Parallel()
	h := newAskHarness(t, fakeBackend, nil, "", []string{"web", "api", "db"})
	h.withStandby("api", 1)
	sb := h.readyStandby("api", 1)[0]
	if sb.cred == nil {
		t.Fatal("the standby process has no ask-back credential")
	}
	url, token := mcpConfigOf(t, sb.cred)
	cs := sessionClient(t, url, token)

	parent := h.holdTurn("web", "api")
	if cl := h.pairProcess("web", "api"); cl != sb.cl {
		t.Fatal("web->api did not take the standby process")
	}
	if c := h.credential("web", "api"); c != sb.cred || c.team() != "api" {
		t.Fatalf("the pair's credential is %p for team %s, want the standby's %p for api", c, c.team(), sb.cred)
	}
	text, isErr := call(t, cs, "send_message", map[string]any{"toTeam": "web", "message": "what did you mean?"})
	if !isErr || !strings.Contains(text, "web → api → web") {
		t.Fatalf("the adopted standby asking web back: %v %q, want the loop refused", isErr, text)
	}
	text, isErr = call(t, cs, "send_message", map[string]any{"toTeam": "db", "message": "REPLY v2"})
	if isErr || text != "v2" {
		t.Fatalf("the adopted standby asking db: %v %q", isErr, text)
	}
	msgs, err := h.store.ListMessages(context.Background(), models.MessageFilter{FromTeam: "api", ToTeam: "db", Limit: 1})
	if err != nil || len(msgs) != 1 || msgs[0].ParentID != parent {
		t.Fatalf("api->db message %+v, %v; want parent %d", msgs, err, parent)
	}
}
