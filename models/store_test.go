package models

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// openAt opens a store at path and closes it when the test ends.
func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Path: path})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newStore opens a fresh SQLite store in a temporary directory.
func newStore(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "switchboard.db"))
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestOpenCreatesPrivateWALDatabase(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state", "switchboard")
	path := filepath.Join(dir, "switchboard.db")
	s := openAt(t, path)

	if got := mode(t, dir); got != 0o700 {
		t.Errorf("database directory mode = %o, want 700", got)
	}
	if got := mode(t, path); got != 0o600 {
		t.Errorf("database file mode = %o, want 600", got)
	}

	pragmas := map[string]string{
		"journal_mode": "wal",
		"busy_timeout": "5000",
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL
	}
	for name, want := range pragmas {
		var got string
		if err := s.DB().Raw("PRAGMA " + name).Scan(&got).Error; err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		if !strings.EqualFold(got, want) {
			t.Errorf("PRAGMA %s = %q, want %q", name, got, want)
		}
	}

	// A write creates the WAL file, which must be as private as the database.
	if _, _, err := s.GetOrCreateSession(ctx, "web", "api"); err != nil {
		t.Fatal(err)
	}
	if got := mode(t, path+"-wal"); got != 0o600 {
		t.Errorf("WAL file mode = %o, want 600", got)
	}
}

func TestOpenTightensExistingFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchboard.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	openAt(t, path)
	if got := mode(t, path); got != 0o600 {
		t.Errorf("database file mode = %o, want 600", got)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	for _, opts := range []Options{
		{},
		{DSN: "mysql://user@localhost/db"},
		{Path: filepath.Join(t.TempDir(), "what?.db")},
	} {
		s, err := Open(context.Background(), opts)
		if err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded, want an error", opts)
		}
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		opts := b.options(t)
		s, err := Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2025, 3, 4, 5, 6, 7, 891011000, time.UTC)

		sess, _, err := s.GetOrCreateSession(ctx, "web", "api")
		if err != nil {
			t.Fatal(err)
		}
		mustDo(t, s.RecordUsage(ctx, sess.SessionID, at))
		mustDo(t, s.RecordResponse(ctx, sess.SessionID, at.Add(time.Second)))
		mustDo(t, s.SetLaunch(ctx, sess.SessionID, "claude -p --resume "+sess.SessionID, `{"path":"/srv/api"}`))
		mustDo(t, s.SetProcessState(ctx, sess.SessionID, ProcessIdle))
		if _, err := s.IncrementMessageCount(ctx, sess.SessionID); err != nil {
			t.Fatal(err)
		}

		answered := &Message{FromTeam: "web", ToTeam: "api", Text: "how does auth work?"}
		queued := &Message{FromTeam: "web", ToTeam: "api", Text: "and sessions?", ExpiresAt: at.Add(time.Hour)}
		mustDo(t, s.EnqueueMessage(ctx, answered))
		mustDo(t, s.EnqueueMessage(ctx, queued))
		mustDo(t, s.MarkDelivering(ctx, answered.ID, sess.SessionID, at))
		if _, err := s.FinishMessage(ctx, answered.ID, MessageAnswered, "JWT in a cookie", "", at, 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}

		wantSess, err := s.SessionByPair(ctx, "web", "api")
		if err != nil {
			t.Fatal(err)
		}
		wantAnswered, _ := s.MessageByID(ctx, answered.ID)
		wantQueued, _ := s.MessageByID(ctx, queued.ID)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s = openWith(t, opts)
		gotSess, err := s.SessionByID(ctx, sess.SessionID)
		if err != nil {
			t.Fatalf("session lost on reopen: %v", err)
		}
		if diff := diffSession(wantSess, gotSess); diff != "" {
			t.Errorf("session changed across reopen: %s", diff)
		}
		if gotSess.LastUsedAt == nil || !gotSess.LastUsedAt.Equal(at) {
			t.Errorf("LastUsedAt = %v, want %v (nanoseconds kept)", gotSess.LastUsedAt, at)
		}
		for _, want := range []*Message{wantAnswered, wantQueued} {
			got, err := s.MessageByID(ctx, want.ID)
			if err != nil {
				t.Fatalf("message %d lost on reopen: %v", want.ID, err)
			}
			if diff := diffMessage(want, got); diff != "" {
				t.Errorf("message %d changed across reopen: %s", want.ID, diff)
			}
		}
		next, err := s.NextMessage(ctx, "web", "api", time.Now())
		if err != nil || next.ID != queued.ID {
			t.Errorf("NextMessage after reopen = %v, %v; want message %d", next, err, queued.ID)
		}
	})
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func timeEq(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// diffSession describes how two sessions differ, ignoring time zones.
func diffSession(a, b *Session) string {
	var d []string
	ca, cb := *a, *b
	if !ca.CreatedAt.Equal(cb.CreatedAt) || !ca.UpdatedAt.Equal(cb.UpdatedAt) ||
		!timeEq(ca.LastUsedAt, cb.LastUsedAt) || !timeEq(ca.LastResponseAt, cb.LastResponseAt) ||
		!timeEq(ca.LastCompactedAt, cb.LastCompactedAt) {
		d = append(d, "times differ")
	}
	ca.CreatedAt, ca.UpdatedAt, ca.LastUsedAt, ca.LastResponseAt, ca.LastCompactedAt = time.Time{}, time.Time{}, nil, nil, nil
	cb.CreatedAt, cb.UpdatedAt, cb.LastUsedAt, cb.LastResponseAt, cb.LastCompactedAt = time.Time{}, time.Time{}, nil, nil, nil
	if ca != cb {
		d = append(d, fmt.Sprintf("%+v != %+v", ca, cb))
	}
	return strings.Join(d, "; ")
}

// diffMessage describes how two messages differ, ignoring time zones.
func diffMessage(a, b *Message) string {
	var d []string
	ca, cb := *a, *b
	if !ca.CreatedAt.Equal(cb.CreatedAt) || !ca.UpdatedAt.Equal(cb.UpdatedAt) ||
		!ca.NotBefore.Equal(cb.NotBefore) || !ca.ExpiresAt.Equal(cb.ExpiresAt) ||
		!timeEq(ca.DeliveredAt, cb.DeliveredAt) || !timeEq(ca.FinishedAt, cb.FinishedAt) {
		d = append(d, "times differ")
	}
	ca.CreatedAt, ca.UpdatedAt, ca.NotBefore, ca.ExpiresAt, ca.DeliveredAt, ca.FinishedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, nil, nil
	cb.CreatedAt, cb.UpdatedAt, cb.NotBefore, cb.ExpiresAt, cb.DeliveredAt, cb.FinishedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, nil, nil
	if ca != cb {
		d = append(d, fmt.Sprintf("%+v != %+v", ca, cb))
	}
	return strings.Join(d, "; ")
}

// Two stores on one file stand in for the daemon and a CLI command writing
// at the same time: busy_timeout (SQLite) must make them wait, not fail.
func TestConcurrentWritersAcrossStores(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		opts := b.options(t)
		stores := []*Store{openWith(t, opts), openWith(t, opts)}

		const goroutines, perGoroutine = 4, 25
		var wg sync.WaitGroup
		errs := make(chan error, len(stores)*goroutines)
		for i, s := range stores {
			for g := range goroutines {
				wg.Go(func() {
					for n := range perGoroutine {
						m := &Message{FromTeam: fmt.Sprintf("t%d", i), ToTeam: "api", Text: fmt.Sprintf("%d-%d", g, n)}
						if err := s.EnqueueMessage(ctx, m); err != nil {
							errs <- err
							return
						}
						if _, err := s.FinishMessage(ctx, m.ID, MessageAnswered, "ok", "", time.Now(), 0); err != nil {
							errs <- err
							return
						}
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent write failed: %v", err)
		}
		counts, err := stores[0].MessageCounts(ctx, "api")
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(len(stores) * goroutines * perGoroutine); counts[MessageAnswered] != want {
			t.Errorf("answered messages = %d, want %d", counts[MessageAnswered], want)
		}
	})
}

func TestNotFound(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		missing := NewSessionID()
		checks := map[string]error{
			"SessionByPair":         second(s.SessionByPair(ctx, "web", "api")),
			"SessionByID":           second(s.SessionByID(ctx, missing)),
			"RecordUsage":           s.RecordUsage(ctx, missing, time.Now()),
			"RecordResponse":        s.RecordResponse(ctx, missing, time.Now()),
			"IncrementMessageCount": second(s.IncrementMessageCount(ctx, missing)),
			"SetProcessState":       s.SetProcessState(ctx, missing, ProcessIdle),
			"SetStatus":             s.SetStatus(ctx, missing, SessionError, "x"),
			"SetLaunch":             s.SetLaunch(ctx, missing, "claude", "{}"),
			"ReplaceSessionID":      second(s.ReplaceSessionID(ctx, "web", "api", NewSessionID())),
			"DeleteSession":         s.DeleteSession(ctx, missing),
			"StartCompaction":       s.StartCompaction(ctx, missing),
			"FinishCompaction":      s.FinishCompaction(ctx, missing, time.Now()),
			"MessageByID":           second(s.MessageByID(ctx, 42)),
			"NextMessage":           second(s.NextMessage(ctx, "web", "api", time.Now())),
			"MarkDelivering":        s.MarkDelivering(ctx, 42, missing, time.Now()),
			"MarkRunning":           s.MarkRunning(ctx, 42),
			"FinishMessage":         second(s.FinishMessage(ctx, 42, MessageFailed, "", "x", time.Now(), 0)),
			"RetryMessage":          s.RetryMessage(ctx, 42, time.Now(), "x"),
		}
		for name, err := range checks {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s on a missing row: err = %v, want ErrNotFound", name, err)
			}
		}
	})
}

