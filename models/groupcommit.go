package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
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
		ctx := context.WithoutCancel(op.ctx)
		if op.atomic {
			op.done <- classify(c.transaction(ctx, op.fn))
		} else {
			op.done <- classify(op.fn(c.db.WithContext(ctx)))
		}
		return
	}
	errs := make([]error, len(batch))
	err := c.transaction(context.Background(), func(tx *gorm.DB) error {
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

// transaction runs fn in one transaction on the writer connection, begun
// and ended by plain BEGIN IMMEDIATE and COMMIT (or ROLLBACK) statements,
// not through database/sql's Tx: a Tx makes its context cancellable, and
// the driver then starts a goroutine to watch that context for every
// statement, on top of the Tx's own. Those hand-offs doubled BeginTurn
// (430 µs against 235 µs at the median, BenchmarkTurnTransaction), and on
// a busy machine each is a chance to wait for a CPU. ctx must not be
// cancellable (the committer's never are), so no statement starts one.
// A nested Transaction in fn is a savepoint, as with a Tx.
func (c *committer) transaction(ctx context.Context, fn func(tx *gorm.DB) error) (err error) {
	sqlDB, err := c.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	t := &connTx{conn: conn, ctx: ctx}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		return err
	}
	panicked := true
	defer func() {
		if panicked || err != nil {
			t.Rollback()
		}
	}()
	tx := c.db.Session(&gorm.Session{NewDB: true, Context: ctx})
	tx.Statement.ConnPool = t
	err = fn(tx)
	panicked = false
	if err != nil {
		return err
	}
	return t.Commit()
}

// connTx is a transaction that committer.transaction began on conn. As a
// gorm.TxCommitter it makes GORM run a nested Transaction as a savepoint.
// Commit and Rollback return the connection to the pool, and take it out
// of the pool instead when it could still be inside the transaction.
type connTx struct {
	conn *sql.Conn
	ctx  context.Context
	done bool
}

func (t *connTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.conn.PrepareContext(ctx, query)
}

func (t *connTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.conn.ExecContext(ctx, query, args...)
}

func (t *connTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.conn.QueryContext(ctx, query, args...)
}

func (t *connTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.conn.QueryRowContext(ctx, query, args...)
}

// Commit commits. When COMMIT fails SQLite may or may not have rolled the
// transaction back: Rollback makes sure, so that the next write does not
// run inside a transaction nobody will commit.
func (t *connTx) Commit() error {
	if t.done {
		return sql.ErrTxDone
	}
	if _, err := t.conn.ExecContext(t.ctx, "COMMIT"); err != nil {
		t.Rollback()
		return err
	}
	t.done = true
	return t.conn.Close()
}

// Rollback rolls back; a connection that would not roll back is closed
// for good, as the pool would otherwise hand it out mid-transaction.
func (t *connTx) Rollback() error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	_, err := t.conn.ExecContext(t.ctx, "ROLLBACK")
	// SQLite may have rolled back already (a failed COMMIT, a full disk):
	// then ROLLBACK finds no transaction, and the connection is clean.
	if err != nil && !strings.Contains(err.Error(), "no transaction is active") {
		_ = t.conn.Raw(func(any) error { return driver.ErrBadConn })
		t.conn.Close()
		return fmt.Errorf("roll back: %w (connection discarded)", err)
	}
	return t.conn.Close()
}
