package models

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// committer is group commit for SQLite's one writer connection. Under load
// (20 teams asked at once) every ask's writes queued for that connection,
// and each commit costs some thirty system calls (WAL frames, locks), each
// a chance for a saturated machine to take the CPU away while everyone else
// waits. The writes that arrive while a batch runs go together in the next
// one: one transaction, each write in a savepoint of its own so that a
// failing one takes back only itself, and one commit for all. A write alone
// runs as it would without the committer, so an idle daemon pays nothing.
//
// Every caller returns only after its write's batch committed (or with the
// error that kept it out): a write is as durable as before, and a caller
// is never told of a failure for a write that was committed.
type committer struct {
	db      *gorm.DB // the writer connection
	mu      sync.Mutex
	queue   []*writeOp
	running bool
	stats   struct{ batches, writes, waitNS atomic.Int64 }
}

// GroupCommitStats counts the SQLite committer's work since the store
// opened, for benchmarks: Writes went in Batches (a batch of one is a
// write that found the writer free), and Wait is their total time queued
// before their batch began. Zero on Postgres.
type GroupCommitStats struct {
	Batches, Writes int64
	Wait            time.Duration
}

// GroupCommitStats reports the committer's counters.
func (s *Store) GroupCommitStats() GroupCommitStats {
	if s.wq == nil {
		return GroupCommitStats{}
	}
	st := &s.wq.stats
	return GroupCommitStats{Batches: st.batches.Load(), Writes: st.writes.Load(), Wait: time.Duration(st.waitNS.Load())}
}

type writeOp struct {
	ctx context.Context
	// fn is the write; atomic says it is a transaction body (more than one
	// statement), not a single statement that commits on its own.
	fn     func(tx *gorm.DB) error
	atomic bool
	// state: opQueued until the committer takes it (opTaken) or its caller
	// gives up waiting first (opAbandoned); whoever moves it first wins.
	state  atomic.Int32
	done   chan error
	queued time.Time
}

// errBatchFailed takes back a batch in which the database failed.
var errBatchFailed = errors.New("group commit: a write failed; each is tried alone")

const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

// do runs fn as part of a batch and returns its outcome once the batch
// committed. fn runs with a context that ctx's cancellation does not reach:
// once taken, a write is committed or not as a whole, never cut off half
// way; a caller whose ctx ends before its write was taken gets ctx.Err()
// and the write never runs.
func (c *committer) do(ctx context.Context, atomic bool, fn func(tx *gorm.DB) error) error {
	op := &writeOp{ctx: ctx, fn: fn, atomic: atomic, done: make(chan error, 1), queued: time.Now()}
	c.mu.Lock()
	c.queue = append(c.queue, op)
	lead := !c.running
	c.running = true
	c.mu.Unlock()
	if lead && c.step() {
		// The writer was free, so this caller committed its write (and any
		// that came meanwhile) itself: a write alone pays no hand-off to
		// another goroutine. Writes queued since go on without it.
		go c.run()
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opAbandoned) {
			return ctx.Err()
		}
		return <-op.done
	}
}

// run commits batches until the queue is empty.
func (c *committer) run() {
	for c.step() {
	}
}

// step commits the queued writes as one batch and reports whether more
// were queued meanwhile; when none were, the writer is free again.
func (c *committer) step() (more bool) {
	c.mu.Lock()
	batch := c.queue
	c.queue = nil
	c.mu.Unlock()
	taken := batch[:0]
	now := time.Now()
	for _, op := range batch {
		if op.state.CompareAndSwap(opQueued, opTaken) {
			taken = append(taken, op)
			c.stats.waitNS.Add(int64(now.Sub(op.queued)))
		}
	}
	if len(taken) > 0 {
		c.stats.batches.Add(1)
		c.stats.writes.Add(int64(len(taken)))
	}
	c.commit(taken)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.running = false
		return false
	}
	return true
}

func (c *committer) commit(batch []*writeOp) {
	switch len(batch) {
	case 0:
		return
	case 1:
		op := batch[0]
		db := c.db.WithContext(context.WithoutCancel(op.ctx))
		if op.atomic {
			op.done <- classify(db.Transaction(op.fn))
		} else {
			op.done <- classify(op.fn(db))
		}
		return
	}
	errs := make([]error, len(batch))
	err := c.db.WithContext(context.Background()).Transaction(func(tx *gorm.DB) error {
		for i, op := range batch {
			// A nested Transaction is a savepoint: a write refused for
			// what it found (ErrFinished, ErrNotFound) is rolled back
			// alone and the batch goes on.
			errs[i] = tx.WithContext(context.WithoutCancel(op.ctx)).Transaction(op.fn)
			if errs[i] != nil && !errors.Is(errs[i], ErrFinished) && !errors.Is(errs[i], ErrNotFound) {
				// The database failed (full, I/O, ...): SQLite may have
				// rolled back the whole transaction already, and what
				// follows would then commit on its own. Take the batch
				// back and give every write its own try.
				return errBatchFailed
			}
		}
		return nil
	})
	if errors.Is(err, errBatchFailed) {
		for _, op := range batch {
			c.commit([]*writeOp{op})
		}
		return
	}
	for i, op := range batch {
		switch {
		case errs[i] != nil:
			op.done <- classify(errs[i])
		default:
			// nil once committed; the commit's error (store full, ...) to
			// every write it took back.
			op.done <- classify(err)
		}
	}
}
