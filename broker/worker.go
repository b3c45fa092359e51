package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/hoptrace"
	"github.com/switchboard-mcp/switchboard/models"
)

// work delivers a pair's queued messages one at a time, in order.
func (b *Broker) work(p *pair) {
	defer b.wg.Done()
	defer b.workerExit(p)
	if !b.waitPrevious(p) {
		return
	}
	for {
		wait := b.drain(p)
		var timer *time.Timer
		var due <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			due = timer.C
		}
		select {
		case <-b.ctx.Done():
		case <-p.kick:
		case <-due:
		case <-p.retire:
		}
		if timer != nil {
			timer.Stop()
		}
		if b.ctx.Err() != nil || p.retired() {
			return
		}
	}
}

// drain delivers messages until the queue is empty or the head must wait for
// its backoff, and returns how long that is.
func (b *Broker) drain(p *pair) time.Duration {
	for b.ctx.Err() == nil && !p.retired() {
		if wait := b.storeFullWait(); wait > 0 {
			return wait
		}
		hoptrace.Here(hoptrace.QueueRead)
		m, more, err := b.store.QueueHead(b.ctx, p.key.from, p.key.to)
		// After the read: a message enqueued while the worker was on its
		// way here is not yet due by a clock read before it was stored,
		// and would wait for nothing.
		now := time.Now()
		if errors.Is(err, models.ErrNotFound) {
			return 0
		}
		if err != nil {
			if b.ctx.Err() != nil {
				return 0
			}
			b.log.Error("read queue", "pair", p.key, "err", err)
			return 5 * time.Second
		}
		if b.stages != nil {
			b.stage(m.ID, StageHead, time.Now())
		}
		if !m.ExpiresAt.IsZero() && now.After(m.ExpiresAt) && m.DeliveredAt == nil {
			reason := fmt.Sprintf("expired: not delivered to team %s before %s (messageTTL)", m.ToTeam, m.ExpiresAt.Format(time.RFC3339))
			if m.Error != "" {
				reason += "; last error: " + m.Error
			}
			b.finish(m, models.MessageExpired, "", reason, 0)
			continue
		}
		if m.NotBefore.After(now) {
			due := m.NotBefore
			if !m.ExpiresAt.IsZero() && m.ExpiresAt.Before(due) {
				due = m.ExpiresAt.Add(time.Millisecond)
			}
			return due.Sub(now)
		}
		// In a fleet only the broker holding the pair's lease delivers,
		// recovery included: it may read the session file to settle m.
		if ok, wait := b.mayDeliver(b.ctx, p); !ok {
			return wait
		}
		hoptrace.Here(hoptrace.Delivering)
		if b.deliver(p, m) && !more {
			// It was the only one, and it is settled. A message queued
			// since then poked p.kick after its commit, so the wait wakes
			// for it: reading the queue now would only find it empty.
			return 0
		}
	}
	return 0
}

// deliver reports whether m is settled (final in the store) when it returns.
func (b *Broker) deliver(p *pair, m *models.Message) (settled bool) {
	ctx := b.ctx
	if m.DeliveredAt != nil {
		// Left running by an earlier run: the session file says what happened.
		sess, _, err := b.store.GetOrCreateSession(ctx, p.key.from, p.key.to)
		if err != nil {
			if ctx.Err() == nil {
				b.notStarted(m, fmt.Errorf("settle message %d from the session file: %w", m.ID, err))
			}
			return
		}
		if b.recovered(ctx, p, m, sess) {
			return
		}
	}
	return b.deliverText(ctx, p, m, envelope(m))
}

