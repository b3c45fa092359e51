package models

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"
)

// listSessionsSQL is the SQL ListSessions runs for f, with its arguments
// inlined.
func listSessionsSQL(s *Store, f SessionFilter) string {
	return s.DB().ToSQL(func(tx *gorm.DB) *gorm.DB {
		st := &Store{db: tx}
		var out []Session
		return st.listSessions(context.Background(), f).Find(&out)
	})
}

// queryPlan returns SQLite's EXPLAIN QUERY PLAN of sql, one step a line.
func queryPlan(t *testing.T, s *Store, sql string) string {
	t.Helper()
	var rows []struct {
		ID, Parent, Notused int
		Detail              string
	}
	if err := s.DB().Raw("EXPLAIN QUERY PLAN " + sql).Scan(&rows).Error; err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", sql, err)
	}
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintln(&b, r.Detail)
	}
	return b.String()
}

// The team+since session list (sessions ls --team --since, team_status)
// must range-scan a (team, recent) index on each side, not read every
// session of the team (13x slower at 100k sessions than at 10k) nor every
// session since Since (what SQLite chose for a plain OR once ANALYZE had
// run on 100k sessions; BenchmarkListSessions/team-since-1h shows it).
// The query is a union of two range scans so that no statistics can pick
// another plan; checked on an empty database (no statistics, as a new
// daemon's) and on a seeded, analysed one.
func TestListSessionsTeamSinceUsesIndexes(t *testing.T) {
	t.Parallel() // seeding thousands of rows takes seconds under -race
	// The last 5% of seedSessions(2000)'s sessions, as "the last hour" is
	// of BenchmarkListSessions's 100k.
	since := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(1900 * time.Second)
	f := SessionFilter{Team: "f7", Since: since, Limit: 50}
	check := func(t *testing.T, s *Store) {
		t.Helper()
		plan := queryPlan(t, s, listSessionsSQL(s, f))
		for _, want := range []string{
			"USING INDEX idx_sessions_from_recent (from_team=? AND <expr>>?)",
			"USING INDEX idx_sessions_to_recent (to_team=? AND <expr>>?)",
		} {
			if !strings.Contains(plan, want) {
				t.Errorf("query plan lacks %q:\n%s", want, plan)
			}
		}
		if strings.Contains(plan, "SCAN sessions") || strings.Contains(plan, "INDEX idx_sessions_recent ") {
			t.Errorf("query plan reads every session (since Since):\n%s", plan)
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
		seedSessions(t, s, 2000)
		check(t, s)
	})

}

// A database made before idx_sessions_to_recent loses the index it
// replaces, so writes do not keep both up to date.
func TestMigrateDropsReplacedIndex(t *testing.T) {
	ctx := context.Background()
	opts := backends[0].options(t)
	s := openWith(t, opts)
	mustDo(t, s.DB().Exec("CREATE INDEX idx_sessions_to_team ON sessions (to_team)").Error)
	mustDo(t, s.Close())
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.DB().Migrator().HasIndex(&Session{}, "idx_sessions_to_team") {
		t.Error("idx_sessions_to_team survived the migration")
	}
	if !s.DB().Migrator().HasIndex(&Session{}, "idx_sessions_to_recent") {
		t.Error("idx_sessions_to_recent missing after the migration")
	}
}

// A capped list of one team's sessions (team_status, sessions ls --team)
// reads the newest rows of each (team, recent) index and sorts only those:
// reading and sorting every session of the team grew 1.97x from 10k to
// 100k sessions. The plan has one sort, the outer one over at most twice
// the cap.
func TestListSessionsTeamReadsNewestOnly(t *testing.T) {
	t.Parallel() // seeding thousands of rows takes seconds under -race
	check := func(t *testing.T, s *Store) {
		t.Helper()
		plan := queryPlan(t, s, listSessionsSQL(s, SessionFilter{Team: "f7", Limit: 50}))
		for _, want := range []string{
			"USING INDEX idx_sessions_from_recent (from_team=?)",
			"USING INDEX idx_sessions_to_recent (to_team=?)",
		} {
			if !strings.Contains(plan, want) {
				t.Errorf("query plan lacks %q:\n%s", want, plan)
			}
		}
		if n := strings.Count(plan, "TEMP B-TREE FOR ORDER BY"); n != 1 || strings.Contains(plan, "SCAN sessions") {
			t.Errorf("query plan sorts %d times (want 1, the outer sort) or reads every session:\n%s", n, plan)
		}
	}
	t.Run("empty", func(t *testing.T) { check(t, newStore(t)) })
	t.Run("seeded", func(t *testing.T) {
		if testing.Short() {
			t.Skip("seeded plan check runs in the full suite")
		}
		s := newStore(t)
		seedSessions(t, s, 2000)
		check(t, s)
	})
}

