package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchboard-mcp/switchboard/configs"
)

// niceSpec is one arm of the nice phase: the local teams' Claude at
// niceness n and, with ssh, the SSH teams' Claude too (they run on this
// machine): an approximation of SSH teams on another machine.
type niceSpec struct {
	n   int
	ssh bool
}

func (s niceSpec) String() string {
	if s.ssh {
		return fmt.Sprintf("%d, SSH teams' too", s.n)
	}
	return strconv.Itoa(s.n)
}

// niceArm is one niceness of the local teams' Claude processes in the
// niceness comparison, on one path (in process or through the daemon).
type niceArm struct {
	nice      niceSpec
	path      string // "in process" or "daemon"
	lat, own  samples
	rate      []float64
	errs      int
	lastErr   string
	runDelay  time.Duration // the broker's threads runnable, not running, summed over the arm's rounds
	load      []float64     // 1-minute load average after each of the arm's rounds
	threads   int           // Claude threads seen at the arm's niceness after the renice …
	ofThreads int           // … out of this many
}

// niceResult is the niceness comparison of the 20-teams load.
type niceResult struct {
	rounds int
	arms   []*niceArm
	skip   string // why the warm-up failed, if it did
}

// brokerClaude matches the command line of a Claude process a broker
// started (claudeArgs: the session flag, then -p), not the floor's.
var brokerClaude = regexp.MustCompile(`--(resume|session-id) \S+ -p --input-format stream-json`)

// niceLoad is the 20-teams load at several nicenesses of the local teams'
// Claude processes, interleaved round by round, in process and through
// the daemon. Between rounds every thread of those processes (and of their
// children) is reniced to the next arm's value, which is what starting them
// at that niceness gives (a new thread inherits its creator's), so the arms
// share one set of warm processes. Lowering a niceness again needs
// CAP_SYS_NICE; without it the phase reports that and measures nothing.
// The remote teams' processes (on this machine too, behind the loopback
// sshd) stay at their niceness: a real remote team's Claude does not share
// the broker's CPU.
func (r *report) niceLoad(ctx context.Context, w *world, cfgPath string, d *daemonProc, b *inproc, nices []niceSpec) error {
	res := &niceResult{}
	r.niceRes = res
	self := os.Getpid()
	var localDirs, sshDirs []string
	inTeams, dTeams := make([]string, 20), make([]string, 20)
	for i := range 10 {
		inTeams[i], inTeams[10+i] = fmt.Sprintf("l%02d", i), fmt.Sprintf("r%02d", i)
		dTeams[i], dTeams[10+i] = fmt.Sprintf("m%02d", i), fmt.Sprintf("dr%02d", i)
		localDirs = append(localDirs, w.teamDir(inTeams[i]), w.teamDir(dTeams[i]))
		sshDirs = append(sshDirs, w.teamDir(inTeams[10+i]), w.teamDir(dTeams[10+i]))
	}
	clients := make([]*client, 20)
	for i := range clients {
		cl, err := w.connect(ctx, cfgPath, "load")
		if err != nil {
			return err
		}
		defer cl.Close()
		clients[i] = cl
	}
	defer func() {
		for i := range 20 {
			b.Sleep(context.Background(), "load", inTeams[i], true)
			clients[i].call(context.Background(), "team_sleep", map[string]any{"team": dTeams[i], "fromTeam": "load", "force": true})
		}
	}()
	ask := func(ctx context.Context, daemon bool, i int, q string) (time.Duration, error) {
		if daemon {
			return clients[i].askTimed(ctx, "load", dTeams[i], q)
		}
		return b.ask(ctx, "load", inTeams[i], q)
	}
	// burst asks the 20 teams of one path at once; a is nil in the warm-up.
	burst := func(ctx context.Context, daemon bool, round int, a *niceArm) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 20)
		if a == nil {
			sem = make(chan struct{}, 4) // untimed start of 20 processes, 4 at a time
		}
		pid := self
		if daemon {
			pid = d.Pid()
		}
		rd0 := runDelayOf(pid)
		t0 := time.Now()
		for i := range 20 {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				q := question(fmt.Sprintf("nice %v %d", daemon, i), round)
				s := time.Now()
				turn, err := ask(ctx, daemon, i, q)
				lat := time.Since(s)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case a == nil:
					if err != nil {
						res.skip = "warm-up: " + err.Error()
					}
				case err != nil:
					a.errs++
					a.lastErr = err.Error()
				default:
					a.lat = append(a.lat, lat)
					a.own = append(a.own, lat-turn)
				}
			})
		}
		wg.Wait()
		if a != nil {
			a.rate = append(a.rate, 20/time.Since(t0).Seconds())
			a.runDelay += runDelayOf(pid) - rd0
			a.load = append(a.load, loadAvg1())
		}
	}
	for _, daemon := range []bool{false, true} {
		burst(ctx, daemon, -1, nil)
		if res.skip != "" {
			return fmt.Errorf("%s", res.skip)
		}
	}
	for _, n := range nices {
		for _, p := range []string{"in process", "daemon"} {
			res.arms = append(res.arms, &niceArm{nice: n, path: p})
		}
	}
	for round := 0; round < r.limits.rounds && ctx.Err() == nil; round++ {
		// Rotate the arms' order each round, so the machine's load drifts
		// over all of them alike.
		for k := range nices {
			ni := (k + round) % len(nices)
			at, of, err := renice(localDirs, nices[ni].n, false)
			if err != nil {
				return err
			}
			sshNice := 0
			if nices[ni].ssh {
				sshNice = nices[ni].n
			}
			if _, _, err := renice(sshDirs, sshNice, true); err != nil {
				return err
			}
			for j := range 2 {
				daemon := (j+round)%2 == 1
				a := res.arms[2*ni]
				if daemon {
					a = res.arms[2*ni+1]
				}
				a.threads += at
				a.ofThreads += of
				burst(ctx, daemon, round, a)
			}
		}
		res.rounds++
	}
	return nil
}