// deliverText records that m is being written to Claude, writes text as one
// turn and records the outcome; settled as deliver.
func (b *Broker) deliverText(ctx context.Context, p *pair, m *models.Message, text string) (settled bool) {
	cl, sess, err := b.ensureProcess(ctx, p, true)
	if err != nil {
		if ctx.Err() == nil {
			b.notStarted(m, err)
		}
		return
	}
	// The turn's flags are reset before the message shows as running: a
	// session_cancel that sees it running must not be wiped out here.
	if ok, _ := b.mayDeliver(ctx, p); !ok {
		// The lease lapsed while the process started (the store was out of
		// reach): m stays queued and drain waits for the lease.
		b.idle(p, cl)
		return
	}
	p.mu.Lock()
	p.current, p.cancelled, p.turnStarted, p.leaseLost = m.ID, false, false, false
	p.mu.Unlock()
	if err := b.store.BeginTurn(ctx, m.ID, sess.SessionID, time.Now()); err != nil {
		p.mu.Lock()
		p.sess = nil // read the record again next time (ensureProcess)
		p.mu.Unlock()
		b.idle(p, cl)
		// Never write a message whose delivery could not be recorded: a
		// crash would then leave no trace of it and it would go twice.
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, models.ErrFinished):
			// Settled meanwhile (it expired, or an earlier run finished it).
		case b.storeFault(err):
			// Left queued; the worker backs off until the store has room.
		default:
			b.notStarted(m, fmt.Errorf("record delivery of message %d: %w", m.ID, err))
		}
		return
	}
	b.storeOK()
	if b.stages != nil {
		b.stage(m.ID, StageBegun, time.Now())
	}
	p.mu.Lock()
	p.state = models.ProcessBusy
	p.mu.Unlock()
	b.changed()

	res, err := b.runTurn(ctx, p, cl, m, text)
	p.mu.Lock()
	cancelled, leaseLost := p.cancelled, p.leaseLost
	p.mu.Unlock()
	b.idle(p, cl)

	switch {
	case err != nil && (ctx.Err() != nil || leaseLost):
		// Shutdown mid-turn, or the fleet lease lost: leave the message
		// running; the next run (or the pair's next owner) finds it in the
		// session file or delivers it again.
		return
	case err != nil && retryable(m, err):
		b.retryLost(m, err)
		return
	case err != nil:
		b.finish(m, models.MessageFailed, "", fmt.Sprintf("team %s failed while answering: %v", m.ToTeam, err), 0)
		b.storeWrite("record session error", b.store.SetStatus(context.Background(), sess.SessionID, models.SessionError, err.Error()), "session", sess.SessionID)
		return
	}
	// One write: idle, answered at, one more message, an error cleared.
	ended, err := b.store.EndTurn(ctx, sess.SessionID, time.Now())
	b.storeWrite("record end of turn", err, "session", sess.SessionID)
	if b.stages != nil {
		b.stage(m.ID, StageEnded, time.Now())
	}
	switch {
	case cancelled:
		settled = b.finish(m, models.MessageFailed, cancelledAnswer(res), "cancelled by session_cancel before the answer was complete", res.Duration)
	case res.IsError:
		settled = b.finish(m, models.MessageFailed, "", answerFailure(p.team, res), res.Duration)
	default:
		settled = b.finish(m, models.MessageAnswered, res.Text, "", res.Duration)
	}
	if ended != nil && models.ShouldCompact(ended, time.Now()) {
		b.compact(ctx, p, ended)
	}
	return settled
}

// compact has Claude summarise a long session (its /compact command) after
// the answer is delivered, so no asker waits for it; the pair's next
// message waits instead.
func (b *Broker) compact(ctx context.Context, p *pair, sess *models.Session) {
	cl, _, err := b.ensureProcess(ctx, p, true)
	if err != nil {
		return
	}
	defer b.idle(p, cl)
	b.log.Info("compacting session", "pair", p.key, "session", sess.SessionID, "messages", sess.MessageCount)
	if err := b.store.StartCompaction(ctx, sess.SessionID); err != nil {
		b.log.Warn("record compaction start", "session", sess.SessionID, "err", err)
	}
	tctx, cancel := context.WithTimeout(ctx, b.turnLimit())
	defer cancel()
	res, err := cl.turn(tctx, "/compact", p.team.EffectiveSessionInitTimeout(b.config().Settings), nil, nil)
	if err == nil && res.IsError {
		err = errors.New(res.Text)
	}
	if err != nil {
		b.log.Warn("compaction failed; the session goes on uncompacted", "session", sess.SessionID, "err", err)
		b.storeWrite("record compaction failure", b.store.SetStatus(context.Background(), sess.SessionID, models.SessionActive, "compaction failed: "+err.Error()), "session", sess.SessionID)
		return
	}
	if err := b.store.FinishCompaction(ctx, sess.SessionID, time.Now()); err != nil {
		b.log.Warn("record compaction", "session", sess.SessionID, "err", err)
	}
}

