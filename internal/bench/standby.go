package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/hosts/claudepath"
)

// standbyFirst measures a first ask to a team that keeps a standby Claude
// process (settings standby), beside a warm ask and a cold first ask without
// standby, locally and over SSH, all through a daemon of their own (so its
// standby processes stay out of the other phases' process counts).
func (r *report) standbyFirst(ctx context.Context, w *world) error {
	rhost := w.hosts[1] // bench-b: its connection is opened by the warm-up below
	from := func(i int) string { return fmt.Sprintf("first%02d", i) }
	teams := []teamSpec{
		{name: "bench"}, {name: "sbwarm"}, {name: "sbcold"}, {name: "sb", standby: 1},
		{name: "rsbwarm", host: rhost.Alias}, {name: "rsbcold", host: rhost.Alias}, {name: "rsb", host: rhost.Alias, standby: 1},
	}
	for i := range r.limits.cold {
		teams = append(teams, teamSpec{name: from(i)}) // askers: a connection asks as its own team
	}
	cfgPath, err := w.config("standby", teams)
	if err != nil {
		return err
	}
	d, err := w.startDaemon(ctx, cfgPath)
	if err != nil {
		return err
	}
	defer d.Stop()
	cl, err := w.connect(ctx, cfgPath, "bench")
	if err != nil {
		return err
	}
	defer cl.Close()
	fromCl, closeCallers, err := w.callers(ctx, cfgPath, r.limits.cold, from)
	if err != nil {
		return err
	}
	defer closeCallers()
	sleep := func(to string) func(ctx context.Context, i int) {
		return func(ctx context.Context, i int) {
			if _, err := fromCl[i].call(ctx, "team_sleep", map[string]any{"team": to, "fromTeam": from(i), "force": true}); err != nil {
				log.Printf("  team_sleep %s->%s: %v", from(i), to, err)
			}
		}
	}
	// ready waits, untimed, until the team's replacement standby is warmed:
	// its session file exists and holds no question yet.
	ready := func(team, configDir string) func(ctx context.Context, i int) {
		return func(ctx context.Context, i int) {
			sleep(team)(ctx, i)
			if err := w.waitStandby(ctx, configDir, team); err != nil {
				log.Printf("  standby for %s: %v", team, err)
			}
		}
	}
	localCD, remoteCD := envValue(w.localEnv, "CLAUDE_CONFIG_DIR"), w.remoteEnv["CLAUDE_CONFIG_DIR"]
	r.standbyLocal = []*arm{
		{name: "warm ask (process running)", path: "full product path → broker → running claude",
			do: func(ctx context.Context, i int) error { return cl.ask(ctx, "bench", "sbwarm", question("warm", i)) }},
		{name: "first ask of a new pair, standby: 1", path: "full product path → broker → standby claude taken over",
			do: func(ctx context.Context, i int) error {
				return fromCl[i].ask(ctx, from(i), "sb", question("standby", i))
			},
			after: ready("sb", localCD)},
		{name: "first ask of a new pair, no standby (cold)", path: "full product path → broker → new claude process",
			do: func(ctx context.Context, i int) error {
				return fromCl[i].ask(ctx, from(i), "sbcold", question("cold", i))
			},
			after: sleep("sbcold")},
	}
	r.standbySSH = []*arm{
		{name: "warm ask over SSH (process running)", path: "full product path → broker → pooled SSH connection → running claude",
			do: func(ctx context.Context, i int) error { return cl.ask(ctx, "bench", "rsbwarm", question("warm", i)) }},
		{name: "first ask of a new pair over SSH, standby: 1", path: "full product path → broker → standby claude on the host taken over",
			do: func(ctx context.Context, i int) error {
				return fromCl[i].ask(ctx, from(i), "rsb", question("standby", i))
			},
			after: ready("rsb", remoteCD), conns: rhost.Accepted},
		{name: "first ask of a new pair over SSH, no standby, connection open (cold)", path: "full product path → broker → pooled SSH connection → new claude process",
			do: func(ctx context.Context, i int) error {
				return fromCl[i].ask(ctx, from(i), "rsbcold", question("cold", i))
			},
			after: sleep("rsbcold"), conns: rhost.Accepted},
	}
	for _, a := range []*arm{r.standbyLocal[0], r.standbySSH[0]} {
		if err := warmup(ctx, a, 3); err != nil {
			return err
		}
	}
	for _, t := range []struct{ team, dir string }{{"sb", localCD}, {"rsb", remoteCD}} {
		if err := w.waitStandby(ctx, t.dir, t.team); err != nil {
			return fmt.Errorf("standby for %s: %w", t.team, err)
		}
	}
	interleave(ctx, r.limits.cold, append(append([]*arm(nil), r.standbyLocal...), r.standbySSH...))
	return nil
}