// renice sets every thread of every broker-started Claude process whose
// working directory is one of dirs, and of their descendants, to niceness
// n. It returns how many threads then read back n, of how many. With group
// it sets the process's autogroup's niceness to n too: a process an sshd
// session started leads a session, so the kernel schedules it as a group of
// its own, and a thread's niceness orders it only inside its group.
func renice(dirs []string, n int, group bool) (at, of int, err error) {
	in := map[string]bool{}
	for _, d := range dirs {
		in[d] = true
	}
	pids, _ := filepath.Glob("/proc/[0-9]*")
	var roots []int
	for _, p := range pids {
		cmd, err := os.ReadFile(p + "/cmdline")
		if err != nil || !brokerClaude.Match(bytesToSpaces(cmd)) {
			continue
		}
		cwd, err := os.Readlink(p + "/cwd")
		if err != nil || !in[cwd] {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(p))
		roots = append(roots, pid)
	}
	var walk func(pid int) error
	walk = func(pid int) error {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/[0-9]*", pid))
		for _, t := range tasks {
			tid, _ := strconv.Atoi(filepath.Base(t))
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, n); err != nil && err != unix.ESRCH {
				return fmt.Errorf("renice thread %d of pid %d to %d: %w", tid, pid, n, err)
			}
			if v, ok := threadNice(t); ok {
				of++
				if v == n {
					at++
				}
			}
		}
		for _, c := range children(pid) {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	for _, p := range roots {
		if group {
			// Absent without CONFIG_SCHED_AUTOGROUP: then there is no group.
			f := fmt.Sprintf("/proc/%d/autogroup", p)
			if _, err := os.Stat(f); err == nil {
				if err := os.WriteFile(f, []byte(strconv.Itoa(n)), 0); err != nil {
					return at, of, fmt.Errorf("set the autogroup niceness of pid %d to %d: %w", p, n, err)
				}
			}
		}
		if err := walk(p); err != nil {
			return at, of, err
		}
	}
	if len(roots) < len(dirs) {
		return at, of, fmt.Errorf("renice: found %d Claude processes of %d teams", len(roots), len(dirs))
	}
	return at, of, nil
}

func bytesToSpaces(b []byte) []byte {
	out := append([]byte(nil), b...)
	for i, c := range out {
		if c == 0 {
			out[i] = ' '
		}
	}
	return out
}

// threadNice reads a thread's niceness: field 19 of its stat file, counted
// after the command name (which may hold spaces) closes.
func threadNice(taskDir string) (int, bool) {
	b, err := os.ReadFile(taskDir + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 17 {
		return 0, false
	}
	v, err := strconv.Atoi(f[16])
	return v, err == nil
}

// runDelayOf sums, over a process's threads, the time they were runnable
// but waiting for a CPU (/proc/PID/task/*/schedstat, second field).
func runDelayOf(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum time.Duration
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b))
		if len(fields) < 2 {
			continue
		}
		if v, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
			sum += time.Duration(v)
		}
	}
	return sum
}

