package models

import (
	"context"
	"maps"
	"testing"
	"time"
)

// countedByScan is what MessageCounts(team) must return, counted the slow
// way: every message of the team.
func countedByScan(t *testing.T, s *Store, team string) map[MessageStatus]int64 {
	t.Helper()
	q := s.DB().Model(&Message{})
	if team != "" {
		q = q.Where("to_team = ?", team)
	}
	var rows []struct {
		Status string
		N      int64
	}
	if err := q.Select("status, COUNT(*) AS n").Group("status").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[MessageStatus]int64{}
	for _, r := range rows {
		out[MessageStatus(r.Status)] = r.N
	}
	return out
}

// checkCounts compares MessageCounts with a scan, for api and for every team.
func checkCounts(t *testing.T, s *Store, step string) {
	t.Helper()
	for _, team := range []string{"api", ""} {
		got, err := s.MessageCounts(context.Background(), team)
		if err != nil {
			t.Fatalf("%s: MessageCounts(%q): %v", step, team, err)
		}
		if want := countedByScan(t, s, team); !maps.Equal(got, want) {
			t.Errorf("%s: MessageCounts(%q) = %v, want %v (a scan of the messages)", step, team, got, want)
		}
	}
}

// Every way a message moves through the queue keeps MessageCounts equal to
// a count of the messages: finishing once counts once, a second finish or a
// retry does not, on both engines.
func TestMessageCountsFollowEveryTransition(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		now := time.Now()
		a := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "a"})
		b := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "b"})
		enqueue(t, s, &Message{FromTeam: "cli", ToTeam: "api", Text: "c", ExpiresAt: now.Add(-time.Second)})
		d := enqueue(t, s, &Message{FromTeam: "api", ToTeam: "db", Text: "d"})
		sess, _, err := s.GetOrCreateSession(ctx, "web", "api")
		if err != nil {
			t.Fatal(err)
		}
		checkCounts(t, s, "queued")

		steps := []struct {
			name string
			do   func() error
		}{
			{"begin a turn", func() error { return s.BeginTurn(ctx, a.ID, sess.SessionID, now) }},
			{"answer it", func() error {
				_, _, err := s.CompleteMessage(ctx, a.ID, MessageAnswered, "ok", "", now, time.Second)
				return err
			}},
			{"answer it again", func() error {
				_, _, err := s.CompleteMessage(ctx, a.ID, MessageFailed, "", "late", now, time.Second)
				return err
			}},
			{"deliver, then retry", func() error {
				if err := s.MarkDelivering(ctx, b.ID, sess.SessionID, now); err != nil {
					return err
				}
				return s.RetryMessage(ctx, b.ID, now, "lost connection")
			}},
			{"fail it", func() error {
				_, err := s.FinishMessage(ctx, b.ID, MessageFailed, "", "boom", now, 0)
				return err
			}},
			{"expire", func() error {
				_, err := s.ExpireMessages(ctx, now)
				return err
			}},
			{"answer another team's", func() error {
				_, _, err := s.CompleteMessage(ctx, d.ID, MessageAnswered, "ok", "", now, 0)
				return err
			}},
		}
		for _, st := range steps {
			if err := st.do(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			checkCounts(t, s, st.name)
		}
		got, _ := s.MessageCounts(ctx, "api")
		want := map[MessageStatus]int64{MessageAnswered: 1, MessageFailed: 1, MessageExpired: 1}
		if !maps.Equal(got, want) {
			t.Errorf("MessageCounts(api) at the end = %v, want %v", got, want)
		}
	})
}

// A database from before message_totals gets the table, its triggers and
// the totals of the messages it already holds when a broker of this
// version opens it; messages finished after that are counted too.
func TestMigrateBackfillsMessageTotals(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		opts := b.options(t)
		s := openWith(t, opts)
		for i, st := range []MessageStatus{MessageAnswered, MessageAnswered, MessageFailed, MessageQueued} {
			m := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: string(rune('a' + i))})
			if st.Final() {
				if _, err := s.FinishMessage(ctx, m.ID, st, "", "", time.Now(), 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		// What an older version's database looks like.
		for _, q := range append(totalsDrop[s.Shared()], "DROP TABLE message_totals") {
			mustDo(t, s.DB().Exec(q).Error)
		}
		if err := s.CheckSchema(ctx); err == nil {
			t.Error("CheckSchema passed without message_totals")
		}
		mustDo(t, s.Close())

		s = openWith(t, opts)
		if err := s.CheckSchema(ctx); err != nil {
			t.Fatalf("CheckSchema after the migration: %v", err)
		}
		checkCounts(t, s, "after the migration")
		if got, _ := s.MessageCounts(ctx, "api"); got[MessageAnswered] != 2 || got[MessageFailed] != 1 || got[MessageQueued] != 1 {
			t.Errorf("MessageCounts(api) after the migration = %v, want 2 answered, 1 failed, 1 queued", got)
		}
		m := enqueue(t, s, &Message{FromTeam: "web", ToTeam: "api", Text: "e"})
		if _, err := s.FinishMessage(ctx, m.ID, MessageAnswered, "", "", time.Now(), 0); err != nil {
			t.Fatal(err)
		}
		checkCounts(t, s, "a message finished after the migration")
	})
}