// warmed reports a session file a standby's warm-up wrote (broker/
// claude_warm.go): the system note of the prompt its hook blocked, or the
// lines of /cost where the broker fell back to it. Only the hook's removal
// (two local control requests) follows the block, and the next standby ask
// comes several asks later.
func warmed(file string) bool {
	return strings.Contains(file, `"kind":"blocked_by_hook"`) || strings.Contains(file, "local_command")
}

// waitStandby waits until team's project directory (under configDir) holds a
// session file with no question in it: a warmed standby that nobody took.
func (w *world) waitStandby(ctx context.Context, configDir, team string) error {
	dir := filepath.Dir(claudepath.SessionFile(configDir, w.teamDir(team), uuid.Nil.String()))
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err == nil && len(b) > 0 && !strings.Contains(string(b), "question") && warmed(string(b)) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// daemonLoad is section 3 through the daemon: 20 teams (10 local, 5 on each
// SSH host), each asked by its own `switchboard mcp` proxy, all at once.
type daemonLoad struct {
	teams, rounds int
	lat, own      samples
	rate          []float64
	errs          int
	lastErr       string
	perHost       map[string]int // SSH connections accepted during the timed rounds
	phaseConns    map[string]int // ... during the whole phase, warm-up included
	hostTeams     map[string]int
	profile       *cpuSummary
}

func (r *report) loadDaemon(ctx context.Context, w *world, cfgPath string, d *daemonProc) error {
	res := &daemonLoad{perHost: map[string]int{}, phaseConns: map[string]int{}, hostTeams: map[string]int{}}
	r.daemonLoad = res
	atStart := map[string]int{}
	for _, h := range w.hosts[:2] {
		atStart[h.Alias] = h.Accepted()
	}
	type target struct {
		team string
		cl   *client
	}
	var targets []*target
	for i := range 20 {
		t := &target{team: fmt.Sprintf("m%02d", i)}
		if i >= 10 {
			t.team = fmt.Sprintf("dr%02d", i-10)
			res.hostTeams[w.hosts[(i-10)/5].Alias]++
		}
		cl, err := w.connect(ctx, cfgPath, "load")
		if err != nil {
			return err
		}
		defer cl.Close()
		t.cl = cl
		targets = append(targets, t)
	}
	res.teams = len(targets)
	defer func() {
		for _, t := range targets {
			t.cl.call(context.Background(), "team_sleep", map[string]any{"team": t.team, "fromTeam": "load", "force": true})
		}
	}()
	burst := func(ctx context.Context, round int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, len(targets))
		if round < 0 {
			sem = make(chan struct{}, 4) // untimed start of 20 processes, 4 at a time
		}
		t0 := time.Now()
		for _, t := range targets {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				q := question(fmt.Sprintf("daemon load %s round", t.team), round)
				s := time.Now()
				turn, err := t.cl.askTimed(ctx, "load", t.team, q)
				lat := time.Since(s)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil && round < 0:
					res.lastErr = err.Error()
				case err != nil:
					res.errs++
					res.lastErr = err.Error()
				case round >= 0:
					res.lat = append(res.lat, lat)
					res.own = append(res.own, lat-turn)
				}
			})
		}
		wg.Wait()
		if round >= 0 {
			res.rate = append(res.rate, float64(len(targets))/time.Since(t0).Seconds())
		}
	}
	burst(ctx, -1)
	if res.lastErr != "" {
		return fmt.Errorf("warm-up: %s", res.lastErr)
	}
	before := map[string]int{}
	for _, h := range w.hosts[:2] {
		before[h.Alias] = h.Accepted()
	}
	stop := w.startProfile(d.Pid())
	for i := 0; i < r.limits.rounds && ctx.Err() == nil; i++ {
		burst(ctx, i)
		res.rounds++
	}
	res.profile = stop(ctx)
	for _, h := range w.hosts[:2] {
		res.perHost[h.Alias] = h.Accepted() - before[h.Alias]
		res.phaseConns[h.Alias] = h.Accepted() - atStart[h.Alias]
	}
	return nil
}

