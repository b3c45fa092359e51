package models

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
)

func TestBeginTurn(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		sess, _, err := s.GetOrCreateSession(ctx, "web", "api")
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2025, 1, 1, 0, 0, 0, 123456000, time.UTC)
		m := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "x"})
		mustDo(t, s.BeginTurn(ctx, m.ID, sess.SessionID, at))

		gotM, _ := s.MessageByID(ctx, m.ID)
		if gotM.Status != MessageRunning || gotM.SessionID != sess.SessionID || gotM.Attempts != 1 ||
			gotM.DeliveredAt == nil || !gotM.DeliveredAt.Equal(at) {
			t.Errorf("message after BeginTurn: %+v", gotM)
		}
		gotS, _ := s.SessionByID(ctx, sess.SessionID)
		if gotS.ProcessState != ProcessBusy || gotS.LastUsedAt == nil || !gotS.LastUsedAt.Equal(at) {
			t.Errorf("session after BeginTurn: %+v", gotS)
		}

		// Nothing is half written: a missing session leaves the message as
		// it was, and a finished message leaves the session alone.
		other := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "y"})
		if err := s.BeginTurn(ctx, other.ID, NewSessionID(), at); !errors.Is(err, ErrNotFound) {
			t.Errorf("BeginTurn into a missing session: %v, want ErrNotFound", err)
		}
		if got, _ := s.MessageByID(ctx, other.ID); got.Status != MessageQueued || got.Attempts != 0 || got.DeliveredAt != nil {
			t.Errorf("message after a failed BeginTurn: %+v, want untouched", got)
		}
		mustDo(t, s.SetProcessState(ctx, sess.SessionID, ProcessIdle))
		if _, err := s.FinishMessage(ctx, other.ID, MessageFailed, "", "x", at, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.BeginTurn(ctx, other.ID, sess.SessionID, at.Add(time.Hour)); !errors.Is(err, ErrFinished) {
			t.Errorf("BeginTurn of a finished message: %v, want ErrFinished", err)
		}
		if got, _ := s.SessionByID(ctx, sess.SessionID); got.ProcessState != ProcessIdle || !got.LastUsedAt.Equal(at) {
			t.Errorf("session after a refused BeginTurn: %+v, want untouched", got)
		}
		if err := s.BeginTurn(ctx, 4242, sess.SessionID, at); !errors.Is(err, ErrNotFound) {
			t.Errorf("BeginTurn of a missing message: %v, want ErrNotFound", err)
		}
	})
}

func TestEndTurn(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		sess, _, err := s.GetOrCreateSession(ctx, "web", "api")
		if err != nil {
			t.Fatal(err)
		}
		id := sess.SessionID
		at := time.Date(2025, 1, 1, 0, 0, 1, 0, time.UTC)
		mustDo(t, s.SetProcessState(ctx, id, ProcessBusy))
		mustDo(t, s.SetStatus(ctx, id, SessionError, "claude exited 1"))

		got, err := s.EndTurn(ctx, id, at)
		if err != nil {
			t.Fatal(err)
		}
		if got.ProcessState != ProcessIdle || got.MessageCount != 1 || got.Status != SessionActive ||
			got.LastError != "" || got.LastResponseAt == nil || !got.LastResponseAt.Equal(at) {
			t.Errorf("EndTurn returned %+v", got)
		}
		stored, _ := s.SessionByID(ctx, id)
		if d := diffSession(stored, got); d != "" {
			t.Errorf("EndTurn's row differs from the stored one: %s", d)
		}

		// A compacting session stays compacting, and its error text stays.
		mustDo(t, s.StartCompaction(ctx, id))
		got, err = s.EndTurn(ctx, id, at)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != SessionCompacting || got.MessageCount != 2 {
			t.Errorf("EndTurn of a compacting session: %+v", got)
		}
		if _, err := s.EndTurn(ctx, NewSessionID(), at); !errors.Is(err, ErrNotFound) {
			t.Errorf("EndTurn of a missing session: %v, want ErrNotFound", err)
		}
	})
}

func TestCompleteMessage(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		at := time.Date(2025, 1, 1, 0, 0, 2, 0, time.UTC)
		m := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "x"})
		mustDo(t, s.MarkDelivering(ctx, m.ID, "sess", at))

		got, ok, err := s.CompleteMessage(ctx, m.ID, MessageAnswered, "JWT", "", at, 2*time.Second)
		if err != nil || !ok {
			t.Fatalf("CompleteMessage = %v, %v; want finished", ok, err)
		}
		stored, _ := s.MessageByID(ctx, m.ID)
		if d := diffMessage(stored, got); d != "" {
			t.Errorf("CompleteMessage's row differs from the stored one: %s", d)
		}
		if got.Status != MessageAnswered || got.Answer != "JWT" || got.DurationMs != 2000 || got.Text != "x" {
			t.Errorf("CompleteMessage returned %+v", got)
		}
		again, ok, err := s.CompleteMessage(ctx, m.ID, MessageFailed, "", "timed out", at, 0)
		if err != nil || ok || again != nil {
			t.Errorf("second CompleteMessage = %v, %v, %v; want nil, false, nil", again, ok, err)
		}
		if _, _, err := s.CompleteMessage(ctx, 4242, MessageFailed, "", "x", at, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("CompleteMessage of a missing message: %v, want ErrNotFound", err)
		}
		if _, _, err := s.CompleteMessage(ctx, m.ID, MessageRunning, "", "", at, 0); err == nil {
			t.Error("CompleteMessage with a non-final status succeeded")
		}

		// The answer racing a timeout and a cancel: one wins.
		r := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "race"})
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 8 {
			wg.Go(func() {
				_, ok, err := s.CompleteMessage(ctx, r.ID, MessageFailed, "", "cancelled", at, 0)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d concurrent CompleteMessage calls won, want 1", wins)
		}
	})
}

// A turn's bookkeeping is three writes (BeginTurn's two in one transaction,
// EndTurn, CompleteMessage) and no reads: the statement counts the broker's
// hot path pays, on both engines.
func TestTurnStatements(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		sess, _, err := s.GetOrCreateSession(ctx, "web", "api")
		if err != nil {
			t.Fatal(err)
		}
		m := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "x"})

		var mu sync.Mutex
		counts := map[string]int{}
		count := func(kind string) func(*gorm.DB) {
			return func(*gorm.DB) { mu.Lock(); counts[kind]++; mu.Unlock() }
		}
		cb := s.DB().Callback()
		mustDo(t, cb.Query().Before("gorm:query").Register("test:count", count("read")))
		mustDo(t, cb.Row().Before("gorm:row").Register("test:count", count("read")))
		mustDo(t, cb.Raw().Before("gorm:raw").Register("test:count", count("raw")))
		mustDo(t, cb.Create().Before("gorm:create").Register("test:count", count("write")))
		mustDo(t, cb.Update().Before("gorm:update").Register("test:count", count("write")))
		mustDo(t, cb.Delete().Before("gorm:delete").Register("test:count", count("write")))

		at := time.Now()
		mustDo(t, s.BeginTurn(ctx, m.ID, sess.SessionID, at))
		if _, err := s.EndTurn(ctx, sess.SessionID, at); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.CompleteMessage(ctx, m.ID, MessageAnswered, "a", "", at, 0); err != nil || !ok {
			t.Fatalf("CompleteMessage = %v, %v", ok, err)
		}
		if want := map[string]int{"write": 4}; fmt.Sprint(counts) != fmt.Sprint(want) {
			t.Errorf("a turn ran %v statements, want %v", counts, want)
		}
	})
}
