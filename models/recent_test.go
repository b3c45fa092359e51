package models

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

func TestRecentMessages(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		a := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "a"})
		b := enqueue(t, s, &Message{FromTeam: "api", ToTeam: "web", Text: "b"})
		c := enqueue(t, s, &Message{FromTeam: "cli", ToTeam: "api", Text: "c"})
		d := enqueue(t, s, &Message{FromTeam: "cli", ToTeam: "db", Text: "d"})
		e := enqueue(t, s, &Message{FromTeam: "api", ToTeam: "db", Text: "e"})
		for _, id := range []uint64{c.ID, e.ID} {
			if _, err := s.FinishMessage(ctx, id, MessageAnswered, "ok", "", time.Now(), time.Second); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name string
			f    RecentFilter
			want []uint64
		}{
			{"all, newest first", RecentFilter{}, []uint64{e.ID, d.ID, c.ID, b.ID, a.ID}},
			{"team as sender or receiver", RecentFilter{Team: "api"}, []uint64{e.ID, c.ID, b.ID, a.ID}},
			{"team and status", RecentFilter{Team: "api", Status: MessageQueued}, []uint64{b.ID, a.ID}},
			{"status", RecentFilter{Status: MessageAnswered}, []uint64{e.ID, c.ID}},
			{"limit", RecentFilter{Limit: 2}, []uint64{e.ID, d.ID}},
			// Each side stops at the limit, and the merge keeps the newest.
			{"team and limit", RecentFilter{Team: "api", Limit: 3}, []uint64{e.ID, c.ID, b.ID}},
			{"team with no messages", RecentFilter{Team: "nobody"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.RecentMessages(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var ids []uint64
				for _, m := range got {
					ids = append(ids, m.ID)
				}
				if !slices.Equal(ids, tt.want) {
					t.Errorf("RecentMessages(%+v) = %v, want %v", tt.f, ids, tt.want)
				}
			})
		}
		got, err := s.RecentMessages(ctx, RecentFilter{Team: "db", Status: MessageAnswered})
		if err != nil || len(got) != 1 || got[0].Answer != "ok" || got[0].Text != "e" || got[0].DurationMs != 1000 {
			t.Errorf("RecentMessages(db, answered) = %+v, %v; want message e with its answer and duration", got, err)
		}
	})
}

// recentSQL is the SQL RecentMessages runs for f, with its arguments inlined.
func recentSQL(t *testing.T, s *Store, f RecentFilter) string {
	return s.DB().ToSQL(func(tx *gorm.DB) *gorm.DB {
		st := &Store{db: tx}
		q, err := st.recentQuery(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		var out []Message
		return q.Find(&out)
	})
}

// The dashboard polls the team's newest messages every few seconds: each
// side must be a range scan of a (team, id) index, never a scan of the
// table nor a sort of every message of the team.
func TestRecentMessagesUsesIndexes(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, s *Store) {
		t.Helper()
		for _, f := range []RecentFilter{{Team: "t3", Limit: 50}, {Team: "t3", Status: MessageAnswered, Limit: 50}} {
			plan := queryPlan(t, s, recentSQL(t, s, f))
			for _, want := range []string{
				"USING COVERING INDEX idx_messages_from_recent (from_team=?)",
				"USING COVERING INDEX idx_messages_to_recent (to_team=?)",
			} {
				if !strings.Contains(plan, want) && !strings.Contains(plan, strings.Replace(want, "COVERING ", "", 1)) {
					t.Errorf("RecentMessages(%+v): query plan lacks %q:\n%s", f, want, plan)
				}
			}
			if strings.Contains(plan, "SCAN messages\n") {
				t.Errorf("RecentMessages(%+v): query plan reads every message:\n%s", f, plan)
			}
		}
	}
	t.Run("empty", func(t *testing.T) { check(t, newStore(t)) })
	t.Run("seeded", func(t *testing.T) {
		if testing.Short() {
			// Seeding thousands of rows takes half a minute under -race;
			// the full suite checks the plan on them.
			t.Skip("seeded plan check runs in the full suite")
		}
		s := newStore(t)
		// One statement: through GORM, 5000 rows took 30 s under -race.
		db := s.DB().Session(&gorm.Session{Logger: logger.Discard})
		mustDo(t, db.Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 4999)
			INSERT INTO messages (from_team, to_team, text, status, attempts, created_at, updated_at)
			SELECT 't' || (i % 7), 't' || (i % 11), 'q', CASE WHEN i % 10 = 0 THEN ? ELSE ? END, 0, ?, ?
			FROM n`, MessageFailed, MessageAnswered, time.Now(), time.Now()).Error)
		var n int64
		mustDo(t, db.Model(&Message{}).Count(&n).Error)
		if n != 5000 {
			t.Fatalf("seeded %d messages, want 5000", n)
		}
		mustDo(t, db.Exec("ANALYZE").Error)
		check(t, s)
	})
}

func TestQueueDepths(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "a"})
		enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "b"})
		c := enqueue(t, s, &Message{FromTeam: "cli", ToTeam: "api", Text: "c"})
		enqueue(t, s, &Message{FromTeam: "cli", ToTeam: "db", Text: "d"})
		if _, err := s.FinishMessage(ctx, c.ID, MessageAnswered, "ok", "", time.Now(), 0); err != nil {
			t.Fatal(err)
		}
		got, err := s.QueueDepths(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[Pair]int64{{From: "web", To: "api"}: 2, {From: "cli", To: "db"}: 1}
		if len(got) != len(want) {
			t.Fatalf("QueueDepths = %v, want %v", got, want)
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("QueueDepths[%v] = %d, want %d (all: %v)", k, got[k], n, got)
			}
		}
	})
}

func TestRecentPermissionDecisions(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		var ids []uint64
		for i := range 4 {
			p := &PermissionRequest{MessageID: 1, SessionID: "s", FromTeam: "web", ToTeam: "api", RequestID: fmt.Sprint(i), Tool: "Write", Mode: PermissionAsk}
			mustDo(t, s.CreatePermissionRequest(ctx, p))
			ids = append(ids, p.ID)
		}
		for _, id := range []uint64{ids[0], ids[2], ids[3]} {
			if _, err := s.DecidePermission(ctx, id, id != ids[2], "user", ""); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.RecentPermissionDecisions(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != ids[3] || got[1].ID != ids[2] || got[1].Status != PermissionDenied || got[1].DecidedBy != "user" {
			t.Errorf("RecentPermissionDecisions(2) = %+v; want requests %d (allowed) and %d (denied by user)", got, ids[3], ids[2])
		}
	})
}