// askTimed is send_message; it returns Claude's turn time as the broker
// measured it (the reply's duration, in ms).
func (c *client) askTimed(ctx context.Context, from, to, text string) (time.Duration, error) {
	res, err := c.call(ctx, "send_message", map[string]any{"toTeam": to, "fromTeam": from, "message": text, "timeout": 120000})
	if err != nil {
		return 0, err
	}
	return turnOf(to, text, res)
}

// cpuSummary is where a process's CPU time went while profiled.
type cpuSummary struct {
	wall, total time.Duration
	groups      []cpuGroup
	top         []string // pprof -top lines, flat
}

type cpuGroup struct {
	name string
	d    time.Duration
}

// startProfile has the switchboard process pid write a CPU profile (see
// cmd/switchboard/profile.go) until the returned stop is called.
func (w *world) startProfile(pid int) func(context.Context) *cpuSummary {
	file := fmt.Sprintf("%s.%d", w.profilePrefix(), pid)
	os.Remove(file)
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return func(context.Context) *cpuSummary { return nil }
	}
	t0 := time.Now()
	return func(context.Context) *cpuSummary {
		wall := time.Since(t0)
		// Summarising runs `go tool pprof`, seconds on a busy machine: it
		// gets its own bound, not what is left of the phase's.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		syscall.Kill(pid, syscall.SIGUSR2)
		// The profile is complete once its file stops growing.
		var last int64 = -1
		for range 50 {
			time.Sleep(100 * time.Millisecond)
			if fi, err := os.Stat(file); err == nil && fi.Size() > 0 && fi.Size() == last {
				break
			} else if err == nil {
				last = fi.Size()
			}
		}
		s, err := w.summarise(ctx, file)
		if err != nil {
			log.Printf("  cpu profile of pid %d: %v", pid, err)
			return nil
		}
		s.wall = wall
		return s
	}
}

func (w *world) profilePrefix() string { return filepath.Join(w.root, "prof", "cpu") }

// hopRules put each CPU sample into the hop it was spent in: the leaf-most
// frame that matches a rule decides.
var hopRules = []struct{ name, match string }{
	{"store: SQLite through GORM (models)", "modernc.org/sqlite"},
	{"store: SQLite through GORM (models)", "gorm.io/"},
	{"store: SQLite through GORM (models)", "switchboard/models."},
	{"SSH: x/crypto/ssh (remote runner)", "golang.org/x/crypto/"},
	{"JSON encode/decode (MCP and stream-json)", "encoding/json."},
	{"MCP protocol (go-sdk, jsonrpc)", "modelcontextprotocol/go-sdk"},
	{"syscalls: socket, pipe and file I/O", "syscall."},
	{"syscalls: socket, pipe and file I/O", "internal/poll."},
	{"GC and allocation", "runtime.gcBgMarkWorker"},
	{"GC and allocation", "runtime.mallocgc"},
	{"GC and allocation", "runtime.gcDrain"},
	{"scheduler and goroutine hand-offs", "runtime.schedule"},
	{"scheduler and goroutine hand-offs", "runtime.findRunnable"},
	{"scheduler and goroutine hand-offs", "runtime.futex"},
	{"scheduler and goroutine hand-offs", "runtime.netpoll"},
	{"broker (queue, workers, waiters)", "switchboard/broker."},
	{"daemon (socket relay)", "switchboard/daemon."},
}

