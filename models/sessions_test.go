package models

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestGetOrCreateSessionConcurrent(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)

		const callers = 64
		pairs := []Pair{{"web", "api"}, {"api", "web"}, {"cli", "api"}}
		type result struct {
			pair    Pair
			id      string
			created bool
			err     error
		}
		results := make(chan result, callers*len(pairs))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range callers * len(pairs) {
			p := pairs[i%len(pairs)]
			wg.Go(func() {
				<-start
				sess, created, err := s.GetOrCreateSession(ctx, p.From, p.To)
				r := result{pair: p, created: created, err: err}
				if sess != nil {
					r.id = sess.SessionID
				}
				results <- r
			})
		}
		close(start)
		wg.Wait()
		close(results)

		ids := map[Pair]map[string]bool{}
		created := map[Pair]int{}
		for r := range results {
			if r.err != nil {
				t.Fatalf("GetOrCreateSession(%v): %v", r.pair, r.err)
			}
			if ids[r.pair] == nil {
				ids[r.pair] = map[string]bool{}
			}
			ids[r.pair][r.id] = true
			if r.created {
				created[r.pair]++
			}
		}
		for _, p := range pairs {
			if len(ids[p]) != 1 {
				t.Errorf("pair %v got %d different session ids, want 1", p, len(ids[p]))
			}
			if created[p] != 1 {
				t.Errorf("pair %v reported created %d times, want 1", p, created[p])
			}
			for id := range ids[p] {
				if u, err := uuid.Parse(id); err != nil || u.Version() != 4 {
					t.Errorf("session id %q is not a UUID v4", id)
				}
			}
		}
		var rows int64
		if err := s.DB().Model(&Session{}).Count(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if rows != int64(len(pairs)) {
			t.Errorf("%d session rows, want %d", rows, len(pairs))
		}
	})
}

func TestGetOrCreateSessionDefaults(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		sess, created, err := s.GetOrCreateSession(ctx, "web", "api")
		if err != nil || !created {
			t.Fatalf("GetOrCreateSession = %v, %v, want created", created, err)
		}
		if sess.Status != SessionActive || sess.ProcessState != ProcessStopped || sess.MessageCount != 0 {
			t.Errorf("new session = %+v, want active, stopped, no messages", sess)
		}
		if sess.ID == 0 || sess.CreatedAt.IsZero() {
			t.Errorf("new session has no ID or CreatedAt: %+v", sess)
		}
		if _, _, err := s.GetOrCreateSession(ctx, "", "api"); err == nil {
			t.Error("GetOrCreateSession with an empty team succeeded")
		}
	})
}

func TestSessionUpdates(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		sess, _, err := s.GetOrCreateSession(ctx, "web", "api")
		if err != nil {
			t.Fatal(err)
		}
		id := sess.SessionID

		for want := 1; want <= 3; want++ {
			n, err := s.IncrementMessageCount(ctx, id)
			if err != nil || n != want {
				t.Fatalf("IncrementMessageCount = %d, %v, want %d", n, err, want)
			}
		}
		mustDo(t, s.SetStatus(ctx, id, SessionError, "claude exited 1"))
		mustDo(t, s.SetProcessState(ctx, id, ProcessBusy))
		got, err := s.SessionByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.MessageCount != 3 || got.Status != SessionError || got.LastError != "claude exited 1" || got.ProcessState != ProcessBusy {
			t.Errorf("after updates: %+v", got)
		}

		newID := NewSessionID()
		rebooted, err := s.ReplaceSessionID(ctx, "web", "api", newID)
		if err != nil {
			t.Fatal(err)
		}
		if rebooted.SessionID != newID || rebooted.MessageCount != 0 || rebooted.Status != SessionActive || rebooted.LastError != "" {
			t.Errorf("after ReplaceSessionID: %+v", rebooted)
		}
		if rebooted.ID != sess.ID {
			t.Errorf("ReplaceSessionID made a new row %d, want row %d kept", rebooted.ID, sess.ID)
		}
		if _, err := s.SessionByID(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("old session id still found: %v", err)
		}
		if _, err := s.ReplaceSessionID(ctx, "web", "api", "not-a-uuid"); err == nil {
			t.Error("ReplaceSessionID accepted a non-UUID")
		}

		mustDo(t, s.DeleteSession(ctx, newID))
		if _, err := s.SessionByPair(ctx, "web", "api"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted session still found: %v", err)
		}
		again, created, err := s.GetOrCreateSession(ctx, "web", "api")
		if err != nil || !created || again.SessionID == newID {
			t.Errorf("GetOrCreateSession after delete = %+v, %v, %v; want a new session", again, created, err)
		}
	})
}

