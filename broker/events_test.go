package broker

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/models"
)

// drained empties a 1-buffered signal channel so the next receive proves a
// new change.
func drained(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// signalled waits for a signal on ch, failing the test after a minute.
func signalled(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: signal channel closed", what)
		}
	case <-time.After(time.Minute):
		t.Fatalf("no change signal for %s", what)
	}
}

// The dashboard learns of queued, running and finished messages and of
// process state changes from Changes, without polling.
func TestChangesSignalsQueueAndProcessState(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	ctx := context.Background()
	sig, stop := h.b.Changes()
	defer stop()
	q, err := h.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "SLEEP 1s\nslow one", NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	signalled(t, sig, "a queued message")
	h.running(q.MessageID)
	drained(sig)
	// Each change signals; the last one comes after the answer is stored.
	waitFor(t, "the answer and its signal", func() bool {
		select {
		case <-sig:
		case <-time.After(50 * time.Millisecond):
		}
		m, err := h.b.Message(ctx, q.MessageID)
		return err == nil && m.Status == models.MessageAnswered
	})
	drained(sig)
	if ok, err := h.b.Sleep(ctx, "web", "api", false); err != nil || !ok {
		t.Fatalf("Sleep = %v, %v", ok, err)
	}
	signalled(t, sig, "a stopped process")

	stop()
	if _, ok := <-sig; ok {
		t.Fatal("signal still open after stop")
	}
	h.b.changed() // must not panic or block after stop
}

// Many changes while a subscriber is busy leave it one pending signal, and
// notifying never waits for it.
func TestChangesCoalesceWithoutBlocking(t *testing.T) {
	t.Parallel()
	var c changes
	sig, stop := c.subscribe()
	defer stop()
	for range 1000 {
		c.notify()
	}
	<-sig
	select {
	case <-sig:
		t.Fatal("a second signal was queued; want them coalesced into one")
	default:
	}
}

func TestLogRingChanges(t *testing.T) {
	t.Parallel()
	ring := NewLogRing(10)
	sig, stop := ring.Changes()
	defer stop()
	slog.New(ring.Handler(slog.DiscardHandler)).Info("hello", "team", "api")
	signalled(t, sig, "a log record")
}