func (w *world) summarise(ctx context.Context, file string) (*cpuSummary, error) {
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-traces", w.bin, file).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof -traces: %w", err)
	}
	s := &cpuSummary{}
	byGroup := map[string]time.Duration{}
	var cur time.Duration
	var frames []string
	flush := func() {
		if cur == 0 {
			return
		}
		group := "other"
	find:
		for _, f := range frames { // leaf first
			for _, rule := range hopRules {
				if strings.Contains(f, rule.match) {
					group = rule.name
					break find
				}
			}
		}
		byGroup[group] += cur
		s.total += cur
		cur, frames = 0, nil
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			flush()
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if d, err := time.ParseDuration(fields[0]); err == nil && len(fields) >= 2 && cur == 0 && frames == nil {
			cur = d
			frames = append(frames, fields[1])
			continue
		}
		if cur > 0 {
			frames = append(frames, fields[0])
		}
	}
	flush()
	for name, d := range byGroup {
		s.groups = append(s.groups, cpuGroup{name, d})
	}
	sort.Slice(s.groups, func(i, j int) bool { return s.groups[i].d > s.groups[j].d })
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=12", w.bin, file).Output()
	if err == nil {
		lines := strings.Split(string(top), "\n")
		for i, l := range lines {
			if strings.Contains(l, "flat%") {
				for _, t := range lines[i:] {
					if strings.TrimSpace(t) != "" {
						s.top = append(s.top, t)
					}
				}
				break
			}
		}
	}
	return s, nil
}

// flagOrder compares, on the floor harness, a resumed Claude Code session
// started with its session flag before -p (`--resume ID -p ...`, iris-mcp's
// order, switchboard's now) and after it: warm asks written straight to each.
func (r *report) flagOrder(ctx context.Context, w *world) error {
	dir := w.teamDir("flags")
	var procs []*streamProc
	defer func() {
		for _, p := range procs {
			p.Close()
		}
	}()
	start := func(first bool) (*streamProc, error) {
		id := uuid.NewString()
		// The session must exist to be resumed: one turn, then a restart.
		p, err := startStream(w.floorCmd(dir, append([]string{"--session-id", id}, streamArgs...)))
		if err != nil {
			return nil, err
		}
		if err := echoes(p.ask(ctx, question("create", 0))); err != nil {
			p.Close()
			return nil, err
		}
		p.Close()
		args := append(append([]string(nil), streamArgs...), "--resume", id)
		if first {
			args = append([]string{"--resume", id}, streamArgs...)
		}
		p, err = startStream(w.floorCmd(dir, args))
		if err == nil {
			procs = append(procs, p)
		}
		return p, err
	}
	before, err := start(true)
	if err != nil {
		return err
	}
	after, err := start(false)
	if err != nil {
		return err
	}
	r.flagArms = []*arm{
		{name: "`-p … --resume ID` (session flag last, switchboard's order before)", path: "harness → claude stdin/stdout",
			do: func(ctx context.Context, i int) error { return echoes(after.ask(ctx, question("after", i))) }},
		{name: "`--resume ID -p …` (session flag first, iris-mcp's order and switchboard's now)", path: "harness → claude stdin/stdout",
			do: func(ctx context.Context, i int) error { return echoes(before.ask(ctx, question("before", i))) }},
	}
	for _, a := range r.flagArms {
		if err := warmup(ctx, a, 3); err != nil {
			return err
		}
	}
	interleave(ctx, r.limits.warm, r.flagArms)
	return nil
}

func (w *world) floorCmd(dir string, args []string) *exec.Cmd {
	cmd := exec.Command(w.claude, args...)
	cmd.Dir, cmd.Env = dir, w.localEnv
	return cmd
}

// hotPath is where a warm ask's CPU goes in each switchboard process of the
// full product path: the `switchboard mcp` proxy and the daemon.
type hotPath struct {
	asks          int
	lat           samples
	daemon, proxy *cpuSummary
}

func (r *report) hotPath(ctx context.Context, w *world, cl *client, d *daemonProc) error {
	a := &arm{name: "warm", do: func(ctx context.Context, i int) error { return cl.ask(ctx, "bench", "warm", question("hot", i)) }}
	if err := warmup(ctx, a, 3); err != nil {
		return err
	}
	h := &hotPath{}
	r.hot = h
	stopD, stopP := w.startProfile(d.Pid()), w.startProfile(cl.pid)
	n := r.limits.warm
	for i := 0; i < n && ctx.Err() == nil; i++ {
		t0 := time.Now()
		if err := a.do(ctx, i); err != nil {
			return err
		}
		h.lat = append(h.lat, time.Since(t0))
		h.asks++
	}
	h.daemon, h.proxy = stopD(ctx), stopP(ctx)
	return nil
}