func (b *Broker) turnLimit() time.Duration { return b.config().Settings.TurnTimeout.Duration }

// idle ends the pair's reservation for a turn.
func (b *Broker) idle(p *pair, cl *claude) {
	p.mu.Lock()
	p.busy, p.current = false, 0
	p.lastUsed = time.Now()
	if p.cl == cl {
		p.state = models.ProcessIdle
	}
	p.mu.Unlock()
	b.pulse()
	b.changed()
}

// runTurn runs one turn, interrupting it when it outlasts the turn limit.
func (b *Broker) runTurn(ctx context.Context, p *pair, cl *claude, m *models.Message, text string) (turnResult, error) {
	limit := b.turnLimit()
	tctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	progress := func(text string) { b.progress(m.ID, text) }
	started := func() {
		// A session_cancel that came before Claude began the turn is
		// carried out now; sent earlier it would have hit an idle process.
		p.mu.Lock()
		defer p.mu.Unlock()
		p.turnStarted = true
		if p.cancelled {
			_ = cl.interrupt()
		}
	}
	if b.stages != nil {
		b.stage(m.ID, StageWritten, time.Now())
	}
	res, err := cl.turn(tctx, text, p.team.EffectiveSessionInitTimeout(b.config().Settings), started, progress)
	if b.stages != nil {
		b.stage(m.ID, StageResult, time.Now())
	}
	if errors.Is(err, errNoInit) {
		if lost := b.connectionProblem(ctx, p, cl); lost != nil {
			err = lost // the host, not Claude, is why the turn never began
		}
		p.stopProcess(b, err.Error())
		return res, err
	}
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return res, err
	}
	// Over the limit: interrupt and give Claude a moment to end the turn so
	// the process stays usable for the next message.
	b.log.Warn("turn over its limit; interrupting", "pair", p.key, "message", m.ID, "limit", limit)
	if ierr := cl.interrupt(); ierr == nil {
		ictx, icancel := context.WithTimeout(ctx, 30*time.Second)
		_, ierr = cl.turnEnd(ictx)
		icancel()
		if ierr == nil {
			return turnResult{}, fmt.Errorf("no answer within turnTimeout %s; the turn was interrupted", limit)
		}
	}
	p.stopProcess(b, "turn over its limit and would not stop")
	return turnResult{}, fmt.Errorf("no answer within turnTimeout %s; the claude process was stopped", limit)
}

// notStarted handles a message whose team could not be reached: it is
// retried with backoff until its TTL, whether or not someone waits for it
// (quick_message and send_message follow one rule). A waiting asker gets
// the message id with the last error when its own timeout ends.
func (b *Broker) notStarted(m *models.Message, err error) {
	backoff := time.Duration(1<<min(m.Attempts, 10)) * time.Second // 1s .. ~17m
	backoff = min(backoff, 15*time.Minute)
	next := time.Now().Add(backoff)
	b.log.Warn("team unreachable; will retry", "message", m.ID, "to", m.ToTeam, "retry_at", next, "err", err)
	retry := b.store.RetryMessage
	if m.DeliveredAt != nil {
		// It may have reached Claude before: keep that on record so the
		// retry checks the session file instead of sending it again.
		retry = b.store.PostponeMessage
	}
	if rerr := retry(b.ctx, m.ID, next, err.Error()); rerr != nil {
		b.log.Error("requeue message", "id", m.ID, "err", rerr)
	}
	b.notify(m.ID, nil, err)
}