// The capped team list returns what the uncapped one starts with, on both
// engines: the team on either side and on both, ties in recency broken by
// id, and the other filters applied before the cap.
func TestListSessionsTeamCapSameRows(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		var rows []Session
		for i := range 40 {
			from, to := fmt.Sprintf("a%d", i), "ops"
			switch i % 3 {
			case 0:
				from, to = "ops", fmt.Sprintf("b%d", i)
			case 1:
				if i == 7 {
					from = "ops" // ops asks itself
				}
			}
			used := base.Add(time.Duration(i%9) * time.Minute) // ties on purpose
			status := SessionActive
			if i%4 == 0 {
				status = SessionError
			}
			rows = append(rows, Session{FromTeam: from, ToTeam: to, SessionID: NewSessionID(), Status: status,
				ProcessState: ProcessStopped, CreatedAt: base, UpdatedAt: used, LastUsedAt: &used})
		}
		mustDo(t, s.DB().Create(&rows).Error)
		for _, f := range []SessionFilter{
			{Team: "ops"},
			{Team: "ops", Status: SessionError},
			{Team: "ops", ToTeam: "ops"},
			{Team: "ops", Since: base.Add(4 * time.Minute)},
		} {
			all, err := s.ListSessions(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, limit := range []int{1, 3, 7, 100} {
				f.Limit = limit
				got, err := s.ListSessions(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				want := all[:min(limit, len(all))]
				if len(got) != len(want) {
					t.Fatalf("ListSessions(%+v) = %d rows, want %d", f, len(got), len(want))
				}
				for i := range want {
					if got[i].ID != want[i].ID {
						t.Fatalf("ListSessions(%+v) row %d = session %d, want %d (uncapped order)", f, i, got[i].ID, want[i].ID)
					}
				}
			}
		}
	})
}

// queueHeadSQL is the SQL QueueHead runs for the pair, with its arguments
// inlined.
func queueHeadSQL(s *Store, from, to string) string {
	return s.DB().ToSQL(func(tx *gorm.DB) *gorm.DB {
		st := &Store{db: tx}
		var out []Message
		return st.queueHead(context.Background(), from, to).Find(&out)
	})
}

// A worker reads its pair's queue head before every delivery. Once ANALYZE
// had seen a long history, SQLite walked idx_messages_from_recent in id
// order through every message the asking team ever sent (100 ms an ask at
// 1M messages, BenchmarkMessages) instead of the few unfinished ones. The
// plan must read only the pair's unfinished messages, from the partial
// index idx_messages_unfinished or from idx_messages_pair by status (which
// the planner picks depends on the statistics; either reads a handful of
// rows), on a new database and on one with a long, analysed history.
func TestQueueHeadUsesUnfinishedIndex(t *testing.T) {
	t.Parallel() // seeding thousands of rows takes seconds under -race
	for _, st := range []MessageStatus{MessageQueued, MessageRunning} {
		if !strings.Contains(unfinishedCond, "'"+string(st)+"'") {
			t.Errorf("unfinishedCond %q does not select status %q", unfinishedCond, st)
		}
	}
	check := func(t *testing.T, s *Store) {
		t.Helper()
		plan := queryPlan(t, s, queueHeadSQL(s, "f7", "t7"))
		if !strings.Contains(plan, "INDEX idx_messages_unfinished (to_team=? AND from_team=?)") &&
			!strings.Contains(plan, "INDEX idx_messages_pair (to_team=? AND from_team=? AND status=?)") {
			t.Errorf("query plan reads more than the pair's unfinished messages:\n%s", plan)
		}
	}
	t.Run("empty", func(t *testing.T) { check(t, newStore(t)) })
	t.Run("answered, not analysed", func(t *testing.T) {
		// A daemon's database: nothing runs ANALYZE.
		s := newStore(t)
		ctx := context.Background()
		for i := range 200 {
			m := &Message{FromTeam: "f7", ToTeam: "t7", Text: fmt.Sprint(i)}
			mustDo(t, s.EnqueueMessage(ctx, m))
			_, _, err := s.CompleteMessage(ctx, m.ID, MessageAnswered, "a", "", time.Now(), 0)
			mustDo(t, err)
		}
		check(t, s)
	})
	t.Run("seeded", func(t *testing.T) {
		if testing.Short() {
			t.Skip("seeded plan check runs in the full suite")
		}
		s := newStore(t)
		seedMessages(t, s, 20_000)
		check(t, s)
	})
}