func second[T any](_ T, err error) error { return err }

// traceSpy records the statements quietTrace passes on.
type traceSpy struct {
	logger.Interface
	traced []error
}

func (s *traceSpy) Trace(_ context.Context, _ time.Time, fc func() (string, int64), err error) {
	fc()
	s.traced = append(s.traced, err)
}

// Only a failed or slow statement reaches GORM's logger, and the SQL text
// of the others is never rendered.
func TestQuietTracePassesOnlyWhatIsLogged(t *testing.T) {
	spy := &traceSpy{Interface: logger.Discard}
	q := quietTrace{spy}
	rendered := 0
	fc := func() (string, int64) { rendered++; return "SELECT 1", 1 }
	boom := errors.New("disk I/O error")
	q.Trace(context.Background(), time.Now(), fc, nil)                       // fast, fine
	q.Trace(context.Background(), time.Now(), fc, gorm.ErrRecordNotFound)    // not found is no failure
	q.Trace(context.Background(), time.Now(), fc, boom)                      // failed
	q.Trace(context.Background(), time.Now().Add(-2*slowStatement), fc, nil) // slow
	if len(spy.traced) != 2 || spy.traced[0] != boom || spy.traced[1] != nil || rendered != 2 {
		t.Errorf("passed on %v, rendered %d SQL texts; want the failed and the slow statement, 2", spy.traced, rendered)
	}
}
