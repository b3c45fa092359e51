package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/switchboard-mcp/switchboard/models"
)

// arm is one side of a comparison: what it runs per sample, and what it
// measured.
type arm struct {
	name string
	path string // which code path the figure measures
	do   func(ctx context.Context, i int) error
	// after runs untimed after each sample (stop the process a cold ask
	// started, so the next one is cold too).
	after func(ctx context.Context, i int)
	// conns, when set, counts SSH connections accepted so far; the report
	// shows how many each sample opened.
	conns func() int

	s       samples
	opened  int
	errs    int
	lastErr string
}

func (a *arm) fail(err error) {
	a.errs++
	a.lastErr = err.Error()
	log.Printf("  %s: %v", a.name, err)
}

// interleave takes n samples of every arm, one arm after the other in each
// round, rotating which arm goes first (A/B, B/A, ...) so that drift in the
// machine's load falls on all arms alike. It stops early when ctx ends.
func interleave(ctx context.Context, n int, arms []*arm) {
	for i := 0; i < n && ctx.Err() == nil; i++ {
		for k := range arms {
			a := arms[(i+k)%len(arms)]
			c0 := 0
			if a.conns != nil {
				c0 = a.conns()
			}
			t0 := time.Now()
			err := a.do(ctx, i)
			d := time.Since(t0)
			if err != nil {
				a.fail(err)
			} else {
				a.s = append(a.s, d)
			}
			if a.conns != nil {
				a.opened += a.conns() - c0
			}
			if a.after != nil {
				a.after(ctx, i)
			}
		}
	}
}

// warmup runs f a few times untimed: the first ask starts the process, the
// next ones let caches settle.
func warmup(ctx context.Context, a *arm, times int) error {
	for i := range times {
		if err := a.do(ctx, -1-i); err != nil {
			return fmt.Errorf("warm up %s: %w", a.name, err)
		}
	}
	return nil
}

func question(kind string, i int) string {
	return fmt.Sprintf("%s question %d: what does the auth middleware check?", kind, i)
}

func (r *report) warmLocal(ctx context.Context, w *world, cl *client, d *daemonProc, b *inproc, base *basePath) error {
	floor, err := localStream(w.claude, w.teamDir("warm"), w.localEnv)
	if err != nil {
		return err
	}
	defer floor.Close()
	own := []*ownArm{
		newOwnArm("switchboard broker, in process", "broker.Send → local runner → claude", inprocHops,
			func(ctx context.Context, i int) (time.Duration, error) {
				return b.ask(ctx, "warm", "l00", question("broker", i))
			}),
		newOwnArm("switchboard, full product path", "MCP client → `switchboard mcp` (stdio) → daemon (unix socket) → broker → claude", productHops,
			func(ctx context.Context, i int) (time.Duration, error) {
				return cl.askAsClaude(ctx, "bench", "warm", question("product", i))
			}),
	}
	arms := []*arm{
		{name: "claude stream-json process, written to directly (floor)", path: "harness → claude stdin/stdout",
			do: func(ctx context.Context, i int) error { return echoes(floor.ask(ctx, question("floor", i))) }},
		own[0].arm, own[1].arm,
	}
	own, arms = base.arm(own, arms, "bwarm", "switchboard, full product path")
	own, arms = r.noProgressArm(own, arms, cl, "warm", "switchboard, full product path")
	if err := r.runWarm(ctx, w, cl, d, base, arms, own); err != nil {
		return err
	}
	r.warmLocalArms, r.warmLocalOwn = arms, own
	return nil
}