// writeFlags renders the session-flag-order comparison.
func (r *report) writeFlags(b *strings.Builder) {
	if len(r.flagArms) == 0 {
		return
	}
	b.WriteString("### Session flag order\n\n")
	b.WriteString("The same resumed session, two Claude Code processes started with the session flag before `-p` and after ")
	b.WriteString("the stream-json flags, asked warm questions written straight to their stdin (the floor harness), interleaved. ")
	b.WriteString("The baseline is the old order.\n\n")
	comparisonTable(b, "Resumed session, local", r.flagArms)
}

// writeHot renders where a warm ask's CPU time went, per process and hop.
func (r *report) writeHot(b *strings.Builder) {
	h := r.hot
	if h == nil {
		return
	}
	fmt.Fprintf(b, "### Where a warm ask's time goes\n\n")
	fmt.Fprintf(b, "%d warm local asks through the full product path (%s), one after the other, with a CPU profile (runtime/pprof, ", h.asks, h.lat.summary())
	b.WriteString("started and stopped by signal) of the `switchboard mcp` proxy and of the daemon. Each sample is put in the hop its ")
	b.WriteString("leaf-most recognisable frame belongs to. CPU per ask is the process's profiled CPU time / asks; the rest of a ")
	b.WriteString("warm ask's latency is waiting: on Claude (the floor) and on hand-offs between processes.\n\n")
	for _, p := range []struct {
		name string
		s    *cpuSummary
	}{{"`switchboard mcp` proxy", h.proxy}, {"daemon (`switchboard serve`)", h.daemon}} {
		writeCPU(b, p.name, p.s, h.asks)
	}
}

func writeCPU(b *strings.Builder, name string, s *cpuSummary, asks int) {
	if s == nil || asks == 0 {
		fmt.Fprintf(b, "**%s**: no profile.\n\n", name)
		return
	}
	per := func(d time.Duration) string { return ms(d / time.Duration(asks)) }
	fmt.Fprintf(b, "**%s**: %s CPU over %s of wall time, %s per ask.\n\n| hop | CPU | per ask | share |\n|---|---|---|---|\n",
		name, ms(s.total), s.wall.Round(time.Millisecond), per(s.total))
	for _, g := range s.groups {
		fmt.Fprintf(b, "| %s | %s | %s | %.0f%% |\n", g.name, ms(g.d), per(g.d), 100*float64(g.d)/float64(max(s.total, 1)))
	}
	if len(s.top) > 0 {
		fmt.Fprintf(b, "\n<details><summary>pprof -top (flat)</summary>\n\n```\n%s\n```\n</details>\n", strings.Join(s.top, "\n"))
	}
	b.WriteString("\n")
}

// writeStandby renders the first-ask-with-standby section.
func (r *report) writeStandby(b *strings.Builder) {
	if len(r.standbyLocal) == 0 {
		return
	}
	b.WriteString("## 2b. First ask with a standby process\n\n")
	b.WriteString("A daemon of its own, whose teams `sb` (local) and `rsb` (on bench-b) have `standby: 1`: one Claude Code process each, ")
	b.WriteString("started ahead of need with a fresh `--session-id` and warmed up without any API request: a local ")
	b.WriteString("`get_context_usage` summary (it builds the system prompt and the tool schemas), then a prompt that a ")
	b.WriteString("UserPromptSubmit hook, added for it alone through `apply_flag_settings` and removed after, blocks (it runs the ")
	b.WriteString("prompt pipeline and the first attachments), both twice; `/cost` where Claude Code does not list that hook as sure to block. ")
	b.WriteString("Each sample asks as a new asking team, so the new pair takes the standby process; untimed after it, the pair's ")
	b.WriteString("process is stopped and the harness waits until the replacement standby is warm (its session file holds the ")
	b.WriteString("blocked prompt's system note, or the `/cost` lines, and no question). The baseline is a warm ask to a running ")
	b.WriteString("process on the same path; the cold arm is a first ask to a team without standby. All through the full product path, interleaved.\n\n")
	b.WriteString("Why a first ask still costs more than a warm one: Claude Code runs much of a turn's code for the first time in ")
	b.WriteString("its first turn, and the part from the API request to the result (the SDK's request and stream handling, the ")
	b.WriteString("answer's assembly, transcript and result writes) runs only when the API answers, which a standby must not make ")
	b.WriteString("it do; with the warm-up above it is still about 20 ms after the request and 25 ms before it over a warm turn ")
	b.WriteString("(harness figures). See internal/claudetest/PROTOCOL.md, \"Warming a process up without a model call\", for the ")
	b.WriteString("profile and the candidates measured.\n\n")
	comparisonTable(b, "Local", r.standbyLocal)
	comparisonTable(b, "Over SSH (connection open)", r.standbySSH)
	if len(r.standbySSH) > 1 {
		fmt.Fprintf(b, "SSH connections accepted by bench-b per sample: standby %s, cold %s.\n\n", perSample(r.standbySSH[1]), perSample(r.standbySSH[2]))
	}
}

