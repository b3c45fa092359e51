package models

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func enqueue(t *testing.T, s *Store, m *Message) *Message {
	t.Helper()
	mustDo(t, s.EnqueueMessage(context.Background(), m))
	return m
}

func TestEnqueueMessage(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		before := time.Now()
		m := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "$(rm -rf /); `id` 'quoted' \"x\" \u00e9\n", Status: MessageAnswered})
		if m.ID == 0 {
			t.Fatal("EnqueueMessage did not set the ID")
		}
		got, err := s.MessageByID(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != MessageQueued {
			t.Errorf("Status = %q, want queued whatever the caller set", got.Status)
		}
		if got.Text != m.Text {
			t.Errorf("Text = %q, want %q unchanged", got.Text, m.Text)
		}
		if got.CreatedAt.Before(before.Add(-time.Second)) || !got.NotBefore.Equal(got.CreatedAt) {
			t.Errorf("CreatedAt = %v, NotBefore = %v; want now and equal", got.CreatedAt, got.NotBefore)
		}
		if !got.ExpiresAt.IsZero() {
			t.Errorf("ExpiresAt = %v, want zero (never)", got.ExpiresAt)
		}
		second := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "x"})
		if second.ID <= m.ID {
			t.Errorf("IDs not increasing: %d then %d", m.ID, second.ID)
		}
		if err := s.EnqueueMessage(ctx, &Message{FromTeam: "web", Text: "no recipient"}); err == nil {
			t.Error("EnqueueMessage without ToTeam succeeded")
		}
	})
}

func TestQueueOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		m1 := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "1"})
		m2 := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "2"})
		other := enqueue(t, s, &Message{FromTeam: "cli", ToTeam: "api", Text: "other pair"})
		m3 := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "3"})
		now := time.Now()

		next := func(at time.Time) uint64 {
			t.Helper()
			m, err := s.NextMessage(ctx, "web", "api", at)
			if errors.Is(err, ErrNotFound) {
				return 0
			}
			if err != nil {
				t.Fatal(err)
			}
			return m.ID
		}
		if got := next(now); got != m1.ID {
			t.Fatalf("NextMessage = %d, want oldest %d", got, m1.ID)
		}

		// A crash leftover (running) is handed out again, before anything newer.
		mustDo(t, s.MarkDelivering(ctx, m1.ID, "sess", now))
		if got := next(now); got != m1.ID {
			t.Errorf("NextMessage with m1 running = %d, want %d", got, m1.ID)
		}
		if _, err := s.FinishMessage(ctx, m1.ID, MessageAnswered, "a1", "", now, time.Second); err != nil {
			t.Fatal(err)
		}
		if got := next(now); got != m2.ID {
			t.Errorf("NextMessage after m1 answered = %d, want %d", got, m2.ID)
		}

		// m2 backs off; it stays the head of the queue so m3 cannot overtake it.
		mustDo(t, s.MarkDelivering(ctx, m2.ID, "sess", now))
		mustDo(t, s.RetryMessage(ctx, m2.ID, now.Add(time.Minute), "host down"))
		if got := next(now); got != m2.ID {
			t.Errorf("NextMessage with m2 backing off = %d, want the head %d", got, m2.ID)
		}
		pairs, err := s.PendingPairs(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if want := []Pair{{"cli", "api"}, {"web", "api"}}; !slices.Equal(pairs, want) {
			t.Errorf("PendingPairs = %v, want %v", pairs, want)
		}
		for _, m := range []*Message{m3, other} {
			if _, err := s.FinishMessage(ctx, m.ID, MessageAnswered, "", "", now, 0); err != nil {
				t.Fatal(err)
			}
		}
		if got := next(now); got != m2.ID {
			t.Errorf("NextMessage with only m2 backing off = %d, want %d", got, m2.ID)
		}
		if pairs, _ := s.PendingPairs(ctx, now); len(pairs) != 0 {
			t.Errorf("PendingPairs with only a backing-off message = %v, want none", pairs)
		}
		if pairs, _ := s.PendingPairs(ctx, now.Add(time.Minute)); !slices.Equal(pairs, []Pair{{"web", "api"}}) {
			t.Errorf("PendingPairs once m2 is due = %v", pairs)
		}
	})
}

