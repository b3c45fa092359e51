package models

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// NoteKind says what happened to a message, for the brokers of a fleet.
type NoteKind string

// Note kinds.
const (
	NoteQueued   NoteKind = "queued"   // a message entered (or re-entered) its pair's queue
	NoteFinished NoteKind = "finished" // a message reached a final status
	NoteResync   NoteKind = "resync"   // the listener reconnected: notes may have been missed; rescan
)

// Note is one change to the queue, heard by every broker of the fleet.
type Note struct {
	Kind      NoteKind
	MessageID uint64
	Pair      Pair
}

// notifyChannel is the Postgres NOTIFY channel of the queue's notes.
const notifyChannel = "switchboard"

// listenAppName is the application_name of the listener's connection, so
// an operator (or a test) can find it in pg_stat_activity.
const listenAppName = "switchboard-listen"

// Listener reconnection backoff: the first retry is quick (a restarted
// server or a cut connection), then doubles up to the cap, so a server
// that is down costs a connection attempt every few seconds, no more.
const (
	listenMinBackoff = 50 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
)

// notifyDDL makes Postgres send the notes itself: a trigger on messages
// calls pg_notify in the transaction of the change, so a note is delivered
// exactly when the change commits (never for a rolled-back one), costs no
// extra round trip, and no write path can forget it. Payload:
// {"k":"queued","id":12,"f":"web","t":"api"}; NOTIFY caps payloads at 8000
// bytes, so an oversized one drops the team names and Listen reads them.
//
// A note is sent when a message is inserted (queued); when it becomes final
// (finished); and when it goes back to the queue or its next attempt is
// moved (queued: RetryMessage, PostponeMessage, which change not_before).
// Taking a message for delivery (queued -> running) sends nothing.
var notifyDDL = []string{
	`CREATE OR REPLACE FUNCTION switchboard_notify() RETURNS trigger LANGUAGE plpgsql AS $$` + notifyBody + `$$`,
	`CREATE OR REPLACE TRIGGER switchboard_notify AFTER INSERT OR UPDATE ON messages
	FOR EACH ROW EXECUTE FUNCTION switchboard_notify()`,
}

// notifyCurrent tells whether the trigger is in place with this body, so
// that migrate (which every CLI command's Open runs) leaves it alone: its
// CREATE OR REPLACE TRIGGER would lock messages against every broker's
// writes until the migration commits.
const notifyCurrent = `SELECT EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
	WHERE t.tgname = 'switchboard_notify' AND t.tgrelid = 'messages'::regclass AND p.prosrc = ?)`

const notifyBody = `
DECLARE
	k text;
	p text;
BEGIN
	IF TG_OP = 'INSERT' THEN
		k := 'queued';
	ELSIF NEW.status IN ('answered', 'failed', 'expired') THEN
		IF OLD.status IN ('answered', 'failed', 'expired') THEN
			RETURN NULL;
		END IF;
		k := 'finished';
	ELSIF NEW.status = 'queued' AND OLD.status <> 'queued' THEN
		k := 'queued';
	ELSIF NEW.not_before IS DISTINCT FROM OLD.not_before THEN
		k := 'queued';
	ELSE
		RETURN NULL;
	END IF;
	p := json_build_object('k', k, 'id', NEW.id, 'f', NEW.from_team, 't', NEW.to_team)::text;
	IF octet_length(p) > 7900 THEN
		p := json_build_object('k', k, 'id', NEW.id)::text;
	END IF;
	PERFORM pg_notify('` + notifyChannel + `', p);
	RETURN NULL;
END
`

// Listen delivers the notes of every broker (its own included) until ctx
// ends, then closes the channel. Postgres: one dedicated pgx connection (not
// from GORM's pool) doing LISTEN, established before Listen returns, so
// every change committed after that is heard; after a lost connection it
// reconnects with bounded backoff and sends NoteResync. SQLite: returns a
// channel that only closes with ctx (one process, nothing to hear).
//
// The caller must keep reading: the listener waits for it, and meanwhile
// the server holds the notes.
func (s *Store) Listen(ctx context.Context) (<-chan Note, error) {
	out := make(chan Note, 64)
	if !s.Shared() {
		go func() { <-ctx.Done(); close(out) }()
		return out, nil
	}
	conn, err := s.listenConn(ctx)
	if err != nil {
		return nil, err
	}
	go s.listen(ctx, conn, out)
	return out, nil
}