func TestCompaction(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		sess, _, err := s.GetOrCreateSession(ctx, "web", "api")
		if err != nil {
			t.Fatal(err)
		}
		id := sess.SessionID
		for range 3 {
			if _, err := s.IncrementMessageCount(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		mustDo(t, s.StartCompaction(ctx, id))
		if got, _ := s.SessionByID(ctx, id); got.Status != SessionCompacting {
			t.Errorf("status during compaction = %q", got.Status)
		}
		at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
		for n := 1; n <= 2; n++ {
			mustDo(t, s.FinishCompaction(ctx, id, at))
			got, err := s.SessionByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != SessionActive || got.CompactionCount != n || got.MessageCount != 0 ||
				got.LastCompactedAt == nil || !got.LastCompactedAt.Equal(at) {
				t.Errorf("after compaction %d: %+v", n, got)
			}
		}
	})
}

func TestShouldCompact(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	day := 24 * time.Hour
	tests := []struct {
		name        string
		messages    int
		created     time.Time
		compactedAt *time.Time
		want        bool
	}{
		{"new and empty", 0, now, nil, false},
		{"exactly 500, new", 500, now, nil, false},
		{"501, new", 501, now, nil, true},
		{"501, compacted an hour ago", 501, ago(30 * day), ptr(ago(time.Hour)), true},
		{"101, six days old", 101, ago(6 * day), nil, false},
		{"101, just over seven days old", 101, ago(7*day + time.Second), nil, true},
		{"101, exactly seven days old", 101, ago(7 * day), nil, false},
		{"100, a month old", 100, ago(30 * day), nil, false},
		{"101, old but compacted yesterday", 101, ago(30 * day), ptr(ago(day)), false},
		{"101, compacted eight days ago", 101, ago(30 * day), ptr(ago(8 * day)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Session{MessageCount: tt.messages, CreatedAt: tt.created, LastCompactedAt: tt.compactedAt}
			if got := ShouldCompact(s, now); got != tt.want {
				t.Errorf("ShouldCompact = %v, want %v", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestResetProcessStates(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		states := []ProcessState{ProcessStopped, ProcessStarting, ProcessIdle, ProcessBusy, ProcessError}
		for i, st := range states {
			sess, _, err := s.GetOrCreateSession(ctx, fmt.Sprintf("t%d", i), "api")
			if err != nil {
				t.Fatal(err)
			}
			mustDo(t, s.SetProcessState(ctx, sess.SessionID, st))
		}
		n, err := s.ResetProcessStates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(len(states)-1) {
			t.Errorf("ResetProcessStates reset %d, want %d", n, len(states)-1)
		}
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.SessionsByProcessState[ProcessStopped] != int64(len(states)) || len(st.SessionsByProcessState) != 1 {
			t.Errorf("process states after reset = %v, want all stopped", st.SessionsByProcessState)
		}
		if n, _ := s.ResetProcessStates(ctx); n != 0 {
			t.Errorf("second ResetProcessStates reset %d, want 0", n)
		}
	})
}

func TestListSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		base := time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC)
		// used: hours after base when last used; -1 = never used (CreatedAt = now).
		seed := []struct {
			from, to string
			used     int
			status   SessionStatus
		}{
			{"web", "api", 5, SessionActive},
			{"api", "web", 1, SessionActive},
			{"cli", "api", 3, SessionError},
			{"web", "db", 2, SessionActive},
			{"ops", "db", -1, SessionActive},
		}
		for _, sd := range seed {
			sess, _, err := s.GetOrCreateSession(ctx, sd.from, sd.to)
			if err != nil {
				t.Fatal(err)
			}
			if sd.used >= 0 {
				mustDo(t, s.RecordUsage(ctx, sess.SessionID, base.Add(time.Duration(sd.used)*time.Hour)))
			}
			mustDo(t, s.SetStatus(ctx, sess.SessionID, sd.status, ""))
		}

		tests := []struct {
			name string
			f    SessionFilter
			want []string // "from>to", in order
		}{
			// The never-used session was created now, long after base: newest.
			{"all", SessionFilter{}, []string{"ops>db", "web>api", "cli>api", "web>db", "api>web"}},
			{"team either side", SessionFilter{Team: "web"}, []string{"web>api", "web>db", "api>web"}},
			{"from", SessionFilter{FromTeam: "web"}, []string{"web>api", "web>db"}},
			{"to", SessionFilter{ToTeam: "api"}, []string{"web>api", "cli>api"}},
			{"status", SessionFilter{Status: SessionError}, []string{"cli>api"}},
			{"since", SessionFilter{Since: base.Add(3 * time.Hour)}, []string{"ops>db", "web>api", "cli>api"}},
			{"team and since", SessionFilter{Team: "api", Since: base.Add(2 * time.Hour)}, []string{"web>api", "cli>api"}},
			{"limit", SessionFilter{Limit: 2}, []string{"ops>db", "web>api"}},
			{"nothing", SessionFilter{Team: "nobody"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.ListSessions(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, g := range got {
					names = append(names, g.FromTeam+">"+g.ToTeam)
				}
				if !slices.Equal(names, tt.want) {
					t.Errorf("ListSessions(%+v) = %v, want %v", tt.f, names, tt.want)
				}
				unlimited := tt.f
				unlimited.Limit = 0
				all, err := s.ListSessions(ctx, unlimited)
				if err != nil {
					t.Fatal(err)
				}
				if n, err := s.CountSessions(ctx, tt.f); err != nil || n != int64(len(all)) {
					t.Errorf("CountSessions(%+v) = %d, %v; want %d", tt.f, n, err, len(all))
				}
			})
		}
	})
}

func TestStats(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		a, _, _ := s.GetOrCreateSession(ctx, "web", "api")
		s.GetOrCreateSession(ctx, "cli", "api")
		mustDo(t, s.SetStatus(ctx, a.SessionID, SessionError, "boom"))
		mustDo(t, s.SetProcessState(ctx, a.SessionID, ProcessIdle))
		for range 3 {
			mustDo(t, s.EnqueueMessage(ctx, &Message{FromTeam: "web", ToTeam: "api", Text: "hi"}))
		}
		m := &Message{FromTeam: "web", ToTeam: "api", Text: "bye"}
		mustDo(t, s.EnqueueMessage(ctx, m))
		if _, err := s.FinishMessage(ctx, m.ID, MessageFailed, "", "x", time.Now(), 0); err != nil {
			t.Fatal(err)
		}

		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := Stats{
			Sessions:               2,
			SessionsByStatus:       map[SessionStatus]int64{SessionActive: 1, SessionError: 1},
			SessionsByProcessState: map[ProcessState]int64{ProcessStopped: 1, ProcessIdle: 1},
			MessagesByStatus:       map[MessageStatus]int64{MessageQueued: 3, MessageFailed: 1},
		}
		if fmt.Sprint(st) != fmt.Sprint(want) {
			t.Errorf("Stats = %+v, want %+v", st, want)
		}
	})
}
