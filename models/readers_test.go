package models

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
)

// Every read that follows a write sees it, whichever connection serves the
// read (SQLite reads on its own read-only pool): an asker, a worker or a
// status tool never reads an older state than the one it just wrote. Many
// goroutines at once, so that the reads spread over the pool.
func TestReadsSeeTheWriteBefore(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		s := newStore(t)
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := range 8 {
			wg.Go(func() {
				from, to := fmt.Sprintf("web%d", g), "api"
				sess, _, err := s.GetOrCreateSession(ctx, from, to)
				if err != nil {
					errs <- err
					return
				}
				for i := range 10 {
					m := &Message{FromTeam: from, ToTeam: to, Text: fmt.Sprintf("q%d", i)}
					if err := s.EnqueueMessage(ctx, m); err != nil {
						errs <- err
						return
					}
					head, _, err := s.QueueHead(ctx, from, to)
					if err != nil || head.ID != m.ID {
						errs <- fmt.Errorf("%s: QueueHead after enqueue of %d = %v, %v", from, m.ID, head, err)
						return
					}
					if err := s.BeginTurn(ctx, m.ID, sess.SessionID, time.Now()); err != nil {
						errs <- err
						return
					}
					got, err := s.MessageByID(ctx, m.ID)
					if err != nil || got.Status != MessageRunning {
						errs <- fmt.Errorf("%s: MessageByID after BeginTurn = %v, %v; want running", from, got, err)
						return
					}
					if cur, err := s.SessionByPair(ctx, from, to); err != nil || cur.ProcessState != ProcessBusy {
						errs <- fmt.Errorf("%s: SessionByPair after BeginTurn = %v, %v; want busy", from, cur, err)
						return
					}
					if _, err := s.EndTurn(ctx, sess.SessionID, time.Now()); err != nil {
						errs <- err
						return
					}
					if _, _, err := s.CompleteMessage(ctx, m.ID, MessageAnswered, "a", "", time.Now(), 0); err != nil {
						errs <- err
						return
					}
					if _, _, err := s.QueueHead(ctx, from, to); err == nil {
						errs <- fmt.Errorf("%s: QueueHead after the only message was answered found one", from)
						return
					}
					cur, err := s.SessionByID(ctx, sess.SessionID)
					if err != nil || cur.MessageCount != i+1 || cur.ProcessState != ProcessIdle {
						errs <- fmt.Errorf("%s: SessionByID after EndTurn %d = %+v, %v", from, i+1, cur, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// A read does not wait for a write transaction in progress: status tools
// and queue reads go on while the writer is busy. (On SQLite the writer is
// one connection, and reads have their own pool.)
func TestReadWhileWriting(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		s := newStore(t)
		ctx := context.Background()
		m := &Message{FromTeam: "web", ToTeam: "api", Text: "q"}
		mustDo(t, s.EnqueueMessage(ctx, m))
		err := s.transaction(ctx, func(tx *gorm.DB) error {
			if err := tx.Model(&Message{}).Where("id = ?", m.ID).Update("text", "changed").Error; err != nil {
				return err
			}
			// Were reads behind the writer, this would wait for the
			// transaction, which waits for it: the deadline ends that.
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			got, err := s.MessageByID(rctx, m.ID)
			if err != nil {
				return fmt.Errorf("read during a write transaction: %w", err)
			}
			if got.Text != "q" {
				return fmt.Errorf("read during a write transaction saw %q, uncommitted; want %q", got.Text, "q")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.MessageByID(ctx, m.ID)
		if err != nil || got.Text != "changed" {
			t.Fatalf("read after commit = %+v, %v; want the committed text", got, err)
		}
	})
}

// The read-only pool refuses writes, so that nothing can write past the
// one writer connection (SQLite).
func TestReaderPoolIsReadOnly(t *testing.T) {
	s := newStore(t)
	if s.rdb == nil {
		t.Fatal("SQLite store has no read pool")
	}
	err := s.rdb.Exec("UPDATE sessions SET status = 'x'").Error
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("write on the read pool: %v; want a readonly error", err)
	}
}

// QueueHead returns the oldest unfinished message of the pair, running or
// queued, and says whether another follows, on both engines.
func TestQueueHeadOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		s := newStore(t)
		ctx := context.Background()
		var ids []uint64
		for i := range 3 {
			m := &Message{FromTeam: "web", ToTeam: "api", Text: fmt.Sprint(i)}
			mustDo(t, s.EnqueueMessage(ctx, m))
			ids = append(ids, m.ID)
		}
		mustDo(t, s.EnqueueMessage(ctx, &Message{FromTeam: "cli", ToTeam: "api", Text: "other pair"}))
		_, _, err := s.CompleteMessage(ctx, ids[0], MessageAnswered, "a", "", time.Now(), 0)
		mustDo(t, err)
		mustDo(t, s.MarkRunning(ctx, ids[2]))
		for _, want := range []struct {
			id   uint64
			more bool
		}{{ids[1], true}, {ids[2], false}} {
			head, more, err := s.QueueHead(ctx, "web", "api")
			if err != nil || head.ID != want.id || more != want.more {
				t.Fatalf("QueueHead = %v, %v, %v; want id %d, more %v", head, more, err, want.id, want.more)
			}
			_, _, err = s.CompleteMessage(ctx, want.id, MessageAnswered, "a", "", time.Now(), 0)
			mustDo(t, err)
		}
	})
}
