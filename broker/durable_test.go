package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/models"
)

// userEntries counts how often each text occurs among a session's user
// entries, read from the session file on disk.
func (h *harness) userEntries(from, to string) []string {
	h.t.Helper()
	rep, err := h.b.Report(context.Background(), from, to, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range rep.Entries {
		if e.Role == "user" {
			out = append(out, e.Text)
		}
	}
	return out
}

func countContaining(texts []string, sub string) int {
	n := 0
	for _, s := range texts {
		n += strings.Count(s, sub)
	}
	return n
}

func (h *harness) waitFinal(id uint64) *Reply {
	h.t.Helper()
	var r *Reply
	waitFor(h.t, fmt.Sprintf("message %d to finish", id), func() bool {
		var err error
		r, err = h.b.Message(context.Background(), id)
		return err == nil && r.Status.Final()
	})
	return r
}

func TestQueuedWhileBrokerDownDeliveredOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		h.ask("web", "api", "hello")
		h.close()
		// Accepted by a broker that died before delivering them.
		st, err := models.Open(context.Background(), models.Options{Path: h.dbPath})
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for i := range 3 {
			m := &models.Message{FromTeam: "web", ToTeam: "api", Text: fmt.Sprintf("queued %d", i), Async: true}
			if err := st.EnqueueMessage(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		st.Close()
		h.open()
		for i, id := range ids {
			if r := h.waitFinal(id); r.Status != models.MessageAnswered || !strings.Contains(r.Answer, fmt.Sprintf("queued %d", i)) {
				t.Fatalf("message %d: %s %q %q", id, r.Status, r.Answer, r.Error)
			}
		}
		users := h.userEntries("web", "api")
		for i := range 3 {
			if n := countContaining(users, fmt.Sprintf("queued %d", i)); n != 1 {
				t.Fatalf("'queued %d' is in the session %d times, want 1: %q", i, n, users)
			}
		}
	})
}

func TestBrokerStoppedMidTurnAnswersOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		h := newHarness(t, be, "", "web", "api")
		q, err := h.b.Send(context.Background(), SendRequest{From: "web", To: "api", Text: "SLEEP 20s\nthe mid-turn question", NoWait: true})
		if err != nil {
			t.Fatal(err)
		}
		h.running(q.MessageID)
		h.restart() // the turn dies with the old broker's processes
		r := h.waitFinal(q.MessageID)
		if r.Status != models.MessageAnswered {
			t.Fatalf("after restart: %s %q", r.Status, r.Error)
		}
		users := h.userEntries("web", "api")
		if n := countContaining(users, "the mid-turn question"); n != 1 {
			t.Fatalf("the message is in the session %d times, want exactly once: %q", n, users)
		}
	})
}

func TestUnreachableTeamMessagesExpire(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "  messageTTL: 3s", "web", "api")
	team, _ := h.cfg.Team("api")
	team.ClaudePath = filepath.Join(h.root, "missing", "claude")
	q, err := h.b.Send(context.Background(), SendRequest{From: "web", To: "api", Text: "are you there?", NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	r := h.waitFinal(q.MessageID)
	if r.Status != models.MessageExpired || !strings.Contains(r.Error, "messageTTL") || !strings.Contains(r.Error, team.ClaudePath) {
		t.Fatalf("status %s error %q: want expired, naming the TTL and the last error", r.Status, r.Error)
	}
	if r.Attempts < 2 {
		t.Fatalf("%d attempts: an unreachable team's message is retried until it expires", r.Attempts)
	}
}

func TestManyQueuedMessagesAcrossTeamsInOrder(t *testing.T) {
	t.Parallel()
	teams := []string{"web"}
	for i := range 10 {
		teams = append(teams, fmt.Sprintf("team%02d", i))
	}
	h := newHarness(t, fakeBackend, "", teams...)
	ctx := context.Background()
	var ids []uint64
	for i := range 20 {
		for _, to := range teams[1:] {
			r, err := h.b.Send(ctx, SendRequest{From: "web", To: to, Text: fmt.Sprintf("n=%03d", i), NoWait: true})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.MessageID)
		}
	}
	for _, id := range ids {
		if r := h.waitFinal(id); r.Status != models.MessageAnswered {
			t.Fatalf("message %d: %s %q", id, r.Status, r.Error)
		}
	}
	for _, to := range teams[1:] {
		users := h.userEntries("web", to)
		if len(users) != 20 {
			t.Fatalf("%s's session holds %d messages, want 20", to, len(users))
		}
		for i, u := range users {
			if !strings.Contains(u, fmt.Sprintf("n=%03d", i)) {
				t.Fatalf("%s's message %d is %q: out of order", to, i, u)
			}
		}
	}
	if st, err := h.store.Stats(ctx); err != nil || st.MessagesByStatus[models.MessageAnswered] != 200 {
		t.Fatalf("stats %+v %v: want 200 answered", st, err)
	}
}

func TestUnreachableTeamDeliveredWhenBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	team, _ := h.cfg.Team("api")
	good := team.ClaudePath
	// The team's claude appears only later, as a host coming back would.
	team.ClaudePath = filepath.Join(h.root, "later", "claude")
	q, err := h.b.Send(context.Background(), SendRequest{From: "web", To: "api", Text: "deliver me later", NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a failed attempt", func() bool {
		r, _ := h.b.Message(context.Background(), q.MessageID)
		return r.Attempts >= 1 && r.Status == models.MessageQueued && strings.Contains(r.Error, team.ClaudePath)
	})
	if err := os.MkdirAll(filepath.Dir(team.ClaudePath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(good, team.ClaudePath); err != nil {
		t.Fatal(err)
	}
	r := h.waitFinal(q.MessageID)
	if r.Status != models.MessageAnswered || !strings.Contains(r.Answer, "deliver me later") {
		t.Fatalf("%s %q %q", r.Status, r.Answer, r.Error)
	}
}

// failingSessionFile is a host that cannot resolve session files for its
// first n calls, as a remote host does while its connection comes back.
type failingSessionFile struct {
	Host
	n *atomic.Int32
}

func (f failingSessionFile) SessionFile(ctx context.Context, sessionID string) (string, error) {
	if f.n.Add(-1) >= 0 {
		return "", errors.New("find home directory on host: ssh connection to the host lost")
	}
	return f.Host.SessionFile(ctx, sessionID)
}

// A message left running by a broker that stopped mid-turn is settled from
// the session file. When that file cannot be found for a moment, it is not
// known whether the message reached Claude, so the broker must look again
// later, never deliver it a second time.
func TestUnreadableSessionFileDoesNotDeliverTwice(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	q, err := h.b.Send(context.Background(), SendRequest{From: "web", To: "api", Text: "SLEEP 20s\nthe mid-turn question", NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	h.running(q.MessageID)
	waitFor(t, "the question to reach the session file", func() bool {
		rep, err := h.b.Report(context.Background(), "web", "api", 0)
		return err == nil && len(rep.Entries) > 0 && strings.Contains(rep.Entries[len(rep.Entries)-1].Text, "the mid-turn question")
	})
	h.close()
	inner := h.hosts
	var fails atomic.Int32
	fails.Store(1)
	h.hosts = HostsFunc(func(team *configs.Team) (Host, error) {
		host, err := inner.For(team)
		if err != nil {
			return host, err
		}
		return failingSessionFile{Host: host, n: &fails}, nil
	})
	h.open()
	r := h.waitFinal(q.MessageID)
	if r.Status != models.MessageAnswered {
		t.Fatalf("after restart: %s %q", r.Status, r.Error)
	}
	if n := countContaining(h.userEntries("web", "api"), "the mid-turn question"); n != 1 {
		t.Fatalf("the message is in the session %d times, want exactly once", n)
	}
	if fails.Load() >= 0 {
		t.Fatal("the session file was never looked up while the host failed: the test did not test anything")
	}
}
