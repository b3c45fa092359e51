package models

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/switchboard-mcp/switchboard/internal/pgtest"
	"gorm.io/gorm"
)

// A damaged page is refused at open, with the file named and the way out,
// instead of surfacing later as failed writes.
func TestOpenRefusesCorruptFile(t *testing.T) {
	ctx := context.Background()
	const pageSize = 4096
	tests := []struct {
		name string
		// page is the 0-based page to overwrite; -1 means the middle one.
		page int
	}{
		{"header", 0},
		{"table page", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "switchboard.db")
			s, err := Open(ctx, Options{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Repeat("how does auth work? ", 100)
			for range 200 {
				mustDo(t, s.EnqueueMessage(ctx, &Message{FromTeam: "web", ToTeam: "api", Text: text}))
			}
			// Closing the last connection checkpoints the WAL into the file.
			mustDo(t, s.Close())
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			page := tt.page
			if page < 0 {
				page = int(fi.Size()/pageSize) / 2
			}
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, pageSize), int64(page*pageSize)); err != nil {
				t.Fatal(err)
			}
			mustDo(t, f.Close())

			s, err = Open(ctx, Options{Path: path})
			if err == nil {
				s.Close()
				t.Fatalf("Open of a file with page %d overwritten succeeded", page)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Open error is not ErrCorrupt: %v", err)
			}
			for _, want := range []string{path, "backup", "mv " + path + " " + path + ".corrupt", "session files"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open error does not say %q:\n%v", want, err)
				}
			}
		})
	}
}

// fakeSQLiteError stands for the SQLite driver's error, whose fields are
// unexported: it has the same Code method.
type fakeSQLiteError int

func (e fakeSQLiteError) Error() string { return fmt.Sprintf("sqlite error (%d)", int(e)) }
func (e fakeSQLiteError) Code() int     { return int(e) }

// Each engine's way of saying "disk full" is ErrStoreFull to the caller,
// whichever store call hit it, and nothing else is.
func TestStoreFullIsTyped(t *testing.T) {
	faults := []struct {
		name string
		err  error
		full bool
	}{
		{"SQLITE_FULL", fakeSQLiteError(sqliteFull), true},
		{"SQLITE_IOERR_WRITE", fakeSQLiteError(778), false},
		{"postgres disk_full", &pgconn.PgError{Code: pgDiskFull, Message: "could not extend file"}, true},
		{"postgres unique_violation", &pgconn.PgError{Code: "23505"}, false},
		{"ENOSPC", fmt.Errorf("write: %w", syscall.ENOSPC), true},
	}
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		sess, _, err := s.GetOrCreateSession(ctx, "web", "api")
		if err != nil {
			t.Fatal(err)
		}
		m := &Message{FromTeam: "web", ToTeam: "api", Text: "x"}
		mustDo(t, s.EnqueueMessage(ctx, m))

		var inject error
		fail := func(tx *gorm.DB) {
			if inject != nil {
				tx.AddError(inject)
			}
		}
		cb := s.DB().Callback()
		mustDo(t, cb.Create().Before("gorm:create").Register("test:inject", fail))
		mustDo(t, cb.Update().Before("gorm:update").Register("test:inject", fail))
		calls := map[string]func() error{
			"EnqueueMessage": func() error {
				return s.EnqueueMessage(ctx, &Message{FromTeam: "web", ToTeam: "api", Text: "y"})
			},
			"FinishMessage": func() error {
				return second(s.FinishMessage(ctx, m.ID, MessageAnswered, "a", "", m.CreatedAt, 0))
			},
			"IncrementMessageCount": func() error { return second(s.IncrementMessageCount(ctx, sess.SessionID)) },
			"RecordUsage":           func() error { return s.RecordUsage(ctx, sess.SessionID, m.CreatedAt) },
		}
		for _, f := range faults {
			inject = f.err
			for name, call := range calls {
				err := call()
				if err == nil {
					t.Fatalf("%s with %s injected succeeded", name, f.name)
				}
				if got := errors.Is(err, ErrStoreFull); got != f.full {
					t.Errorf("%s with %s: errors.Is(err, ErrStoreFull) = %v, want %v (err: %v)", name, f.name, got, f.full, err)
				}
				if f.full && !strings.Contains(err.Error(), "store is full") {
					t.Errorf("%s with %s: error %q does not say the store is full", name, f.name, err)
				}
			}
		}
		// Space is back: the same writes work.
		inject = nil
		for name, call := range calls {
			if err := call(); err != nil {
				t.Errorf("%s after the fault cleared: %v", name, err)
			}
		}
	})
}

