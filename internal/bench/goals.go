package main

import (
	"fmt"
	"strings"
	"time"
)

// Issue 15's goals, as this run measured them. Each row is computed from
// the sections below; where a goal is not met, the row names the section
// whose table or profile shows where the time goes.
const (
	goalWarmRatio    = 1.05                 // warm local ask, full path, × the floor
	goalWarmSSHOwn   = 2 * time.Millisecond // warm ask over SSH, full path: floor + this
	goalFirstRatio   = 1.2                  // first ask with a standby, × a warm ask
	goalLoadOwnP50   = 20 * time.Millisecond
	goalLoadOwnP99   = 100 * time.Millisecond
	goalStoreGrowth  = 1.5 // per operation, for 10× the rows
	goalSeededRSSMiB = 40.0
)

func (r *report) writeGoals(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## Goals (issue 15) in this run\n\n")
	p("| goal | target | this run | met | where the rest goes |\n|---|---|---|---|---|\n")
	row := func(goal, target, got string, met bool, why string) {
		verdict := "no"
		if met {
			verdict, why = "**yes**", "–"
		}
		p("| %s | %s | %s | %s | %s |\n", goal, target, got, verdict, why)
	}
	warm := func(arms []*arm, own []*ownArm) (floor samples, full *ownArm) {
		if len(arms) < 3 || len(own) < 2 || own[1].res == nil || len(arms[0].s) == 0 {
			return nil, nil
		}
		return arms[0].s, own[1]
	}
	if floor, full := warm(r.warmLocalArms, r.warmLocalOwn); full != nil {
		f, o := floor.median(), full.res.own.median()
		q := float64(f+o) / float64(f)
		row("warm ask, local, full product path", fmt.Sprintf("≤ %.2f× the floor", goalWarmRatio),
			fmt.Sprintf("%.2f× (ratio B: floor %s + own time %s; ratio A of the latency medians %s)", q, ms(f), ms(o), ratio(full.s, floor)),
			q <= goalWarmRatio, "section 1, Per hop and Where a warm ask's time goes: the store's hops and the MCP relay")
	}
	if floor, full := warm(r.warmSSHArms, r.warmSSHOwn); full != nil {
		o := full.res.own.median()
		row("warm ask, over SSH, full product path", "≤ floor + "+ms(goalWarmSSHOwn),
			fmt.Sprintf("floor + %s (floor %s)", ms(o), ms(floor.median())),
			o <= goalWarmSSHOwn, "section 1, Per hop: the same hops as locally")
	}
	for _, s := range []struct {
		where string
		arms  []*arm
	}{{"local", r.standbyLocal}, {"over SSH", r.standbySSH}} {
		if len(s.arms) < 2 || len(s.arms[0].s) == 0 || len(s.arms[1].s) == 0 {
			continue
		}
		q := float64(s.arms[1].s.median()) / float64(s.arms[0].s.median())
		row("first ask of a new pair, "+s.where+", standby: 1", fmt.Sprintf("≤ %.1f× a warm ask", goalFirstRatio),
			fmt.Sprintf("%.2f× (%s against %s)", q, ms(s.arms[1].s.median()), ms(s.arms[0].s.median())),
			q <= goalFirstRatio, "section 2b: Claude Code's first turn runs code for the first time after the API answers, which a standby must not cause")
	}
	if d := r.daemonLoad; d != nil && len(d.own) > 0 {
		p50, p99 := d.own.quantile(0.5), d.own.quantile(0.99)
		row("20 teams at once through the daemon: own time", fmt.Sprintf("p50 ≤ %s, p99 ≤ %s, 0 errors", ms(goalLoadOwnP50), ms(goalLoadOwnP99)),
			fmt.Sprintf("p50 %s, p99 %s, %d errors", ms(p50), ms(p99), d.errs),
			p50 <= goalLoadOwnP50 && p99 <= goalLoadOwnP99 && d.errs == 0,
			"section 3: the stage table and the run delay (waiting for a CPU behind 20 Claude turns on this machine's cores); settings.claudeNice cuts it (the niceness table)")
	}
	if len(r.storeRes) > 0 {
		ns, _, ops := storeSeries(r.storeRes)
		var worst []string
		met := true
		for _, dim := range []string{"sessions", "messages"} {
			max, maxOp := 0.0, ""
			for _, op := range ops[dim] {
				if g := storeGrowth(ns, dim, op); g > max {
					max, maxOp = g, op
				}
			}
			if maxOp != "" {
				sz := storeSizes[dim]
				worst = append(worst, fmt.Sprintf("%s %s → %s: at most %.2f× (%s)", dim, sz[0], sz[1], max, maxOp))
				met = met && max <= goalStoreGrowth
			}
		}
		row("store operations for 10× the rows", fmt.Sprintf("each ≤ %.1f×", goalStoreGrowth), strings.Join(worst, "; "), met, "section 4, the store tables")
	}
	if m := r.mem; m.seededAfter > 0 {
		v := float64(m.seededAfter) / (1 << 20)
		row(fmt.Sprintf("daemon RSS with %d sessions", m.seededSessions), fmt.Sprintf("≤ %.0f MiB", goalSeededRSSMiB),
			fmt.Sprintf("%s after a team_status call", mib(m.seededAfter)), v <= goalSeededRSSMiB, "section 4, memory")
	}
	p("\n")
}
