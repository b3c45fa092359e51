package main

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/pgtest"
)

// fleetResult is what the fleet phase measured: one interleaved run of
// three arms, shown as two comparisons.
type fleetResult struct {
	sqlite, pgSame, pgCross *arm
	// own is each arm's time outside Claude's turn (latency less the turn
	// as the delivering broker timed it): the store's and the brokers'
	// share, without the noise of Claude's own time.
	own       map[*arm]samples
	pgVersion string
}

// fleet measures issue 16's two costs, all arms interleaved in one run: a
// warm ask through the Postgres store beside the same ask through the
// SQLite store, and a cross-broker ask (broker A stores the message, broker
// B, which runs the team, delivers it, and A hears the answer through
// LISTEN/NOTIFY) beside a same-broker ask on the same Postgres. Every team
// is local and every Claude process warm, so the differences are the
// store's and the fleet's.
//
// It starts its own PostgreSQL cluster (internal/pgtest) and its own
// in-process brokers, so it runs alone: go run ./internal/bench -only fleet.
func (r *report) fleet(ctx context.Context, w *world) error {
	bin, err := pgtest.BinDir()
	if err != nil {
		return err
	}
	cluster, err := pgtest.Start(bin)
	if err != nil {
		return err
	}
	defer cluster.Stop()
	dsn := cluster.URL("postgres")

	sqlCfg, err := w.config("fleet-sqlite", []teamSpec{{name: "fbench"}, {name: "fsqlite"}})
	if err != nil {
		return err
	}
	aCfg, err := w.fleetConfig("fleet-a", dsn, []teamSpec{{name: "fbench"}, {name: "fsame"}})
	if err != nil {
		return err
	}
	bCfg, err := w.fleetConfig("fleet-b", dsn, []teamSpec{{name: "fother"}})
	if err != nil {
		return err
	}
	sq, err := w.startInproc(ctx, sqlCfg, "")
	if err != nil {
		return err
	}
	defer sq.Close()
	a, err := w.startInproc(ctx, aCfg, "")
	if err != nil {
		return fmt.Errorf("broker fleet-a: %w", err)
	}
	defer a.Close()
	b, err := w.startInproc(ctx, bCfg, "")
	if err != nil {
		return fmt.Errorf("broker fleet-b: %w", err)
	}
	defer b.Close()
	res := &fleetResult{
		sqlite: &arm{name: "SQLite store, same broker",
			path: "broker.Send → SQLite queue → local runner → claude"},
		pgSame: &arm{name: "Postgres store, same broker",
			path: "broker A.Send → Postgres queue → A's worker (lease held) → local runner → claude"},
		pgCross: &arm{name: "Postgres store, cross-broker",
			path: "broker A.Send → Postgres queue → NOTIFY → broker B's worker → local runner → claude → B finishes → NOTIFY → A's waiter"},
		own: map[*arm]samples{},
	}
	// ask makes x ask team to of broker p, keeping the time outside
	// Claude's turn of every timed sample (warm-ups have i < 0).
	ask := func(x *arm, p *inproc, to string) {
		x.do = func(ctx context.Context, i int) error {
			t0 := time.Now()
			turn, err := p.ask(ctx, "fbench", to, question(x.name, i))
			if err == nil && i >= 0 {
				res.own[x] = append(res.own[x], time.Since(t0)-turn)
			}
			return err
		}
	}
	ask(res.sqlite, sq, "fsqlite")
	ask(res.pgSame, a, "fsame")
	ask(res.pgCross, a, "fother")
	arms := []*arm{res.sqlite, res.pgSame, res.pgCross}
	for _, x := range arms {
		if err := warmup(ctx, x, 3); err != nil {
			return err
		}
	}
	interleave(ctx, r.limits.warm, arms)
	_ = a.store.DB().WithContext(ctx).Raw("SHOW server_version").Scan(&res.pgVersion).Error // only for the report
	r.fleetRes = *res
	return nil
}

var databaseLine = regexp.MustCompile(`(?m)^  database: \{ path: [^}]*\}$`)

// fleetConfig is config with the store on dsn and the broker named after
// the config.
func (w *world) fleetConfig(name, dsn string, teams []teamSpec) (string, error) {
	path, err := w.config(name, teams)
	if err != nil {
		return "", err
	}
	y, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if !databaseLine.Match(y) {
		return "", fmt.Errorf("fleet config %s: no database line to replace", name)
	}
	repl := fmt.Sprintf("  database: { dsn: %q }\n  fleet: { name: %s, leaseTTL: 15s }", dsn, name)
	return path, os.WriteFile(path, []byte(databaseLine.ReplaceAllLiteralString(string(y), repl)), 0o600)
}

// writeFleet renders the fleet section.
func (r *report) writeFleet(b *strings.Builder) {
	f := r.fleetRes
	if f.sqlite == nil {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## 5. Several brokers on one Postgres (issue 16)\n\n")
	p("Warm asks between local teams, through brokers in process, three arms interleaved in one run: a broker on its own ")
	p("SQLite store; broker A on a PostgreSQL %s server shared with broker B, asking a team A runs itself; and A asking a ", orUnknown(f.pgVersion))
	p("team only B runs, which B delivers (it holds the pair's lease) and whose answer A learns through LISTEN/NOTIFY. ")
	p("The server is the tests' throw-away cluster (internal/pgtest): Debian's postgres on a Unix socket on this machine, ")
	p("trust authentication, fsync, synchronous_commit and full_page_writes off (SQLite here runs WAL with ")
	p("synchronous=NORMAL, which does not sync on commit either). So the figures are the cost of the store's statements and ")
	p("round trips with no network and no disk sync; a database on another machine adds its network round trip to each ")
	p("statement of the ask.\n\n")
	comparisonTable(b, "Warm ask: Postgres store beside SQLite store", []*arm{f.sqlite, f.pgSame})
	comparisonTable(b, "Warm ask: cross-broker beside same-broker (both on Postgres)", []*arm{f.pgSame, f.pgCross})
	p("**Time outside Claude's turn** (the ask's latency less Claude's turn as the delivering broker timed it: queue, store, ")
	p("workers, notes and the runner's pipes, without the spread of Claude's own time)\n\n")
	p("| | median (p10–p90, n) | ratio to SQLite | ratio to same-broker |\n|---|---|---|---|\n")
	for _, x := range []*arm{f.sqlite, f.pgSame, f.pgCross} {
		p("| %s | %s | %s | %s |\n", x.name, f.own[x].summary(), ratio(f.own[x], f.own[f.sqlite]), ratio(f.own[x], f.own[f.pgSame]))
	}
	p("\n")
	p("Run alone with `make bench-fleet` (`go run ./internal/bench -only fleet`).\n\n")
}

func orUnknown(s string) string {
	if s == "" {
		return "(version unknown)"
	}
	return s
}