func TestDeliveryRecord(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		m := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "x"})

		mustDo(t, s.MarkRunning(ctx, m.ID))
		got, _ := s.MessageByID(ctx, m.ID)
		if got.Status != MessageRunning || got.DeliveredAt != nil || got.Attempts != 0 {
			t.Errorf("after MarkRunning: %+v", got)
		}

		mustDo(t, s.MarkDelivering(ctx, m.ID, "sess-1", at))
		got, _ = s.MessageByID(ctx, m.ID)
		if got.Status != MessageRunning || got.SessionID != "sess-1" || got.Attempts != 1 ||
			got.DeliveredAt == nil || !got.DeliveredAt.Equal(at) {
			t.Errorf("after MarkDelivering: %+v", got)
		}

		mustDo(t, s.RetryMessage(ctx, m.ID, at.Add(time.Minute), "broken pipe"))
		got, _ = s.MessageByID(ctx, m.ID)
		if got.Status != MessageQueued || got.DeliveredAt != nil || got.Attempts != 2 ||
			got.Error != "broken pipe" || !got.NotBefore.Equal(at.Add(time.Minute)) {
			t.Errorf("after RetryMessage: %+v", got)
		}

		mustDo(t, s.MarkDelivering(ctx, m.ID, "sess-1", at.Add(time.Minute)))
		if got, _ := s.MessageByID(ctx, m.ID); got.Attempts != 3 {
			t.Errorf("Attempts after second delivery = %d, want 3", got.Attempts)
		}
	})
}

func TestFinishMessageOnlyOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		m := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "x"})
		mustDo(t, s.MarkDelivering(ctx, m.ID, "sess", at))

		updated, err := s.FinishMessage(ctx, m.ID, MessageAnswered, "the answer", "", at.Add(2*time.Second), 2*time.Second)
		if err != nil || !updated {
			t.Fatalf("first FinishMessage = %v, %v; want updated", updated, err)
		}
		// The timeout that lost the race must not overwrite the answer.
		updated, err = s.FinishMessage(ctx, m.ID, MessageFailed, "", "timed out", at.Add(time.Minute), time.Minute)
		if err != nil || updated {
			t.Fatalf("second FinishMessage = %v, %v; want not updated, no error", updated, err)
		}
		got, _ := s.MessageByID(ctx, m.ID)
		if got.Status != MessageAnswered || got.Answer != "the answer" || got.Error != "" ||
			got.DurationMs != 2000 || got.FinishedAt == nil || !got.FinishedAt.Equal(at.Add(2*time.Second)) {
			t.Errorf("after a repeated finish: %+v", got)
		}

		if err := s.RetryMessage(ctx, m.ID, at, "x"); !errors.Is(err, ErrFinished) {
			t.Errorf("RetryMessage on an answered message: %v, want ErrFinished", err)
		}
		if err := s.MarkDelivering(ctx, m.ID, "sess", at); !errors.Is(err, ErrFinished) {
			t.Errorf("MarkDelivering on an answered message: %v, want ErrFinished", err)
		}
		if err := s.MarkRunning(ctx, m.ID); !errors.Is(err, ErrFinished) {
			t.Errorf("MarkRunning on an answered message: %v, want ErrFinished", err)
		}
		if _, err := s.FinishMessage(ctx, m.ID, MessageQueued, "", "", at, 0); err == nil {
			t.Error("FinishMessage with a non-final status succeeded")
		}
	})
}

func TestFinishMessageConcurrent(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		m := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "x"})
		const finishers = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range finishers {
			wg.Go(func() {
				updated, err := s.FinishMessage(ctx, m.ID, MessageFailed, "", "cancelled", time.Now(), 0)
				if err != nil {
					t.Error(err)
				}
				if updated {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d concurrent FinishMessage calls reported updating, want exactly 1", wins)
		}
	})
}

func TestExpireMessages(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		// The store keeps microseconds (Postgres's precision).
		now := time.Now().UTC().Truncate(time.Microsecond)
		ttl := 10 * time.Minute
		queued := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "a", ExpiresAt: now.Add(ttl)})
		retried := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "b", ExpiresAt: now.Add(ttl)})
		mustDo(t, s.MarkDelivering(ctx, retried.ID, "sess", now))
		mustDo(t, s.RetryMessage(ctx, retried.ID, now.Add(time.Minute), "dial api-box: connection refused"))
		running := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "c", ExpiresAt: now.Add(ttl)})
		mustDo(t, s.MarkDelivering(ctx, running.ID, "sess", now))
		later := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "d", ExpiresAt: now.Add(2 * ttl)})
		forever := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "e"})

		if n, err := s.ExpireMessages(ctx, now.Add(ttl-time.Second)); err != nil || n != 0 {
			t.Errorf("ExpireMessages before the TTL = %d, %v; want 0", n, err)
		}
		at := now.Add(ttl + time.Second)
		n, err := s.ExpireMessages(ctx, at)
		if err != nil || n != 2 {
			t.Fatalf("ExpireMessages = %d, %v; want 2", n, err)
		}
		got, _ := s.MessageByID(ctx, queued.ID)
		if got.Status != MessageExpired || got.Error != "expired after 10m0s without delivery" ||
			got.FinishedAt == nil || !got.FinishedAt.Equal(at) {
			t.Errorf("expired message: %+v", got)
		}
		got, _ = s.MessageByID(ctx, retried.ID)
		if want := "expired after 10m0s without delivery: dial api-box: connection refused"; got.Status != MessageExpired || got.Error != want {
			t.Errorf("expired retried message: status %q error %q, want %q", got.Status, got.Error, want)
		}
		for _, m := range []struct {
			msg  *Message
			want MessageStatus
		}{{running, MessageRunning}, {later, MessageQueued}, {forever, MessageQueued}} {
			if got, _ := s.MessageByID(ctx, m.msg.ID); got.Status != m.want {
				t.Errorf("message %q: status %q, want %q", m.msg.Text, got.Status, m.want)
			}
		}
		if n, _ := s.ExpireMessages(ctx, at); n != 0 {
			t.Errorf("second ExpireMessages = %d, want 0", n)
		}
		if _, err := s.NextMessage(ctx, "web", "api", at); err != nil {
			t.Errorf("NextMessage after expiry: %v", err)
		}
	})
}