func (r *report) warmSSH(ctx context.Context, w *world, cl *client, d *daemonProc, b *inproc, base *basePath) error {
	floor, err := sshStream(w.sshConfig, w.hosts[0].Alias, w.claude, w.teamDir("r00"), w.remoteEnv)
	if err != nil {
		return err
	}
	defer floor.Close()
	own := []*ownArm{
		newOwnArm("switchboard broker over SSH, in process", "broker.Send → remote runner (x/crypto/ssh, pooled connection) → sshd → claude", inprocHops,
			func(ctx context.Context, i int) (time.Duration, error) {
				return b.ask(ctx, "warm", "r00", question("broker", i))
			}),
		newOwnArm("switchboard over SSH, full product path", "MCP client → `switchboard mcp` (stdio) → daemon (unix socket) → broker → remote runner (pooled connection) → sshd → claude", productHops,
			func(ctx context.Context, i int) (time.Duration, error) {
				return cl.askAsClaude(ctx, "bench", "rwarm", question("product", i))
			}),
	}
	arms := []*arm{
		{name: "claude stream-json process over one OpenSSH `ssh` session, written to directly (floor)", path: "harness → ssh client → sshd → claude",
			do: func(ctx context.Context, i int) error { return echoes(floor.ask(ctx, question("floor", i))) }},
		own[0].arm, own[1].arm,
	}
	own, arms = base.arm(own, arms, "brwarm", "switchboard over SSH, full product path")
	own, arms = r.noProgressArm(own, arms, cl, "rwarm", "switchboard over SSH, full product path")
	if err := r.runWarm(ctx, w, cl, d, base, arms, own); err != nil {
		return err
	}
	r.warmSSHArms, r.warmSSHOwn = arms, own
	return nil
}

// noProgressArm adds, with -no-progress-arm, the full product path asked
// without a progress token: no accepted notice and no relayed progress, so
// the difference to the arm named name is what those cost an ask.
func (r *report) noProgressArm(own []*ownArm, arms []*arm, cl *client, to, name string) ([]*ownArm, []*arm) {
	if !r.limits.noProgress {
		return own, arms
	}
	o := newOwnArm(name+" — no progress token (-no-progress-arm)", "the same path; the call carries no progress token", productHops,
		func(ctx context.Context, i int) (time.Duration, error) {
			return cl.askTimed(ctx, "bench", to, question("plain", i))
		})
	return append(own, o), append(arms, o.arm)
}

// runWarm warms every arm up, asks them interleaved, and gives each own-time
// arm the hop marks of the timed asks.
func (r *report) runWarm(ctx context.Context, w *world, cl *client, d *daemonProc, base *basePath, arms []*arm, own []*ownArm) error {
	for _, a := range arms {
		if err := warmup(ctx, a, 3); err != nil {
			return err
		}
	}
	pids := append([]int{d.Pid(), cl.pid}, base.pids()...)
	w.takeHops(ctx, pids...) // drop the warm-up's
	interleave(ctx, r.limits.warm, arms)
	marks := w.takeHops(ctx, pids...)
	for _, o := range own {
		o.analyse(marks)
	}
	return nil
}

// echoes turns an answer into an error unless the fake model answered.
func echoes(answer string, err error) error {
	if err != nil {
		return err
	}
	if !strings.Contains(answer, "question") {
		return fmt.Errorf("answer %q does not echo the question", answer)
	}
	return nil
}

// coldFrom is the asking team of cold sample i: a new pair each sample.
func coldFrom(i int) string { return fmt.Sprintf("cold%02d", i) }

// callers connects one `switchboard mcp` proxy per asking team name(i),
// i < n: a connection asks only as its own team.
func (w *world) callers(ctx context.Context, cfgPath string, n int, name func(int) string) ([]*client, func(), error) {
	var cls []*client
	closeAll := func() {
		for _, c := range cls {
			c.Close()
		}
	}
	for i := range n {
		c, err := w.connect(ctx, cfgPath, name(i))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		cls = append(cls, c)
	}
	return cls, closeAll, nil
}

