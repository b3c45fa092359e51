package models

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// benchSizes are the session counts the benchmarks run at, so that cost
// growth with the table size shows.
var benchSizes = []int{10_000, 100_000}

// seedTeams is how many from-teams the seeded sessions spread over; each
// team then has size/seedTeams sessions.
const seedTeams = 500

// seededStore opens a store in b.TempDir() holding n sessions, written in
// one transaction. Session i is pair (f<i%seedTeams>, t<i/seedTeams>), was
// last used i seconds after a fixed base, and one in a hundred is in error.
func seededStore(b *testing.B, n int) *Store {
	b.Helper()
	s := newStore(b)
	seedSessions(b, s, n)
	return s
}

// seedSessions writes n sessions into s as seededStore describes, and
// analyses the table.
func seedSessions(b testing.TB, s *Store, n int) {
	b.Helper()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]Session, n)
	for i := range rows {
		used := base.Add(time.Duration(i) * time.Second)
		status := SessionActive
		if i%100 == 0 {
			status = SessionError
		}
		rows[i] = Session{
			FromTeam:     fmt.Sprintf("f%d", i%seedTeams),
			ToTeam:       fmt.Sprintf("t%d", i/seedTeams),
			SessionID:    NewSessionID(),
			Status:       status,
			ProcessState: ProcessStopped,
			MessageCount: i % 600,
			CreatedAt:    base,
			UpdatedAt:    used,
			LastUsedAt:   &used,
		}
	}
	// One transaction, and no slow-query log of thousand-row inserts.
	db := s.DB().Session(&gorm.Session{Logger: logger.Discard})
	err := db.Transaction(func(tx *gorm.DB) error {
		return tx.CreateInBatches(rows, 1000).Error
	})
	if err != nil {
		b.Fatalf("seed %d sessions: %v", n, err)
	}
	// Give the query planner statistics, as a long-lived database would have.
	if err := s.DB().Exec("ANALYZE").Error; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkGetOrCreateSessionExisting(b *testing.B) {
	ctx := context.Background()
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			s := seededStore(b, n)
			b.ResetTimer()
			i := 0
			for b.Loop() {
				k := (i * 7919) % n // wander over the table, not one hot row
				i++
				_, created, err := s.GetOrCreateSession(ctx, fmt.Sprintf("f%d", k%seedTeams), fmt.Sprintf("t%d", k/seedTeams))
				if err != nil || created {
					b.Fatalf("GetOrCreateSession = created %v, %v; want an existing session", created, err)
				}
			}
		})
	}
}

func BenchmarkListSessions(b *testing.B) {
	ctx := context.Background()
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			s := seededStore(b, n)
			lastUsed := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
			filters := []struct {
				name string
				f    SessionFilter
			}{
				{"recent", SessionFilter{Limit: 50}},
				{"team", SessionFilter{Team: "f7", Limit: 50}},
				{"to", SessionFilter{ToTeam: "t3", Limit: 50}},
				{"status", SessionFilter{Status: SessionError, Limit: 50}},
				{"since-1h", SessionFilter{Since: lastUsed.Add(-time.Hour), Limit: 50}},
				{"team-since-1h", SessionFilter{Team: "f7", Since: lastUsed.Add(-time.Hour), Limit: 50}},
			}
			for _, tt := range filters {
				b.Run(tt.name, func(b *testing.B) {
					for b.Loop() {
						got, err := s.ListSessions(ctx, tt.f)
						if err != nil || len(got) == 0 {
							b.Fatalf("ListSessions(%+v) = %d sessions, %v", tt.f, len(got), err)
						}
					}
				})
			}
		})
	}
}

// BenchmarkMessageRoundTrip is the queue's write path for one message:
// enqueue, pick up, mark delivering, finish.
func BenchmarkMessageRoundTrip(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	for b.Loop() {
		m := &Message{FromTeam: "web", ToTeam: "api", Text: "how does auth work?"}
		if err := s.EnqueueMessage(ctx, m); err != nil {
			b.Fatal(err)
		}
		next, err := s.NextMessage(ctx, "web", "api", time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if err := s.MarkDelivering(ctx, next.ID, "sess", time.Now()); err != nil {
			b.Fatal(err)
		}
		if _, err := s.FinishMessage(ctx, next.ID, MessageAnswered, "JWT", "", time.Now(), time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWarmAskStatements is the store's part of one warm ask as the
// broker makes it: enqueue, the head of the pair's queue, the pair's
// session, BeginTurn, EndTurn and CompleteMessage.
func BenchmarkWarmAskStatements(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	sess, _, err := s.GetOrCreateSession(ctx, "web", "api")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		m := &Message{FromTeam: "web", ToTeam: "api", Text: "how does auth work?"}
		if err := s.EnqueueMessage(ctx, m); err != nil {
			b.Fatal(err)
		}
		next, _, err := s.QueueHead(ctx, "web", "api")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.SessionByPair(ctx, "web", "api"); err != nil {
			b.Fatal(err)
		}
		if err := s.BeginTurn(ctx, next.ID, sess.SessionID, time.Now()); err != nil {
			b.Fatal(err)
		}
		if _, err := s.EndTurn(ctx, sess.SessionID, time.Now()); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.CompleteMessage(ctx, next.ID, MessageAnswered, "JWT", "", time.Now(), time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