// A real full disk: the SQLite file on a small tmpfs that a filler file
// fills. Writes fail as ErrStoreFull and work again once space returns.
// Needs root to mount; skipped otherwise (TestStoreFullIsTyped covers the
// classification everywhere).
func TestStoreFullOnTmpfs(t *testing.T) {
	ctx := context.Background()
	dir := mountTmpfs(t, "4m")
	s := openWith(t, Options{Path: filepath.Join(dir, "switchboard.db")})
	mustDo(t, s.EnqueueMessage(ctx, &Message{FromTeam: "web", ToTeam: "api", Text: "before"}))
	filler := fill(t, dir)

	big := strings.Repeat("x", 256<<10)
	err := s.EnqueueMessage(ctx, &Message{FromTeam: "web", ToTeam: "api", Text: big})
	if !errors.Is(err, ErrStoreFull) {
		t.Fatalf("EnqueueMessage on a full disk: %v, want ErrStoreFull", err)
	}
	mustDo(t, os.Remove(filler))
	if err := s.EnqueueMessage(ctx, &Message{FromTeam: "web", ToTeam: "api", Text: big}); err != nil {
		t.Fatalf("EnqueueMessage once space returned: %v", err)
	}
	counts, err := s.MessageCounts(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	if counts[MessageQueued] != 2 {
		t.Errorf("queued messages = %d, want 2 (the failed write left nothing)", counts[MessageQueued])
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted when
// the test ends, or skips the test when it cannot (not root, no privilege).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir, err := os.MkdirTemp("", "storefull-")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		os.Remove(dir)
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			return
		}
		os.Remove(dir)
	})
	return dir
}

// fill writes a file into dir until its file system is full, and returns
// the file's path; removing it gives the space back.
func fill(t *testing.T, dir string) string {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			return filler
		}
	}
}

// A real full disk under Postgres: the test database's tables live in a
// tablespace on a small tmpfs (WAL stays on the cluster's disk, as on a
// server whose data volume fills). Postgres answers disk_full (53100), the
// store says ErrStoreFull, and writes work again once space returns.
func TestStoreFullOnPostgresTablespace(t *testing.T) {
	ctx := context.Background()
	dir := mountTmpfs(t, "8m")
	if u, err := user.Lookup("postgres"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		mustDo(t, os.Chown(dir, uid, gid))
	}
	space := fmt.Sprintf("full_%d", time.Now().UnixNano())
	var admin string
	// Registered before the database exists, so it runs after the database
	// is dropped: a tablespace in use cannot be dropped.
	t.Cleanup(func() {
		if admin == "" {
			return
		}
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop tablespace: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP TABLESPACE IF EXISTS "+space); err != nil {
			t.Errorf("drop tablespace: %v", err)
		}
	})
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	admin = u.String()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"CREATE TABLESPACE " + space + " LOCATION '" + dir + "'",
		"ALTER DATABASE " + db + " SET default_tablespace = " + space,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			conn.Close(ctx)
			t.Fatalf("%s: %v", sql, err)
		}
	}
	conn.Close(ctx)

	s := openWith(t, Options{DSN: dsn})
	mustDo(t, s.EnqueueMessage(ctx, &Message{FromTeam: "web", ToTeam: "api", Text: "before"}))
	filler := fill(t, dir)

	// Incompressible, so TOAST must write it all.
	raw := make([]byte, 512<<10)
	rand.Read(raw)
	big := hex.EncodeToString(raw)
	err = s.EnqueueMessage(ctx, &Message{FromTeam: "web", ToTeam: "api", Text: big})
	if !errors.Is(err, ErrStoreFull) {
		t.Fatalf("EnqueueMessage on a full tablespace: %v, want ErrStoreFull", err)
	}
	mustDo(t, os.Remove(filler))
	if err := s.EnqueueMessage(ctx, &Message{FromTeam: "web", ToTeam: "api", Text: big}); err != nil {
		t.Fatalf("EnqueueMessage once space returned: %v", err)
	}
	counts, err := s.MessageCounts(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	if counts[MessageQueued] != 2 {
		t.Errorf("queued messages = %d, want 2 (the failed write left nothing)", counts[MessageQueued])
	}
}
