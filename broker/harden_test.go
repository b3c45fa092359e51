package broker

import (
	"context"
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