func loadAvg1() float64 {
	f := strings.Fields(loadAvg())
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.TrimSuffix(f[0], ","), 64)
	return v
}

func (r *report) writeNice(b *strings.Builder) {
	l := r.niceRes
	if l == nil {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("**Niceness of the local teams' Claude processes.** The 20-teams load (10 local, 10 remote teams) with the 10 local ")
	p("teams' Claude processes at each niceness below, in process and through the daemon (20 `switchboard mcp` proxies), ")
	p("the arms interleaved round by round (%d rounds, order rotated); between rounds every thread of those processes is ", l.rounds)
	p("reniced to the arm's value (as settings.claudeNice starts them; every other phase runs with its default, %d). ", configs.DefaultClaudeNice)
	p("The remote teams' processes stay at theirs (but in the arms marked SSH teams' too, where they and their autogroups are reniced alike, ")
	p("as a stand-in for SSH teams on another machine): they run on this machine too, behind the loopback sshd, where each sshd ")
	p("session is a new session and so, with the kernel's autogroup scheduling, a scheduling group of its own beside the ")
	p("harness's (which holds the broker in process, the daemon and their local Claude processes). ")
	p("Run delay is the time the broker's threads (the harness process in process, `switchboard serve` through the daemon) ")
	p("were runnable but waiting for a CPU, per ask.\n\n")
	if l.skip != "" {
		p("Not measured: %s.\n\n", oneLine(l.skip))
		return
	}
	p("| nice | path | own time p50 / p99 | latency p50 / p99 | throughput, answers/s (median, min–max) | run delay per ask | load avg (1 min, mean) | Claude threads at the niceness | asks | errors |\n")
	p("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, a := range l.arms {
		var load float64
		for _, v := range a.load {
			load += v
		}
		if len(a.load) > 0 {
			load /= float64(len(a.load))
		}
		rd := time.Duration(0)
		if n := len(a.lat) + a.errs; n > 0 {
			rd = a.runDelay / time.Duration(n)
		}
		p("| %s | %s | %s / %s | %s / %s | %s | %s | %.2f | %d of %d | %d | %d |\n", a.nice, a.path,
			ms(a.own.quantile(0.5)), ms(a.own.quantile(0.99)), ms(a.lat.quantile(0.5)), ms(a.lat.quantile(0.99)),
			rates(a.rate), ms(rd), load, a.threads, a.ofThreads, len(a.lat), a.errs)
	}
	p("\n")
	for _, a := range l.arms {
		if a.lastErr != "" {
			p("Last error (nice %s, %s): `%s`\n\n", a.nice, a.path, oneLine(a.lastErr))
		}
	}
}