func (r *report) coldAsks(ctx context.Context, w *world, cfgPath string, cl *client, b *inproc) error {
	hostA, hostC := w.hosts[0], w.hosts[2]
	from := coldFrom
	fromCl, closeCallers, err := w.callers(ctx, cfgPath, r.limits.cold, from)
	if err != nil {
		return err
	}
	defer closeCallers()
	sleep := func(to string) func(ctx context.Context, i int) {
		return func(ctx context.Context, i int) {
			if _, err := b.Sleep(ctx, from(i), to, true); err != nil {
				log.Printf("  sleep %s->%s: %v", from(i), to, err)
			}
		}
	}
	teamSleep := func(to string) func(ctx context.Context, i int) {
		return func(ctx context.Context, i int) {
			if _, err := fromCl[i].call(ctx, "team_sleep", map[string]any{"team": to, "fromTeam": from(i), "force": true}); err != nil {
				log.Printf("  team_sleep %s->%s: %v", from(i), to, err)
			}
		}
	}
	// The daemon's connection to bench-a is open before the first sample
	// (the warm phase opened it, unless that phase failed).
	if err := cl.ask(ctx, "bench", "rwarm", question("connect", 0)); err != nil {
		return fmt.Errorf("open the daemon's connection to %s: %w", hostA.Alias, err)
	}

	r.coldLocalBase = &arm{name: "`cd path && claude -p` (local, by hand)", path: "harness → new claude process, message on stdin",
		do: func(ctx context.Context, i int) error {
			return echoes(localOneShot(ctx, w.claude, w.teamDir("cold"), w.localEnv, question("cold", i)))
		}}
	r.coldLocal = &arm{name: "switchboard, local team with no process, full product path", path: "MCP client → `switchboard mcp` → daemon → broker → new claude process",
		do: func(ctx context.Context, i int) error {
			return fromCl[i].ask(ctx, from(i), "cold", question("cold", i))
		},
		after: teamSleep("cold")}
	r.coldSSHBase = &arm{name: "`ssh host 'cd path && claude -p'` (OpenSSH, by hand)", path: "harness → new ssh connection → sshd → new claude process",
		do: func(ctx context.Context, i int) error {
			return echoes(sshOneShot(ctx, w.sshConfig, hostA.Alias, w.claude, w.teamDir("rnew"), w.remoteEnv, question("cold", i)))
		}, conns: hostA.Accepted}
	r.coldNewConn = &arm{name: "switchboard, remote team, new SSH connection, in process", path: "broker.Send → remote runner → dial + auth → sshd → new claude process",
		do: func(ctx context.Context, i int) error {
			_, err := b.ask(ctx, from(i), "rnew", question("cold", i))
			return err
		},
		after: func(ctx context.Context, i int) {
			sleep("rnew")(ctx, i)
			b.runners.renew()
		}, conns: hostA.Accepted}
	r.coldOpenConn = &arm{name: "switchboard, remote team, SSH connection already open, in process", path: "broker.Send → remote runner (open connection) → sshd → new claude process",
		do: func(ctx context.Context, i int) error {
			_, err := b.ask(ctx, from(i), "r00", question("cold", i))
			return err
		}, after: sleep("r00"), conns: hostA.Accepted}
	// The daemon keeps its connections; restarting bench-c, which only this
	// team uses, ends its connection as a host reboot would, so the next
	// ask dials again.
	r.coldProdNewConn = &arm{name: "switchboard, remote team, new SSH connection, full product path", path: "MCP client → `switchboard mcp` → daemon → remote runner → dial + auth → sshd → new claude process",
		do: func(ctx context.Context, i int) error {
			return fromCl[i].ask(ctx, from(i), "rnew", question("cold", i))
		},
		after: func(ctx context.Context, i int) {
			teamSleep("rnew")(ctx, i)
			if err := hostC.Restart(); err != nil {
				log.Printf("  %v", err)
			}
		}, conns: hostC.Accepted}
	r.coldProdOpenConn = &arm{name: "switchboard, remote team, SSH connection already open, full product path", path: "MCP client → `switchboard mcp` → daemon → remote runner (open connection) → sshd → new claude process",
		do: func(ctx context.Context, i int) error {
			return fromCl[i].ask(ctx, from(i), "rcold", question("cold", i))
		},
		after: teamSleep("rcold"), conns: hostA.Accepted}
	interleave(ctx, r.limits.cold, []*arm{r.coldLocalBase, r.coldLocal, r.coldSSHBase,
		r.coldNewConn, r.coldOpenConn, r.coldProdNewConn, r.coldProdOpenConn})
	return nil
}

