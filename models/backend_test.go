package models

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/pgtest"
)

// One PostgreSQL cluster serves every test of the package; each test gets
// its own database.
func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	removeSeedTemplates()
	os.Exit(code)
}

// backend is one database engine the store suite runs against.
type backend struct {
	name string
	// options returns the Options of a new, empty database that lives as
	// long as the test.
	options func(t testing.TB) Options
}

// backends are the engines every store test runs on: SQLite in a file, and
// a real PostgreSQL server (skipped under -short; see pgtest.DSN).
var backends = []backend{
	{"sqlite", func(t testing.TB) Options {
		return Options{Path: filepath.Join(t.TempDir(), "switchboard.db")}
	}},
	{"postgres", func(t testing.TB) Options {
		return Options{DSN: pgtest.DSN(t)}
	}},
}

// openWith opens a store and closes it when the test ends.
func openWith(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open(%+v): %v", opts, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eachBackend runs test once per backend, as a subtest named after it, with
// a newStore that opens a fresh store on that backend.
func eachBackend(t *testing.T, test func(t *testing.T, newStore func(testing.TB) *Store)) {
	forBackends(t, func(t *testing.T, b backend) {
		test(t, func(tb testing.TB) *Store { return openWith(tb, b.options(tb)) })
	})
}

// forBackends runs test once per backend, for tests that open a database
// more than once.
func forBackends(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}
