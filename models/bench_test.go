package models

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// benchSizes are the session counts the benchmarks run at, so that cost
// growth with the table size shows.
var benchSizes = []int{10_000, 100_000}

// seedTeams is how many from-teams the seeded messages spread over.
const seedTeams = 500

// sessionTeams is how many from-teams the seeded sessions spread over; each
// team then has size/sessionTeams sessions: 100 at the smallest size, so
// that a list of one team's sessions returns as many rows (its limit) at
// every size, and its growth is the table's, not the answer's.
const sessionTeams = 100

// seededStore opens a store in b.TempDir() holding n sessions, written in
// one transaction. Session i is pair (f<i%sessionTeams>, t<i/sessionTeams>), was
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
			FromTeam:     fmt.Sprintf("f%d", i%sessionTeams),
			ToTeam:       fmt.Sprintf("t%d", i/sessionTeams),
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
				_, created, err := s.GetOrCreateSession(ctx, fmt.Sprintf("f%d", k%sessionTeams), fmt.Sprintf("t%d", k/sessionTeams))
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
			// Every list returns the same number of rows at every size, so
			// that its growth is the table's alone.
			filters := []struct {
				name string
				f    SessionFilter
				rows int
			}{
				{"recent", SessionFilter{Limit: 50}, 50},
				{"team", SessionFilter{Team: "f7", Limit: 50}, 50},
				{"to", SessionFilter{ToTeam: "t3", Limit: 50}, 50},
				{"status", SessionFilter{Status: SessionError, Limit: 50}, 50},
				{"since-1h", SessionFilter{Since: lastUsed.Add(-time.Hour), Limit: 50}, 50},
				{"team-since-1h", SessionFilter{Team: "f7", Since: lastUsed.Add(-time.Hour), Limit: 50}, 3600 / sessionTeams},
			}
			for _, tt := range filters {
				b.Run(tt.name, func(b *testing.B) {
					for b.Loop() {
						got, err := s.ListSessions(ctx, tt.f)
						if err != nil || len(got) != tt.rows {
							b.Fatalf("ListSessions(%+v) = %d sessions, %v; want %d", tt.f, len(got), err, tt.rows)
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

// turn is a warm ask's turn in the store, as the broker's worker writes it:
// BeginTurn, EndTurn and CompleteMessage of message id in sessionID.
func turn(ctx context.Context, s *Store, id uint64, sessionID string) error {
	if err := s.BeginTurn(ctx, id, sessionID, time.Now()); err != nil {
		return err
	}
	if _, err := s.EndTurn(ctx, sessionID, time.Now()); err != nil {
		return err
	}
	_, _, err := s.CompleteMessage(ctx, id, MessageAnswered, "JWT", "", time.Now(), time.Second)
	return err
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
		if err := turn(ctx, s, next.ID, sess.SessionID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTurnTransaction is BeginTurn's transaction (the message
// running, the session busy) two ways, interleaved in one loop so that a
// busy machine slows both alike: through database/sql's Tx as GORM begins
// it (the baseline, as the committer did), and as the committer runs it
// now, BEGIN IMMEDIATE and COMMIT on the writer connection. It reports the
// median time of each arm per transaction.
func BenchmarkTurnTransaction(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	sess, _, err := s.GetOrCreateSession(ctx, "web", "api")
	if err != nil {
		b.Fatal(err)
	}
	body := func(id uint64) func(tx *gorm.DB) error {
		return func(tx *gorm.DB) error {
			st := &Store{db: tx}
			at := utc(time.Now())
			ok, err := st.updateUnfinished(ctx, id, map[string]any{"status": MessageRunning, "session_id": sess.SessionID, "delivered_at": at, "attempts": gorm.Expr("attempts + 1")})
			if err == nil && !ok {
				err = ErrFinished
			}
			if err != nil {
				return err
			}
			return st.updateSession(ctx, "mark busy", sess.SessionID, map[string]any{"process_state": ProcessBusy, "last_used_at": at})
		}
	}
	arms := []struct {
		name string
		run  func(fn func(tx *gorm.DB) error) error
	}{
		{"sqltx", func(fn func(tx *gorm.DB) error) error { return s.db.WithContext(ctx).Transaction(fn) }},
		{"conn", func(fn func(tx *gorm.DB) error) error { return s.wq.transaction(ctx, fn) }},
	}
	took := make([][]time.Duration, len(arms))
	for i := 0; b.Loop(); i++ {
		for k := range arms {
			j := (i + k) % len(arms) // alternate which arm goes first
			m := &Message{FromTeam: "web", ToTeam: "api", Text: "how does auth work?"}
			if err := s.EnqueueMessage(ctx, m); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if err := arms[j].run(body(m.ID)); err != nil {
				b.Fatal(err)
			}
			took[j] = append(took[j], time.Since(t0))
			if _, _, err := s.CompleteMessage(ctx, m.ID, MessageAnswered, "JWT", "", time.Now(), time.Second); err != nil {
				b.Fatal(err)
			}
		}
	}
	for j, a := range arms {
		slices.Sort(took[j])
		b.ReportMetric(float64(took[j][len(took[j])/2].Microseconds()), a.name+"-p50-µs")
	}
}

// BenchmarkSQLiteHeapPin is a warm ask's store statements (enqueue,
// QueueHead, BeginTurn, EndTurn, CompleteMessage) with SQLite's heap pinned
// (pinSQLiteHeap, as Open leaves it) and, interleaved in the same loop,
// unpinned, as before: every size class's page went back to the OS when a
// statement freed its last block. It reports the median per arm of the
// QueueHead alone and of the whole sequence.
func BenchmarkSQLiteHeapPin(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	b.Cleanup(pinSQLiteHeap)
	sess, _, err := s.GetOrCreateSession(ctx, "web", "api")
	if err != nil {
		b.Fatal(err)
	}
	arms := []struct {
		name string
		set  func()
	}{{"pinned", pinSQLiteHeap}, {"unpinned", unpinSQLiteHeap}}
	head := make([][]time.Duration, len(arms))
	all := make([][]time.Duration, len(arms))
	for i := 0; b.Loop(); i++ {
		for k := range arms {
			j := (i + k) % len(arms) // alternate which arm goes first
			arms[j].set()
			t0 := time.Now()
			m := &Message{FromTeam: "web", ToTeam: "api", Text: "how does auth work?"}
			if err := s.EnqueueMessage(ctx, m); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			next, _, err := s.QueueHead(ctx, "web", "api")
			if err != nil {
				b.Fatal(err)
			}
			head[j] = append(head[j], time.Since(t1))
			if err := turn(ctx, s, next.ID, sess.SessionID); err != nil {
				b.Fatal(err)
			}
			all[j] = append(all[j], time.Since(t0))
		}
	}
	for j, a := range arms {
		slices.Sort(head[j])
		slices.Sort(all[j])
		b.ReportMetric(float64(head[j][len(head[j])/2].Microseconds()), a.name+"-queuehead-p50-µs")
		b.ReportMetric(float64(all[j][len(all[j])/2].Microseconds()), a.name+"-ask-p50-µs")
	}
}

// messageSizes are the message counts the message benchmarks run at: a
// store a year of asks has filled, and ten times that.
var messageSizes = []int{100_000, 1_000_000}

// seedMessages writes n final messages into s in one statement: message i
// is from f<i%seedTeams> to t<i%20>, created i seconds after a fixed base,
// answered, one in a hundred failed; then it analyses the table.
func seedMessages(b testing.TB, s *Store, n int) {
	b.Helper()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	db := s.DB().Session(&gorm.Session{Logger: logger.Discard})
	// Building the indexes after the rows, by sorting, is many times faster
	// than updating them row by row; migrate builds them again.
	var indexes []string
	if err := db.Raw("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' AND sql IS NOT NULL").Scan(&indexes).Error; err != nil {
		b.Fatal(err)
	}
	for _, name := range indexes {
		if err := db.Exec("DROP INDEX " + name).Error; err != nil {
			b.Fatal(err)
		}
	}
	err := db.Exec(`
		WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < ?)
		INSERT INTO messages (from_team, to_team, session_id, text, status, answer, error, attempts,
			async, created_at, updated_at, not_before, expires_at, delivered_at, finished_at, duration_ms, nonce)
		SELECT 'f' || (i % ?), 't' || (i % 20), 's' || (i % ?), 'how does auth work? #' || i,
			CASE WHEN i % 100 = 0 THEN 'failed' ELSE 'answered' END, 'JWT, see auth/jwt.go', '', 1,
			false, datetime(?, '+' || i || ' seconds'), datetime(?, '+' || i || ' seconds'), ?, ?,
			datetime(?, '+' || i || ' seconds'), datetime(?, '+' || i || ' seconds'), 40, 'n' || i
		FROM seq`, n, seedTeams, seedTeams, base, base, base, time.Time{}, base, base).Error
	if err != nil {
		b.Fatalf("seed %d messages: %v", n, err)
	}
	if err := s.migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	// The rows went in final, which no broker write does: count them.
	if err := recountTotals(db); err != nil {
		b.Fatal(err)
	}
	// Statistics for the planner, and the seed's write-ahead log folded
	// into the database file, as a long-lived store has them: otherwise the
	// first timed write pays for copying a year of messages.
	for _, q := range []string{"ANALYZE", "PRAGMA wal_checkpoint(TRUNCATE)"} {
		if err := s.DB().Exec(q).Error; err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
}

// seedTemplates holds one seeded database file per message count, made
// once per test binary, so that -count 3 seeds a million messages once and
// each run copies the file.
var seedTemplates struct {
	sync.Mutex
	dir   string
	files map[int]string
}

// messagesStore opens a store in b.TempDir() holding what seedMessages(n)
// writes.
func messagesStore(b *testing.B, n int) *Store {
	b.Helper()
	seedTemplates.Lock()
	defer seedTemplates.Unlock()
	src, ok := seedTemplates.files[n]
	if !ok {
		if seedTemplates.dir == "" {
			dir, err := os.MkdirTemp("", "switchboard-bench-")
			if err != nil {
				b.Fatal(err)
			}
			seedTemplates.dir, seedTemplates.files = dir, map[int]string{}
		}
		src = filepath.Join(seedTemplates.dir, fmt.Sprintf("messages-%d.db", n))
		s, err := Open(context.Background(), Options{Path: src})
		if err != nil {
			b.Fatal(err)
		}
		seedMessages(b, s, n)
		// Closing the last connection folds the log into the file and
		// removes it: the file alone is the database.
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		seedTemplates.files[n] = src
	}
	dst := filepath.Join(b.TempDir(), "switchboard.db")
	data, err := os.ReadFile(src)
	if err == nil {
		err = os.WriteFile(dst, data, 0o600)
	}
	if err != nil {
		b.Fatalf("copy seeded store: %v", err)
	}
	return openWith(b, Options{Path: dst, SkipQuickCheck: true})
}

// removeSeedTemplates deletes what messagesStore made; TestMain calls it.
func removeSeedTemplates() {
	if seedTemplates.dir != "" {
		os.RemoveAll(seedTemplates.dir)
	}
}

// BenchmarkMessages runs the message operations of the broker, the CLI and
// the dashboard on stores holding 100k and 1M answered messages, so that
// cost growth with the history shows.
func BenchmarkMessages(b *testing.B) {
	ctx := context.Background()
	for _, n := range messageSizes {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			s := messagesStore(b, n)
			sess, _, err := s.GetOrCreateSession(ctx, "f7", "t7")
			if err != nil {
				b.Fatal(err)
			}
			ops := []struct {
				name string
				op   func(i int) error
			}{
				{"WarmAskStatements", func(int) error {
					m := &Message{FromTeam: "f7", ToTeam: "t7", Text: "how does auth work?"}
					if err := s.EnqueueMessage(ctx, m); err != nil {
						return err
					}
					next, _, err := s.QueueHead(ctx, "f7", "t7")
					if err != nil {
						return err
					}
					return turn(ctx, s, next.ID, sess.SessionID)
				}},
				{"MessageByID", func(i int) error {
					_, err := s.MessageByID(ctx, uint64(1+(i*7919)%n))
					return err
				}},
				{"ListMessages pair", func(int) error {
					_, err := s.ListMessages(ctx, MessageFilter{FromTeam: "f7", ToTeam: "t7", Limit: 10})
					return err
				}},
				{"RecentMessages", func(int) error {
					_, err := s.RecentMessages(ctx, RecentFilter{})
					return err
				}},
				{"RecentMessages team", func(int) error {
					_, err := s.RecentMessages(ctx, RecentFilter{Team: "t7"})
					return err
				}},
				{"QueueDepths", func(int) error {
					_, err := s.QueueDepths(ctx)
					return err
				}},
				{"PendingPairs", func(int) error {
					_, err := s.PendingPairs(ctx, time.Now())
					return err
				}},
				{"MessageCounts team", func(int) error {
					_, err := s.MessageCounts(ctx, "t7")
					return err
				}},
			}
			for _, tt := range ops {
				b.Run(tt.name, func(b *testing.B) {
					i := 0
					for b.Loop() {
						if err := tt.op(i); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
			}
		})
	}
}
