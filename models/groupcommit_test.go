package models

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/switchboard-mcp/switchboard/internal/poll"
)

// holdWriter takes SQLite's one writer connection until the returned
// release is called, so that writes queue in the committer meanwhile.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	tx := s.db.Begin()
	mustDo(t, tx.Error)
	mustDo(t, tx.Exec("UPDATE sessions SET status = status").Error) // takes the write lock
	var once sync.Once
	release = func() { once.Do(func() { mustDo(t, tx.Commit().Error) }) }
	t.Cleanup(release)
	return release
}

func queued(s *Store) int {
	s.wq.mu.Lock()
	defer s.wq.mu.Unlock()
	return len(s.wq.queue)
}

// taken reports whether the committer took every write queued so far, one
// at least: it is running, and its queue is empty.
func taken(s *Store) bool {
	s.wq.mu.Lock()
	defer s.wq.mu.Unlock()
	return s.wq.running && len(s.wq.queue) == 0
}

// Writes that queue behind one another are committed together, and each
// still gets its own outcome: a write that fails in a batch (BeginTurn of
// a finished message) is taken back alone, the others are committed, and
// nothing is written twice.
func TestGroupCommitOutcomesPerWrite(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	sess, _, err := s.GetOrCreateSession(ctx, "web", "api")
	mustDo(t, err)
	done := &Message{FromTeam: "web", ToTeam: "api", Text: "answered already"}
	mustDo(t, s.EnqueueMessage(ctx, done))
	_, _, err = s.CompleteMessage(ctx, done.ID, MessageAnswered, "a", "", time.Now(), 0)
	mustDo(t, err)
	run := &Message{FromTeam: "web", ToTeam: "api", Text: "to run"}
	mustDo(t, s.EnqueueMessage(ctx, run))

	release := holdWriter(t, s)
	// The first write is taken at once and waits for the connection; the
	// rest queue behind it and go in one batch.
	first := make(chan error, 1)
	go func() { first <- s.EnqueueMessage(ctx, &Message{FromTeam: "web", ToTeam: "api", Text: "first"}) }()
	poll.Until(t, "the first write taken", func() bool { return taken(s) })

	const n = 6
	var wg sync.WaitGroup
	var enqueued [n]*Message
	var enqErr [n]error
	for i := range n {
		enqueued[i] = &Message{FromTeam: "web", ToTeam: "api", Text: fmt.Sprintf("batched %d", i)}
		wg.Go(func() { enqErr[i] = s.EnqueueMessage(ctx, enqueued[i]) })
	}
	var beginFinished, beginRun error
	var completeOK bool
	var completeErr error
	wg.Go(func() { beginFinished = s.BeginTurn(ctx, done.ID, sess.SessionID, time.Now()) })
	wg.Go(func() { beginRun = s.BeginTurn(ctx, run.ID, sess.SessionID, time.Now()) })
	wg.Go(func() {
		_, completeOK, completeErr = s.CompleteMessage(ctx, done.ID, MessageFailed, "", "again", time.Now(), 0)
	})
	poll.Until(t, "every write queued", func() bool { return queued(s) == n+3 })
	release()
	wg.Wait()
	mustDo(t, <-first)

	if !errors.Is(beginFinished, ErrFinished) {
		t.Errorf("BeginTurn of a finished message in a batch = %v, want ErrFinished", beginFinished)
	}
	if beginRun != nil {
		t.Errorf("BeginTurn in the same batch = %v", beginRun)
	}
	if completeErr != nil || completeOK {
		t.Errorf("CompleteMessage of a finished message = %v, %v; want not done, no error", completeOK, completeErr)
	}
	seen := map[uint64]bool{}
	for i, m := range enqueued {
		if enqErr[i] != nil {
			t.Fatalf("enqueue %d: %v", i, enqErr[i])
		}
		if seen[m.ID] {
			t.Fatalf("two messages got id %d", m.ID)
		}
		seen[m.ID] = true
		got, err := s.MessageByID(ctx, m.ID)
		if err != nil || got.Text != m.Text || got.Status != MessageQueued {
			t.Errorf("message %d after the batch = %+v, %v; want %q queued", m.ID, got, err, m.Text)
		}
	}
	if got, err := s.MessageByID(ctx, done.ID); err != nil || got.Status != MessageAnswered || got.Attempts != 0 {
		t.Errorf("finished message after the batch = %+v, %v; want answered, untouched", got, err)
	}
	if got, err := s.MessageByID(ctx, run.ID); err != nil || got.Status != MessageRunning || got.Attempts != 1 {
		t.Errorf("begun message after the batch = %+v, %v; want running, one attempt", got, err)
	}
	if cur, err := s.SessionByID(ctx, sess.SessionID); err != nil || cur.ProcessState != ProcessBusy {
		t.Errorf("session after the batch = %+v, %v; want busy", cur, err)
	}
	if st := s.GroupCommitStats(); st.Writes-st.Batches < n+2 {
		t.Errorf("GroupCommitStats = %+v: the %d queued writes did not go in one batch", st, n+3)
	}
	var total int64
	mustDo(t, s.DB().Model(&Message{}).Count(&total).Error)
	if want := int64(2 + 1 + n); total != want {
		t.Errorf("%d messages stored, want %d", total, want)
	}
}

