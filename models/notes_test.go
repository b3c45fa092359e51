package models

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// noteWait bounds how long a test waits for a note that must come; it only
// turns a hang into a failure, nothing is measured.
const noteWait = 30 * time.Second

func nextNote(t *testing.T, notes <-chan Note) Note {
	t.Helper()
	select {
	case n, ok := <-notes:
		if !ok {
			t.Fatal("the notes channel closed, want a note")
		}
		return n
	case <-time.After(noteWait):
		t.Fatalf("no note within %s", noteWait)
	}
	return Note{}
}

func TestListenHearsAnotherStore(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		opts := b.options(t)
		listener, writer := openWith(t, opts), openWith(t, opts)
		if got, want := writer.Shared(), b.name == "postgres"; got != want {
			t.Errorf("Shared() = %v on %s, want %v", got, b.name, want)
		}
		notes, err := listener.Listen(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := Pair{From: "web", To: "api"}
		a := enqueue(t, writer, &Message{FromTeam: "web", ToTeam: "api", Text: "a"})
		sess, _, err := writer.GetOrCreateSession(ctx, "web", "api")
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		// Taking a message for delivery is no change to the queue: no note.
		mustDo(t, writer.BeginTurn(ctx, a.ID, sess.SessionID, now))
		mustDo(t, writer.RetryMessage(ctx, a.ID, now.Add(time.Second), "connection lost"))
		mustDo(t, writer.MarkDelivering(ctx, a.ID, sess.SessionID, now))
		mustDo(t, writer.PostponeMessage(ctx, a.ID, now.Add(2*time.Second), "host down"))
		if _, done, err := writer.CompleteMessage(ctx, a.ID, MessageAnswered, "yes", "", now, time.Second); err != nil || !done {
			t.Fatalf("CompleteMessage = %v, %v", done, err)
		}
		// A repeated finish changes nothing and says nothing.
		if _, err := writer.FinishMessage(ctx, a.ID, MessageFailed, "", "late", now, 0); err != nil {
			t.Fatal(err)
		}
		bm := enqueue(t, writer, &Message{FromTeam: "api", ToTeam: "web", Text: "b"})
		if _, err := writer.FinishMessage(ctx, bm.ID, MessageFailed, "", "refused", now, 0); err != nil {
			t.Fatal(err)
		}
		c := enqueue(t, writer, &Message{FromTeam: "web", ToTeam: "api", Text: "c", ExpiresAt: now.Add(time.Minute)})
		if n, err := writer.ExpireMessages(ctx, now.Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("ExpireMessages = %d, %v; want 1", n, err)
		}

		if b.name == "sqlite" {
			// One process, nothing to hear: the channel stays silent and
			// closes with ctx.
			select {
			case n, ok := <-notes:
				if ok {
					t.Fatalf("SQLite store sent note %+v", n)
				}
				t.Fatal("the notes channel closed before ctx ended")
			default:
			}
			cancel()
			if _, ok := <-notes; ok {
				t.Fatal("the notes channel sent a note after ctx ended, want it closed")
			}
			return
		}
		want := []Note{
			{NoteQueued, a.ID, p},   // enqueue
			{NoteQueued, a.ID, p},   // retry
			{NoteQueued, a.ID, p},   // postpone
			{NoteFinished, a.ID, p}, // complete
			{NoteQueued, bm.ID, Pair{From: "api", To: "web"}},
			{NoteFinished, bm.ID, Pair{From: "api", To: "web"}},
			{NoteQueued, c.ID, p},
			{NoteFinished, c.ID, p}, // expired
		}
		for i, w := range want {
			if got := nextNote(t, notes); got != w {
				t.Errorf("note %d = %+v, want %+v", i, got, w)
			}
		}
		select {
		case n := <-notes:
			t.Errorf("extra note %+v", n)
		default:
		}
		cancel()
		for range notes { // closes once ctx ended
		}
	})
}

func TestListenResyncsAfterLostConnection(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := Options{DSN: backends[1].options(t).DSN}
	listener, writer := openWith(t, opts), openWith(t, opts)
	notes, err := listener.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The server cutting the connection is what a restart or a network
	// failure looks like to the listener.
	var killed []bool
	err = writer.DB().Raw("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ? AND datname = current_database()",
		listenAppName).Scan(&killed).Error
	if err != nil || len(killed) != 1 || !killed[0] {
		t.Fatalf("terminate the listener's backend = %v, %v; want one terminated", killed, err)
	}
	if n := nextNote(t, notes); n.Kind != NoteResync {
		t.Fatalf("after the connection was cut, note = %+v, want resync", n)
	}
	// And it listens again.
	m := enqueue(t, writer, &Message{FromTeam: "web", ToTeam: "api", Text: "after"})
	if n := nextNote(t, notes); n != (Note{NoteQueued, m.ID, Pair{From: "web", To: "api"}}) {
		t.Errorf("after the resync, note = %+v, want queued %d", n, m.ID)
	}
}

func TestOversizedNoteReadsThePair(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := Options{DSN: backends[1].options(t).DSN}
	s := openWith(t, opts)
	notes, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Team names are short in practice; the store does not rely on it.
	long := strings.Repeat("t", 8000)
	m := enqueue(t, s, &Message{FromTeam: long, ToTeam: "api", Text: "x"})
	if n := nextNote(t, notes); n != (Note{NoteQueued, m.ID, Pair{From: long, To: "api"}}) {
		t.Errorf("note = %v %d %d-byte->%s, want queued %d with the long pair", n.Kind, n.MessageID, len(n.Pair.From), n.Pair.To, m.ID)
	}
}

func TestOpenNeverShowsThePassword(t *testing.T) {
	const pw = "s3cret-Pw"
	for _, dsn := range []string{
		"postgres://sb:" + pw + "@127.0.0.1:1/sb?connect_timeout=5&sslmode=disable",
		"postgresql://sb:" + pw + "@127.0.0.1:notaport/sb",
		"postgres://sb@127.0.0.1:1/sb?password=" + pw + "&sslmode=disable",
		"postgres://sb:" + pw + "@[::1/sb",
	} {
		var logged bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
		s, err := Open(context.Background(), Options{DSN: dsn, Logger: log})
		if strings.Contains(logged.String(), pw) {
			t.Errorf("Open logged the password: %s", logged.String())
		}
		if err == nil {
			s.Close()
			t.Fatalf("Open(unreachable server) succeeded")
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("Open error shows the password: %v", err)
		}
		if got := RedactDSN(dsn); strings.Contains(got, pw) {
			t.Errorf("RedactDSN(%q) = %q, shows the password", dsn, got)
		}
	}
}