// writeDaemonLoad renders section 3 through the daemon.
func (r *report) writeDaemonLoad(b *strings.Builder) {
	l := r.daemonLoad
	if l == nil {
		return
	}
	hosts := make([]string, 0, len(l.hostTeams))
	for h, n := range l.hostTeams {
		hosts = append(hosts, fmt.Sprintf("%d on %s", n, h))
	}
	sort.Strings(hosts)
	fmt.Fprintf(b, "**Through the daemon.** The same %d teams (10 local, %s) configured in the product daemon, each asked by its own ", l.teams, strings.Join(hosts, ", "))
	b.WriteString("`switchboard mcp` proxy (20 proxies, as 20 Claude Code windows would have), all at once; ")
	fmt.Fprintf(b, "%d rounds. switchboard's own time is an ask's latency at the MCP client minus Claude's turn as the broker timed it ", l.rounds)
	b.WriteString("(the reply's `duration`, whole milliseconds).\n\n| | through the daemon |\n|---|---|\n")
	fmt.Fprintf(b, "| throughput, answers/s (median, min–max over rounds) | %s |\n", rates(l.rate))
	fmt.Fprintf(b, "| latency p50 / p99 | %s / %s |\n", ms(l.lat.quantile(0.5)), ms(l.lat.quantile(0.99)))
	fmt.Fprintf(b, "| switchboard's own time per ask, p50 / p99 | **%s / %s** |\n", ms(l.own.quantile(0.5)), ms(l.own.quantile(0.99)))
	fmt.Fprintf(b, "| asks measured | %d |\n| errors | %d |\n", len(l.lat), l.errs)
	conns := func(m map[string]int) string {
		var out []string
		for h, n := range m {
			out = append(out, fmt.Sprintf("%s %d", h, n))
		}
		sort.Strings(out)
		return strings.Join(out, ", ")
	}
	fmt.Fprintf(b, "| SSH connections accepted in the phase, warm-up included (the daemon's pool may hold one per host from earlier phases) | %s |\n", conns(l.phaseConns))
	fmt.Fprintf(b, "| SSH connections accepted during the timed rounds (sshd log) | %s |\n\n", conns(l.perHost))
	if l.lastErr != "" {
		fmt.Fprintf(b, "Last error: `%s`\n\n", oneLine(l.lastErr))
	}
	writeCPU(b, "Daemon CPU during the timed rounds", l.profile, len(l.lat)+l.errs)
}

// turnOf checks that res, send_message's answer from team to, echoes the
// question text (the fake API's answer), and returns Claude's turn as the
// broker measured it (the reply's duration, in ms).
func turnOf(to, text string, res *mcp.CallToolResult) (time.Duration, error) {
	if got := resultText(res); !strings.Contains(got, text) {
		return 0, fmt.Errorf("send_message to %s: answer %q does not echo the question", to, got)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var rep struct {
		Duration int64 `json:"duration"`
	}
	if err := json.Unmarshal(b, &rep); err != nil || rep.Duration == 0 {
		return 0, fmt.Errorf("send_message to %s: no turn duration in %s", to, b)
	}
	return time.Duration(rep.Duration) * time.Millisecond, nil
}
