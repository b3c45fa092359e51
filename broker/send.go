package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hoptrace"
	"github.com/switchboard-mcp/switchboard/models"
)

// SendRequest is one message to deliver.
type SendRequest struct {
	From, To string
	Text     string
	// Wait is how long to wait for the answer: 0 waits without limit.
	Wait time.Duration
	// NoWait queues the message and returns at once.
	NoWait bool
	// TTL, when positive, replaces messageTTL for this message.
	TTL time.Duration
	// Progress, when set, receives partial assistant text while waiting.
	Progress func(text string)
	// Elicit, when set, asks the waiting asker's MCP client (form
	// elicitation); a team in forward mode uses it for its permissions.
	Elicit func(ctx context.Context, params *mcp.ElicitParams) (*mcp.ElicitResult, error)
	// Accepted, when set, is called with the message id once the message
	// is stored, before any wait: whatever happens to the caller after
	// that, the message is delivered and its answer kept.
	Accepted func(id uint64)
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
	// Chain is the ask chain: the teams waiting, first asker first.
	Chain    string `json:"chain,omitempty"`
	ParentID uint64 `json:"parentId,omitempty"`
	// TimedOut says the wait ended before the answer; the turn goes on.
	TimedOut bool `json:"timedOut,omitempty"`
	// Permissions are the tool-permission requests made while answering.
	Permissions []Permission `json:"permissions,omitempty"`
	// Note, in a fleet, says that the broker running the team is not alive.
	Note string `json:"note,omitempty"`
}

func replyOf(m *models.Message) *Reply {
	return &Reply{
		MessageID: m.ID, From: m.FromTeam, To: m.ToTeam, Status: m.Status,
		Answer: m.Answer, Error: m.Error, SessionID: m.SessionID,
		Duration: time.Duration(m.DurationMs) * time.Millisecond, DurationMS: m.DurationMs,
		Created: m.CreatedAt, Delivered: m.DeliveredAt, Finished: m.FinishedAt, Attempts: m.Attempts,
		Chain: m.Chain, ParentID: m.ParentID,
	}
}

// Send queues a message durably and, unless NoWait, waits for its answer. A
// wait that ends first returns the message id with TimedOut set: the answer
// is kept and message_status fetches it later.
func (b *Broker) Send(ctx context.Context, req SendRequest) (*Reply, error) {
	called := time.Now()
	home, err := b.route(ctx, req.From, req.To)
	if err != nil {
		return nil, err
	}
	if err := b.checkText(req.Text); err != nil {
		return nil, err
	}
	parent, chain, err := b.chainFor(ctx, req.From, req.To)
	if err != nil {
		return nil, err
	}
	// A team another broker runs has no pair here: that broker hears of
	// the message from the store, and its answer comes back the same way.
	var p *pair
	if home == nil {
		if p, err = b.pairFor(req.From, req.To); err != nil {
			return nil, err
		}
	}
	ttl := b.config().Settings.MessageTTL.Duration
	if req.TTL > 0 {
		ttl = req.TTL
	}
	m := &models.Message{FromTeam: req.From, ToTeam: req.To, Text: req.Text, Async: req.NoWait, ExpiresAt: time.Now().Add(ttl), ParentID: parent, Chain: chain}
	var w *waiter
	// Send waits below unless NoWait or the team's broker is dead.
	waits := !req.NoWait && (home == nil || home.Alive)
	if waits {
		// From before the commit until the waiter is in place, an outcome
		// nobody waits for is kept for it (notify): no read-back needed.
		b.mu.Lock()
		b.registering++
		b.mu.Unlock()
	}
	if err := b.store.EnqueueMessage(ctx, m); err != nil {
		if waits {
			b.claimEarly(0)
		}
		return nil, fmt.Errorf("queue message for %s: %w", req.To, err)
	}
	hoptrace.Here(hoptrace.Enqueued)
	if b.stages != nil {
		b.stage(m.ID, StageSend, called)
		b.stage(m.ID, StageStored, time.Now())
	}
	if b.testAfterEnqueue != nil {
		b.testAfterEnqueue(b, m)
	}
	if req.Accepted != nil {
		req.Accepted(m.ID)
	}
	wake := func() {
		if p != nil {
			p.poke()
		}
		b.changed()
	}
	if home != nil && !home.Alive {
		wake()
		// Nobody will answer soon: say so now instead of waiting it out.
		r := replyOf(m)
		r.Note = home.deadNote(req.To)
		return r, nil
	}
	if req.NoWait {
		wake()
		return replyOf(m), nil
	}
	// The waiter, and with it the asker's elicitation, is registered before
	// the worker is woken: a permission prompt of this message's turn looks
	// for it (forward mode), and a Send descheduled after the poke lost
	// that race under load (TestPermissionForward asked an operator).
	w = b.addWaiter(m.ID, req.Progress, req.Elicit)
	defer b.removeWaiter(m.ID, w)
	wake()
	// A worker already draining the queue may have finished the message
	// between its commit and the line above: notify kept the outcome.
	if r, ok := b.claimEarly(m.ID); ok {
		if r.err != nil {
			return nil, acceptedErr(m.ID, r.err)
		}
		return replyOf(r.msg), nil
	}
	if b.fleet != nil {
		// Another broker may have finished it meanwhile, and its note
		// (settleWaiters) found no waiter here: look once more.
		if cur, err := b.store.MessageByID(ctx, m.ID); err == nil && cur.Status.Final() {
			return replyOf(cur), nil
		}
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
			return nil, acceptedErr(m.ID, r.err)
		}
		if b.stages != nil {
			b.stage(m.ID, StageReplied, time.Now())
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
	r.TimedOut = !cur.Status.Final()
	return r, nil
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
	r := replyOf(m)
	r.Permissions = b.permissionsOf(ctx, id)
	r.Note = b.fleetNote(ctx, m)
	return r, nil
}

type waitResult struct {
	msg *models.Message
	err error
}

type waiter struct {
	done     chan waitResult
	progress func(string)
	elicit   elicitFunc
}

func (b *Broker) addWaiter(id uint64, progress func(string), elicit elicitFunc) *waiter {
	w := &waiter{done: make(chan waitResult, 1), progress: progress, elicit: elicit}
	b.mu.Lock()
	b.waiters[id] = append(b.waiters[id], w)
	b.mu.Unlock()
	return w
}

// claimEarly ends a Send's registering window (see Send) and returns the
// outcome notify kept for message id, if any. The last window to end
// drops what no Send claimed (outcomes of messages whose asker was gone).
func (b *Broker) claimEarly(id uint64) (waitResult, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.registering--
	r, ok := b.early[id]
	delete(b.early, id)
	if b.registering == 0 {
		clear(b.early)
	}
	return r, ok
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
	defer b.changed() // finished, or back in the queue for a retry
	if msg == nil && err != nil {
		return
	}
	b.mu.Lock()
	ws := b.waiters[id]
	delete(b.waiters, id)
	if len(ws) == 0 && b.registering > 0 {
		if b.early == nil {
			b.early = map[uint64]waitResult{}
		}
		b.early[id] = waitResult{msg: msg, err: err}
	}
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