// A write whose caller gives up before the committer took it is never
// written; one taken is reported as it ended, whatever its caller's
// context did meanwhile.
func TestGroupCommitAbandonedWrite(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	release := holdWriter(t, s)
	first := make(chan error, 1)
	takenCtx, cancelTaken := context.WithCancel(ctx)
	defer cancelTaken()
	kept := &Message{FromTeam: "web", ToTeam: "api", Text: "taken"}
	go func() { first <- s.EnqueueMessage(takenCtx, kept) }()
	poll.Until(t, "the first write taken", func() bool { return taken(s) })

	gone, cancel := context.WithCancel(ctx)
	second := make(chan error, 1)
	go func() { second <- s.EnqueueMessage(gone, &Message{FromTeam: "web", ToTeam: "api", Text: "abandoned"}) }()
	poll.Until(t, "the second write queued", func() bool { return queued(s) == 1 })
	cancel()
	cancelTaken() // too late: the first write is in hand
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned write = %v, want context.Canceled", err)
	}
	release()
	if err := <-first; err != nil {
		t.Fatalf("taken write whose caller gave up = %v, want it committed", err)
	}
	var texts []string
	mustDo(t, s.DB().Model(&Message{}).Order("id").Pluck("text", &texts).Error)
	if len(texts) != 1 || texts[0] != "taken" {
		t.Fatalf("stored messages %q, want only the taken one", texts)
	}
	if got, err := s.MessageByID(ctx, kept.ID); err != nil || got.Text != "taken" {
		t.Fatalf("taken message = %+v, %v", got, err)
	}
}

// When the database fails a write in a batch, the batch is taken back and
// every write tried alone: the others are committed once and reported so,
// the failing one reports its error, and nothing is stored twice.
func TestGroupCommitDatabaseErrorInBatch(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	release := holdWriter(t, s)
	first := make(chan error, 1)
	go func() { first <- s.EnqueueMessage(ctx, &Message{FromTeam: "web", ToTeam: "api", Text: "first"}) }()
	poll.Until(t, "the first write taken", func() bool { return taken(s) })

	var wg sync.WaitGroup
	a := &Message{FromTeam: "web", ToTeam: "api", Text: "a"}
	b := &Message{FromTeam: "web", ToTeam: "api", Text: "b"}
	var errA, errB, errBad error
	wg.Go(func() { errA = s.EnqueueMessage(ctx, a) })
	poll.Until(t, "a queued", func() bool { return queued(s) == 1 })
	wg.Go(func() {
		errBad = s.wq.do(ctx, false, func(tx *gorm.DB) error {
			return tx.Exec("INSERT INTO no_such_table VALUES (1)").Error
		})
	})
	poll.Until(t, "the failing write queued", func() bool { return queued(s) == 2 })
	wg.Go(func() { errB = s.EnqueueMessage(ctx, b) })
	poll.Until(t, "b queued", func() bool { return queued(s) == 3 })
	release()
	wg.Wait()
	mustDo(t, <-first)
	if errA != nil || errB != nil {
		t.Fatalf("writes batched with a failing one: %v, %v; want committed", errA, errB)
	}
	if errBad == nil || !strings.Contains(errBad.Error(), "no_such_table") {
		t.Fatalf("failing write = %v, want its own error", errBad)
	}
	var texts []string
	mustDo(t, s.DB().Model(&Message{}).Order("id").Pluck("text", &texts).Error)
	if strings.Join(texts, ",") != "first,a,b" {
		t.Fatalf("stored %q, want first, a, b once each", texts)
	}
	for _, m := range []*Message{a, b} {
		if got, err := s.MessageByID(ctx, m.ID); err != nil || got.Text != m.Text {
			t.Errorf("message %d = %+v, %v; want %q", m.ID, got, err, m.Text)
		}
	}
}

// TestGroupCommitFailedCommitLeavesNoTransaction: when COMMIT itself fails
// (here a deferred foreign key, which SQLite reports at COMMIT and after
// which the transaction stays open), the write fails, none of it stays,
// and the writer connection is not left inside the transaction, where the
// next writes would pile up uncommitted and be lost with the process.
func TestGroupCommitFailedCommitLeavesNoTransaction(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s := openAt(t, path)
	err := s.write(ctx, true, func(_ context.Context, tx *gorm.DB) error {
		for _, q := range []string{
			"CREATE TABLE parent (id INTEGER PRIMARY KEY)",
			"CREATE TABLE child (pid INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
			"INSERT INTO child (pid) VALUES (1)",
		} {
			if err := tx.Exec(q).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Fatalf("write with a deferred foreign key violation = %v, want the COMMIT's FOREIGN KEY error", err)
	}
	_, _, err = s.GetOrCreateSession(ctx, "web", "api")
	mustDo(t, err)

	// A second store on the file sees only what was committed: the session,
	// not the tables of the failed write.
	other := openAt(t, path)
	if _, err := other.SessionByPair(ctx, "web", "api"); err != nil {
		t.Errorf("session written after the failed commit, read by another connection: %v; want it committed", err)
	}
	var n int64
	mustDo(t, other.DB().Raw("SELECT count(*) FROM sqlite_master WHERE name IN ('parent', 'child')").Scan(&n).Error)
	if n != 0 {
		t.Errorf("%d tables of the failed write are in the file; want none", n)
	}
}