// liveProcess reports whether the pair has a running process of this
// broker's for sessionID.
func (b *Broker) liveProcess(p *pair, sessionID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cl != nil && p.cl.alive() && p.cl.sessionID == sessionID
}

// recovered settles a message that an earlier run wrote to Claude but did
// not record the outcome of, using the session file as the witness.
func (b *Broker) recovered(ctx context.Context, p *pair, m *models.Message, sess *models.Session) bool {
	// Whatever keeps the transcript from being read leaves it unknown
	// whether m reached Claude: wait and look again rather than risk a
	// second copy. (A host just reconnecting fails here for a moment.)
	runner, err := b.hosts.For(p.team)
	if err != nil {
		b.notStarted(m, fmt.Errorf("settle message %d from the session file: runner for team %s: %w", m.ID, p.team.Name, err))
		return true
	}
	if !b.liveProcess(p, sess.SessionID) {
		// The process that was given m may still run (an earlier daemon's,
		// on a remote host), and write m, or its answer, after the read
		// below: stop it first, so the file says all there will be.
		b.reapStale(ctx, runner, sess.SessionID)
	}
	file, err := runner.SessionFile(ctx, sess.SessionID)
	if err != nil {
		b.notStarted(m, fmt.Errorf("settle message %d from the session file: %w", m.ID, err))
		return true
	}
	entries, err := readTranscript(ctx, runner.Files(), file)
	if errors.Is(err, fs.ErrNotExist) {
		return false // no transcript, so it never reached Claude
	}
	if err != nil {
		b.notStarted(m, fmt.Errorf("read session file %s on %s to settle message %d: %w", file, runner.Where(), m.ID, err))
		return true
	}
	delivered, answer := recoverAnswer(entries, func(text string) bool { return wroteHeader(text, m) })
	if !delivered {
		return false // never reached Claude: deliver it now
	}
	if answer == "" {
		// Claude saw the message but its answer died with the process. Ask
		// for the answer instead of sending the message a second time.
		b.log.Info("message reached the session before a restart but has no answer; asking for it", "message", m.ID, "session", sess.SessionID)
		resumed := *m
		resumed.Text = ""
		b.deliverText(ctx, p, &resumed, fmt.Sprintf("%s The broker restarted before your answer to message %d from team %q was delivered. Please give that answer again, in full.", resumedHeader(m), m.ID, m.FromTeam))
		return true
	}
	b.log.Info("recovered answer from session file", "message", m.ID, "session", sess.SessionID)
	if _, err := b.store.IncrementMessageCount(ctx, sess.SessionID); err != nil {
		b.storeWrite("count recovered message", err, "session", sess.SessionID)
	}
	b.finish(m, models.MessageAnswered, answer, "", 0)
	return true
}

// finish records a message's outcome once and tells its waiters. When the
// store is full the outcome is not recorded: the message stays as it was,
// its waiters keep waiting, and once the store has room the worker settles
// it again (from the session file when it reached Claude). It reports
// whether the message is final in the store now.
func (b *Broker) finish(m *models.Message, status models.MessageStatus, answer, errText string, d time.Duration) bool {
	final, ok, err := b.store.CompleteMessage(context.Background(), m.ID, status, answer, errText, time.Now(), d)
	switch {
	case err != nil && b.storeFault(err):
		return false
	case err != nil:
		b.log.Error("record message outcome", "id", m.ID, "err", err)
		cur, rerr := b.store.MessageByID(context.Background(), m.ID)
		b.notify(m.ID, cur, rerr)
		return false
	case !ok:
		return true // already final: its waiters were told then
	}
	b.storeOK()
	hoptrace.Here(hoptrace.Finished)
	if b.stages != nil {
		b.stage(m.ID, StageFinished, time.Now())
	}
	if status == models.MessageFailed || status == models.MessageExpired {
		b.log.Warn("message not answered", "id", m.ID, "from", m.FromTeam, "to", m.ToTeam, "status", status, "err", errText)
	}
	b.notify(m.ID, final, nil)
	return true
}