// listenConn opens the listener's connection and subscribes it.
func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.dsn)
	if err != nil {
		return nil, fmt.Errorf("listen for queue notes: %w", redactErr(err, s.dsn))
	}
	cfg.RuntimeParams["application_name"] = listenAppName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("listen for queue notes on %s: %w", RedactDSN(s.dsn), redactErr(err, s.dsn))
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("listen for queue notes on %s: %w", RedactDSN(s.dsn), redactErr(err, s.dsn))
	}
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}

// listen owns conn and out: it reads notes until ctx ends, reconnecting as
// often as it takes.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn, out chan<- Note) {
	defer close(out)
	send := func(n Note) bool {
		select {
		case out <- n:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			if note, ok := s.parseNote(ctx, n.Payload); ok && !send(note) {
				closeConn(conn)
				return
			}
			continue
		}
		closeConn(conn)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("lost the queue-notes connection to the database; reconnecting", "err", redactErr(err, s.dsn))
		if conn = s.reconnect(ctx); conn == nil {
			return
		}
		s.log.Info("queue-notes connection to the database restored")
		if !send(Note{Kind: NoteResync}) {
			closeConn(conn)
			return
		}
	}
}

// reconnect retries listenConn with backoff until it succeeds (or ctx ends:
// nil).
func (s *Store) reconnect(ctx context.Context) *pgx.Conn {
	wait := listenMinBackoff
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		conn, err := s.listenConn(ctx)
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		s.log.Debug("reconnect the queue-notes connection", "err", err, "retry in", wait)
		wait = min(wait*2, listenMaxBackoff)
	}
}

// parseNote decodes a payload; one the trigger cut to fit NOTIFY's limit
// gets its pair from the message. A payload it cannot read is dropped (a
// newer or foreign sender), as nothing could act on it.
func (s *Store) parseNote(ctx context.Context, payload string) (Note, bool) {
	var p struct {
		K  NoteKind `json:"k"`
		ID uint64   `json:"id"`
		F  string   `json:"f"`
		T  string   `json:"t"`
	}
	if err := json.Unmarshal([]byte(payload), &p); err != nil || p.ID == 0 ||
		(p.K != NoteQueued && p.K != NoteFinished) {
		s.log.Debug("ignore an unreadable queue note", "payload", payload)
		return Note{}, false
	}
	n := Note{Kind: p.K, MessageID: p.ID, Pair: Pair{From: p.F, To: p.T}}
	if n.Pair.From == "" || n.Pair.To == "" {
		m, err := s.MessageByID(ctx, p.ID)
		if err != nil {
			s.log.Warn("read the pair of a queue note", "id", p.ID, "err", err)
			return Note{}, false
		}
		n.Pair = Pair{From: m.FromTeam, To: m.ToTeam}
	}
	return n, true
}

// RedactDSN returns dsn fit to show: its password (in the userinfo or a
// password= parameter) replaced by xxxxx. A dsn that does not parse as a
// URL is not shown at all.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "(the configured dsn)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// dsnSecrets are the strings of dsn that must not appear in a message: the
// dsn itself and its password, as written and decoded.
func dsnSecrets(dsn string) []string {
	out := []string{dsn}
	if u, err := url.Parse(dsn); err == nil {
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw, url.UserPassword("", pw).String()[1:])
		}
		if pw := u.Query().Get("password"); pw != "" {
			out = append(out, pw, url.QueryEscape(pw))
		}
	} else if i := strings.Index(dsn, "://"); i >= 0 {
		// Unparseable: hide everything between the scheme and the host.
		if at := strings.LastIndex(dsn, "@"); at > i {
			out = append(out, dsn[i+3:at])
		}
	}
	return out
}

// redactErr returns err with every secret of dsn removed from its text. The
// result still matches err's chain with errors.Is and errors.As.
func redactErr(err error, dsn string) error {
	if err == nil || dsn == "" {
		return err
	}
	msg := err.Error()
	clean := msg
	for _, s := range dsnSecrets(dsn) {
		if s == "" {
			continue
		}
		r := "xxxxx"
		if s == dsn {
			r = RedactDSN(dsn)
		}
		clean = strings.ReplaceAll(clean, s, r)
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// Unwrap keeps errors.Is working; the wrapped error's own text is not
// shown by anything in switchboard.
func (e *redactedError) Unwrap() error { return e.err }
