package remote

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-mcp/switchboard/proc"
)

// testFiles checks proc.Files against a host whose login directory is home.
func testFiles(t *testing.T, files proc.Files, home string) {
	t.Helper()
	ctx := t.Context()
	got, err := files.Home(ctx)
	if err != nil || got != home {
		t.Fatalf("Home = %q, %v; want %q", got, err, home)
	}
	dir := filepath.Join(home, ".claude", "projects", "-srv-api")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	content := []byte(`{"type":"user"}` + "\n")
	abs := filepath.Join(dir, "s.jsonl")
	if err := os.WriteFile(abs, content, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{abs, "~/.claude/projects/-srv-api/s.jsonl"} {
		fi, err := files.Stat(ctx, p)
		if err != nil || fi.Size() != int64(len(content)) || fi.IsDir() {
			t.Errorf("Stat(%s) = %v, %v", p, fi, err)
		}
		b, err := files.ReadFile(ctx, p)
		if err != nil || string(b) != string(content) {
			t.Errorf("ReadFile(%s) = %q, %v", p, b, err)
		}
	}
	if err := files.Remove(ctx, "~/.claude/projects/-srv-api/s.jsonl"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file still there after Remove: %v", err)
	}
	if _, err := files.Stat(ctx, abs); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of removed file = %v, want fs.ErrNotExist", err)
	}
	if _, err := files.ReadFile(ctx, abs); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of removed file = %v, want fs.ErrNotExist", err)
	}
	if err := files.Remove(ctx, abs); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove of removed file = %v, want fs.ErrNotExist", err)
	}
}

func TestFilesOverSFTP(t *testing.T) {
	srv := newTestServer(t)
	pool := newTestPool(t)
	testFiles(t, pool.Runner(srv.target(t)).Files(), srv.home)
	if pool.Dials() != 1 {
		t.Errorf("dials = %d, want 1", pool.Dials())
	}
}

func TestFilesAfterReconnect(t *testing.T) {
	srv := newTestServer(t)
	r := newTestPool(t).Runner(srv.target(t))
	if _, err := r.Files().Home(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.dropConns()
	// Whether or not the pool has noticed yet, the next call must work.
	if _, err := r.Files().Stat(t.Context(), "~"); err != nil {
		t.Fatal(err)
	}
	if r.pool.Dials() != 2 {
		t.Errorf("dials = %d, want 2", r.pool.Dials())
	}
}
