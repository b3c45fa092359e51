package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/models"
)

// roundTrips is how many trivial queries doctor times for the database's
// latency (it shows the median).
const roundTrips = 5

// checkDatabase checks a shared (Postgres) store: it answers, its schema is
// this version's, and how long a round trip takes. The dsn is shown
// redacted: doctor's output gets pasted into issues.
func checkDatabase(ctx context.Context, cfg *configs.Config, store *models.Store) check {
	where := models.RedactDSN(cfg.Settings.Database.DSN)
	if err := store.CheckSchema(ctx); err != nil {
		return fail("*", "database", where+": "+err.Error(), "start a broker of this version against it (it migrates the schema), or check that nothing else changed it")
	}
	rt, err := store.RoundTrip(ctx, roundTrips)
	if err != nil {
		return fail("*", "database", where+": "+err.Error(), "check that the server at settings.database.dsn runs")
	}
	return pass("*", "database", fmt.Sprintf("%s: reachable, schema current, round trip %s", where, rt.Round(10*time.Microsecond)))
}

// checkFleet lists the brokers sharing the store, warning about a dead one
// that still holds pairs (they wait for its leases to expire) and about a
// team that no live broker runs (its messages wait in the queue).
func checkFleet(ctx context.Context, cfg *configs.Config, store *models.Store, now time.Time) []check {
	ttl := cfg.Settings.Fleet.LeaseTTL.Duration
	brokers, err := store.Brokers(ctx)
	if err != nil {
		return []check{fail("*", "fleet", err.Error(), "check the database")}
	}
	leases, err := store.Leases(ctx)
	if err != nil {
		return []check{fail("*", "fleet", err.Error(), "check the database")}
	}
	held := map[string][]models.Lease{}
	for _, l := range leases {
		held[l.Owner] = append(held[l.Owner], l)
	}
	if len(brokers) == 0 {
		return []check{pass("*", "fleet", fmt.Sprintf("no broker has used this database yet; this one is %q", cfg.Settings.Fleet.Name))}
	}
	host, _ := os.Hostname()
	var out []check
	// runBy maps a team to the brokers listing it; alive to those alive.
	runBy := map[string][]string{}
	alive := map[string]bool{}
	for _, r := range brokers {
		live := r.Alive(now, ttl)
		alive[r.Name] = live
		teams := r.TeamNames()
		for _, t := range teams {
			runBy[t] = append(runBy[t], r.Name)
		}
		desc := fmt.Sprintf("host %s, pid %d, teams %s; heartbeat %s ago", r.Host, r.PID, teamList(teams), age(now, r.HeartbeatAt))
		name := "broker " + r.Name
		if r.Name == cfg.Settings.Fleet.Name {
			name += " (this config)"
		}
		switch {
		case live && r.Name == cfg.Settings.Fleet.Name && r.Host != host:
			out = append(out, fail("*", name, desc+"; alive on another host under this config's name",
				"give this config another settings.fleet.name: two live brokers cannot share one"))
		case live:
			out = append(out, pass("*", name, desc+"; alive"))
		case r.StoppedAt != nil && len(held[r.Name]) == 0:
			out = append(out, pass("*", name, fmt.Sprintf("%s; stopped %s ago", desc, age(now, *r.StoppedAt))))
		default:
			state := "dead"
			if r.StoppedAt != nil {
				state = "stopped"
			}
			c := pass("*", name, desc+"; "+state)
			if ls := held[r.Name]; len(ls) > 0 {
				c.warn = true
				c.result += "; holds " + leaseList(ls, now)
				c.fix = fmt.Sprintf("start %s again on %s; otherwise another broker running those teams takes each pair over once its lease expired", r.Name, r.Host)
			}
			out = append(out, c)
		}
	}
	teams := make([]string, 0, len(runBy))
	for t := range runBy {
		teams = append(teams, t)
	}
	slices.Sort(teams)
	for _, t := range teams {
		if slices.ContainsFunc(runBy[t], func(b string) bool { return alive[b] }) {
			continue
		}
		c := pass(t, "fleet", "no live broker runs it (listed by "+strings.Join(runBy[t], ", ")+", not alive); messages to it wait in the queue")
		c.warn, c.fix = true, "start a broker whose config has team "+t
		out = append(out, c)
	}
	return out
}

func teamList(teams []string) string {
	if len(teams) == 0 {
		return "none"
	}
	return strings.Join(teams, ", ")
}

func age(now, t time.Time) time.Duration {
	return now.Sub(t).Round(time.Second)
}

// leaseList says which pairs a broker holds and until when.
func leaseList(ls []models.Lease, now time.Time) string {
	pairs := make([]string, len(ls))
	for i, l := range ls {
		if l.ExpiresAt.After(now) {
			pairs[i] = fmt.Sprintf("%s->%s (lease expires in %s)", l.FromTeam, l.ToTeam, l.ExpiresAt.Sub(now).Round(time.Second))
		} else {
			pairs[i] = fmt.Sprintf("%s->%s (lease expired)", l.FromTeam, l.ToTeam)
		}
	}
	n := "pair"
	if len(ls) > 1 {
		n = "pairs"
	}
	return fmt.Sprintf("%d %s: %s", len(ls), n, strings.Join(pairs, ", "))
}