// loadResult is the 20-teams-at-once figure.
type loadResult struct {
	teams, rounds         int
	base, sub             samples // per-ask latency
	own                   samples // switchboard's latency minus Claude's turn time
	baseRate, subRate     []float64
	baseErrs, subErrs     int
	lastErr               string
	dials                 int64
	floorConns, loadConns int
	perHost               map[string]int
	stages                *stageBreakdown // where the own time went
}

func (r *report) load(ctx context.Context, w *world, b *inproc) error {
	res := &loadResult{perHost: map[string]int{}}
	r.loadRes = res
	type target struct {
		team  string
		floor *streamProc
	}
	var targets []*target
	accepted := func() int { return w.hosts[0].Accepted() + w.hosts[1].Accepted() }
	before := accepted()
	for i := range 20 {
		t := &target{team: fmt.Sprintf("l%02d", i)}
		var err error
		if i < 10 {
			t.floor, err = localStream(w.claude, w.teamDir(t.team), w.localEnv)
		} else {
			t.team = fmt.Sprintf("r%02d", i-10)
			h := w.hosts[(i-10)/5]
			res.perHost[h.Alias]++
			t.floor, err = sshStream(w.sshConfig, h.Alias, w.claude, w.teamDir(t.team), w.remoteEnv)
		}
		if err != nil {
			return err
		}
		defer t.floor.Close()
		targets = append(targets, t)
	}
	res.teams = len(targets)

	// burst asks every target at once, through the floor or switchboard.
	var sum counterSum
	burst := func(ctx context.Context, round int, sub bool) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		// Warm-up starts processes a few at a time: 20 Claude Code starts
		// at once on 2 cores take longer than any start timeout allows.
		sem := make(chan struct{}, len(targets))
		if round < 0 {
			sem = make(chan struct{}, 4)
		}
		var c0 counters
		if sub && round >= 0 {
			b.stages.on.Store(true)
			c0 = readCounters(b)
		}
		t0 := time.Now()
		for _, t := range targets {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				q := question(fmt.Sprintf("load %s round", t.team), round)
				s := time.Now()
				var turn time.Duration
				var err error
				if sub {
					turn, err = b.ask(ctx, "load", t.team, q)
				} else {
					err = echoes(t.floor.ask(ctx, q))
				}
				d := time.Since(s)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case round < 0: // warm-up: errors stop the phase below
					if err != nil {
						res.lastErr = err.Error()
					}
				case err != nil && sub:
					res.subErrs++
					res.lastErr = err.Error()
				case err != nil:
					res.baseErrs++
					res.lastErr = err.Error()
				case sub:
					res.sub = append(res.sub, d)
					res.own = append(res.own, d-turn)
				default:
					res.base = append(res.base, d)
				}
			})
		}
		wg.Wait()
		if sub && round >= 0 {
			b.stages.on.Store(false)
			sum.add(c0, readCounters(b))
		}
		if round < 0 {
			return
		}
		rate := float64(len(targets)) / time.Since(t0).Seconds()
		if sub {
			res.subRate = append(res.subRate, rate)
		} else {
			res.baseRate = append(res.baseRate, rate)
		}
	}
	defer func() {
		// Free the machine for what follows.
		for _, t := range targets {
			b.Sleep(context.Background(), "load", t.team, true)
		}
	}()
	// Start every process (untimed): 40 Claude Code starts on this machine.
	// The floor's connections are all open once its processes answered;
	// switchboard's pool was dialled to both hosts by now or in its warm-up.
	for _, sub := range []bool{false, true} {
		burst(ctx, -1, sub)
		if res.lastErr != "" {
			return fmt.Errorf("warm-up: %s", res.lastErr)
		}
		if !sub {
			res.floorConns = accepted() - before
		}
	}
	before = accepted()
	for i := 0; i < r.limits.rounds && ctx.Err() == nil; i++ {
		for k := range 2 {
			burst(ctx, i, (i+k)%2 == 1)
		}
		res.rounds++
	}
	res.loadConns = accepted() - before
	res.dials = b.runners.pool.Dials()
	res.stages = b.stages.breakdown()
	res.stages.finish(&sum, len(res.sub))
	return nil
}

