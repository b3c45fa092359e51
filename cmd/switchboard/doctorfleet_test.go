package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/pgtest"
	"github.com/switchboard-mcp/switchboard/models"
)

// useDSN points w's config at dsn, as this machine's broker "laptop";
// its leaseTTL is long, so a broker the test registered stays alive however
// slowly doctor runs.
func (w *world) useDSN(t *testing.T, dsn string) {
	t.Helper()
	cfg, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^  database: \{ (path|dsn): .*\}$`)
	if !re.Match(cfg) {
		t.Fatalf("no database line in the world's config:\n%s", cfg)
	}
	repl := "  database: { dsn: \"" + dsn + "\" }"
	if !strings.Contains(string(cfg), "  fleet:") {
		repl += "\n  fleet: { name: laptop, leaseTTL: 10m }"
	}
	mustWrite(t, w.config, re.ReplaceAllLiteralString(string(cfg), repl), 0o600)
}

// doctor, with a Postgres store, checks the database and lists the brokers
// sharing it: a dead one holding pairs and a team no live broker runs are
// warnings; the dsn's password (from the environment) never shows.
func TestDoctorFleet(t *testing.T) {
	t.Parallel() // its own world and database
	dsn := pgtest.DSN(t)
	const pw = "doctor-s3cret"
	w := newWorld(t, "web")
	w.env = append(w.env, "SB_DOCTOR_PW="+pw)
	w.useDSN(t, dsn+"&password=${SB_DOCTOR_PW}")

	ctx := context.Background()
	store, err := models.Open(ctx, models.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	ttl := 15 * time.Second
	mustDo := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustDo(store.RegisterBroker(ctx, models.BrokerRecord{Name: "desk", Host: "desk.lan", PID: 200, Teams: `["db"]`}, now, ttl))
	// gone died an hour ago: one lease of it has expired, one (taken
	// with a long ttl) still blocks its pair.
	then := now.Add(-time.Hour)
	mustDo(store.RegisterBroker(ctx, models.BrokerRecord{Name: "gone", Host: "gone.lan", PID: 300, Teams: `["ghost","db"]`}, then, ttl))
	for _, l := range []struct {
		p   models.Pair
		ttl time.Duration
	}{{models.Pair{From: "web", To: "api"}, ttl}, {models.Pair{From: "api", To: "web"}, 2 * time.Hour}} {
		if _, held, err := store.AcquireLease(ctx, l.p, "gone", then, l.ttl); err != nil || !held {
			t.Fatalf("AcquireLease = %v, %v", held, err)
		}
	}

	r := w.run("", "doctor")
	if r.code != 0 {
		t.Errorf("doctor with warnings only: exit %d, want 0\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	has := func(pattern string) {
		t.Helper()
		if !regexp.MustCompile(`(?m)^` + pattern).MatchString(r.stdout) {
			t.Errorf("doctor output has no line matching %q:\n%s", pattern, r.stdout)
		}
	}
	has(`\*\s+database\s+ok: postgres:///t\S+password=xxxxx\S*: reachable, schema current, round trip \S+\s+-$`)
	has(`\*\s+broker desk\s+ok: host desk\.lan, pid 200, teams db; heartbeat \d+s ago; alive\s+-$`)
	has(`\*\s+broker gone\s+WARN: host gone\.lan, pid 300, teams ghost, db; heartbeat 1h0m\d+s ago; dead; ` +
		`holds 2 pairs: api->web \(lease expires in 59m\d+s\), web->api \(lease expired\)\s+start gone again on gone\.lan`)
	has(`ghost\s+fleet\s+WARN: no live broker runs it \(listed by gone, not alive\)`)
	if regexp.MustCompile(`(?m)^db\s+fleet`).MatchString(r.stdout) {
		t.Errorf("doctor warns about team db, which desk (alive) runs:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, pw) {
		t.Errorf("doctor shows the dsn's password:\n%s\n%s", r.stdout, r.stderr)
	}

	// An unreachable database fails the check, still without the password.
	w.useDSN(t, "postgres:///nodb?host=/nonexistent-sb-doctor&connect_timeout=5&password=${SB_DOCTOR_PW}")
	r = w.run("", "doctor")
	if r.code != 1 {
		t.Errorf("doctor with an unreachable database: exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	has(`\*\s+database\s+FAIL: open the session store: .*nonexistent-sb-doctor.*\s+check that the server at settings\.database\.dsn runs`)
	if strings.Contains(r.stdout+r.stderr, pw) {
		t.Errorf("doctor shows the dsn's password:\n%s\n%s", r.stdout, r.stderr)
	}
}