func TestListMessagesAndCounts(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		a := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "a"})
		b := enqueue(t, s, &Message{FromTeam: "api", ToTeam: "web", Text: "b"})
		c := enqueue(t, s, &Message{FromTeam: "cli", ToTeam: "api", Text: "c"})
		d := enqueue(t, s, &Message{FromTeam: "cli", ToTeam: "db", Text: "d"})
		if _, err := s.FinishMessage(ctx, c.ID, MessageAnswered, "ok", "", time.Now(), 0); err != nil {
			t.Fatal(err)
		}

		tests := []struct {
			name string
			f    MessageFilter
			want []uint64
		}{
			{"all, newest first", MessageFilter{}, []uint64{d.ID, c.ID, b.ID, a.ID}},
			{"team either side", MessageFilter{Team: "web"}, []uint64{b.ID, a.ID}},
			{"from", MessageFilter{FromTeam: "cli"}, []uint64{d.ID, c.ID}},
			{"to", MessageFilter{ToTeam: "api"}, []uint64{c.ID, a.ID}},
			{"status", MessageFilter{Status: MessageAnswered}, []uint64{c.ID}},
			{"to and status", MessageFilter{ToTeam: "api", Status: MessageQueued}, []uint64{a.ID}},
			{"limit", MessageFilter{Limit: 1}, []uint64{d.ID}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.ListMessages(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var ids []uint64
				for _, m := range got {
					ids = append(ids, m.ID)
				}
				if !slices.Equal(ids, tt.want) {
					t.Errorf("ListMessages(%+v) = %v, want %v", tt.f, ids, tt.want)
				}
			})
		}

		counts, err := s.MessageCounts(ctx, "api")
		if err != nil {
			t.Fatal(err)
		}
		if len(counts) != 2 || counts[MessageQueued] != 1 || counts[MessageAnswered] != 1 {
			t.Errorf("MessageCounts(api) = %v", counts)
		}
		all, err := s.MessageCounts(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if all[MessageQueued] != 3 || all[MessageAnswered] != 1 {
			t.Errorf("MessageCounts(all) = %v", all)
		}
	})
}

func TestMessageStatusFinal(t *testing.T) {
	for st, want := range map[MessageStatus]bool{
		MessageQueued: false, MessageRunning: false,
		MessageAnswered: true, MessageFailed: true, MessageExpired: true,
	} {
		if got := st.Final(); got != want {
			t.Errorf("%q.Final() = %v, want %v", st, got, want)
		}
	}
}

func TestPostponeKeepsDelivery(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		m := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "x"})
		mustDo(t, s.MarkDelivering(ctx, m.ID, "sess-1", at))
		mustDo(t, s.PostponeMessage(ctx, m.ID, at.Add(time.Minute), "host down"))
		got, _ := s.MessageByID(ctx, m.ID)
		if got.Status != MessageRunning || got.DeliveredAt == nil || got.Attempts != 2 ||
			got.Error != "host down" || !got.NotBefore.Equal(at.Add(time.Minute)) {
			t.Fatalf("after PostponeMessage: %+v", got)
		}
		if next, err := s.NextMessage(ctx, "web", "api", at); err != nil || next.ID != m.ID {
			t.Fatalf("NextMessage = %+v, %v; the postponed message stays the head", next, err)
		}
	})
}

// NUL and invalid UTF-8, which Postgres's text type refuses, are stored as
// U+FFFD on both engines, so such a message or answer neither fails on one
// engine only nor loops in retries.
func TestUnstorableTextReplaced(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		m := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "a\x00b\xffc"})
		if _, err := s.FinishMessage(ctx, m.ID, MessageAnswered, "x\x00y", "", time.Now(), 0); err != nil {
			t.Fatal(err)
		}
		got, err := s.MessageByID(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Text != "a\uFFFDb\uFFFDc" || got.Answer != "x\uFFFDy" {
			t.Errorf("stored text %q, answer %q", got.Text, got.Answer)
		}
	})
}