// memResult holds the daemon's resident memory at each point.
type memResult struct {
	idle, live, seeded, seededAfter int64
	liveProcs                       int
	claude                          []int64 // RSS of each live Claude process
	seededSessions                  int
}

func (r *report) memIdle(ctx context.Context, d *daemonProc) error {
	settle(ctx)
	v, err := rss(d.Pid())
	r.mem.idle = v
	return err
}

// settle gives a just-started or just-busy process a moment, so that RSS is
// read in a steady state rather than mid-allocation.
func settle(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}

func (r *report) memLive(ctx context.Context, w *world, cfgPath string, cl *client, d *daemonProc) error {
	mem, err := w.connect(ctx, cfgPath, "mem")
	if err != nil {
		return err
	}
	defer mem.Close()
	// Only the 20 teams below may have a process: stop the warm ones.
	for _, team := range []string{"warm", "rwarm"} {
		if _, err := cl.call(ctx, "team_sleep", map[string]any{"team": team, "fromTeam": "bench", "force": true}); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range 20 {
		wg.Go(func() { errs[i] = mem.ask(ctx, "mem", fmt.Sprintf("m%02d", i), question("memory", i)) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	settle(ctx)
	for _, pid := range children(d.Pid()) {
		r.mem.liveProcs++
		if v, err := rss(pid); err == nil {
			r.mem.claude = append(r.mem.claude, v)
		}
	}
	v, err := rss(d.Pid())
	r.mem.live = v
	for i := range 20 {
		mem.call(ctx, "team_sleep", map[string]any{"team": fmt.Sprintf("m%02d", i), "fromTeam": "mem", "force": true})
	}
	return err
}

// children lists the direct children of pid: the processes its threads
// started, from /proc/PID/task/TID/children.
func children(pid int) []int {
	var out []int
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(field); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

const seededSessions = 100_000

func (r *report) memSeeded(ctx context.Context, w *world, teams []teamSpec) error {
	cfgPath, err := w.config("seeded", teams)
	if err != nil {
		return err
	}
	if err := seed(ctx, filepath.Join(filepath.Dir(cfgPath), "switchboard.db"), teams, seededSessions); err != nil {
		return err
	}
	d, err := w.startDaemon(ctx, cfgPath)
	if err != nil {
		return err
	}
	defer d.Stop()
	settle(ctx)
	if r.mem.seeded, err = rss(d.Pid()); err != nil {
		return err
	}
	cl, err := w.connect(ctx, cfgPath, "bench")
	if err != nil {
		return err
	}
	defer cl.Close()
	// team_status reads every team's sessions and message counts.
	if _, err := cl.call(ctx, "team_status", map[string]any{}); err != nil {
		return err
	}
	settle(ctx)
	r.mem.seededAfter, err = rss(d.Pid())
	r.mem.seededSessions = seededSessions
	return err
}

// seed writes n session records into a new store, spread over many asking
// teams and the configured teams, as years of use would leave them.
func seed(ctx context.Context, path string, teams []teamSpec, n int) error {
	s, err := models.Open(ctx, models.Options{Path: path, Logger: quietLog})
	if err != nil {
		return err
	}
	defer s.Close()
	base := time.Now().Add(-time.Duration(n) * time.Minute)
	rows := make([]models.Session, n)
	for i := range rows {
		used := base.Add(time.Duration(i) * time.Minute)
		rows[i] = models.Session{
			FromTeam:     fmt.Sprintf("f%d", i/len(teams)),
			ToTeam:       teams[i%len(teams)].name,
			SessionID:    models.NewSessionID(),
			Status:       models.SessionActive,
			ProcessState: models.ProcessStopped,
			MessageCount: i % 50,
			CreatedAt:    base,
			UpdatedAt:    used,
			LastUsedAt:   &used,
		}
	}
	db := s.DB().Session(&gorm.Session{Logger: logger.Discard})
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return tx.CreateInBatches(rows, 1000).Error
	})
}
