package broker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/models"
)

// A worker that answers a message between its commit and the registration
// of the caller's waiter must not leave the caller waiting (forever, with
// no timeout).
func TestSendAnsweredBeforeWaiterRegistered(t *testing.T) {
	h := newHarness(t, fakeBackend, "", "web", "api")
	testAfterEnqueue = func(b *Broker, m *models.Message) {
		b.existingPair(m.FromTeam, m.ToTeam).poke()
		waitFor(t, "the worker to answer before Send registers its waiter", func() bool {
			cur, err := b.store.MessageByID(context.Background(), m.ID)
			return err == nil && cur.Status.Final()
		})
	}
	t.Cleanup(func() { testAfterEnqueue = nil })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := h.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "quick one", Wait: 0})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Send returned only when its context ended (%v): the answer was missed", ctx.Err())
	}
	if r.Status != models.MessageAnswered || r.TimedOut {
		t.Fatalf("reply %+v: want the answer", r)
	}
}

// A timeout whose conversion to a Duration overflows used to come back at
// once as "timed out"; past the documented 24h maximum it is refused, and
// nothing is queued.
func TestHugeTimeoutRefused(t *testing.T) {
	h := newHarness(t, fakeBackend, "", "web", "api")
	cs := h.connect("web", nil)
	text, isErr := call(t, cs, "send_message", map[string]any{"toTeam": "api", "message": "hi", "timeout": int64(18446744073710)})
	if !isErr || !strings.Contains(text, "over the maximum 86400000 ms (24h)") {
		t.Fatalf("send_message with timeout 18446744073710 = %q (isError %v), want the 24h maximum refusal", text, isErr)
	}
	counts, err := h.store.MessageCounts(context.Background(), "api")
	if err != nil {
		t.Fatal(err)
	}
	for st, n := range counts {
		if n > 0 {
			t.Fatalf("%d %s message(s) for api after a refused send", n, st)
		}
	}
}
