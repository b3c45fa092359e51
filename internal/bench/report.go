package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/configs"
)

// report collects what a run measured and renders BENCHMARKS.md.
type report struct {
	started time.Time
	elapsed time.Duration
	limits  limits
	facts   [][2]string

	warmLocalArms, warmSSHArms []*arm
	warmLocalOwn, warmSSHOwn   []*ownArm
	coldLocalBase, coldLocal   *arm
	coldSSHBase                *arm
	coldNewConn, coldOpenConn  *arm // in process
	coldProdNewConn            *arm // full product path
	coldProdOpenConn           *arm
	loadRes                    *loadResult
	standbyLocal, standbySSH   []*arm
	daemonLoad                 *daemonLoad
	niceRes                    *niceResult
	flagArms                   []*arm
	hot                        *hotPath
	mem                        memResult
	storeRes                   []benchLine
	fleetRes                   fleetResult
	endLoad                    string
	failures                   []string
}

func (r *report) machine(ctx context.Context, claude string) error {
	ver, err := exec.CommandContext(ctx, claude, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", claude, err)
	}
	sshVer, _ := exec.CommandContext(ctx, "ssh", "-V").CombinedOutput()
	kernel, _ := exec.CommandContext(ctx, "uname", "-sr").Output()
	r.facts = [][2]string{
		{"date", r.started.UTC().Format("2006-01-02 15:04 MST")},
		{"CPU", cpuModel()},
		{"cores (nproc)", strconv.Itoa(runtime.NumCPU())},
		{"memory", memTotal()},
		{"kernel", strings.TrimSpace(string(kernel))},
		{"Go", runtime.Version()},
		{"Claude Code", strings.TrimSpace(string(ver))},
		{"OpenSSH", strings.TrimSpace(string(sshVer))},
		{"load average at start (1, 5, 15 min)", loadAvg()},
	}
	return nil
}

// loadAvg is /proc/loadavg's first three fields: on a shared machine, how
// busy it was besides this run.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], ", ")
}

func cpuModel() string {
	return procField("/proc/cpuinfo", "model name")
}

func memTotal() string {
	v := procField("/proc/meminfo", "MemTotal")
	kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return v
	}
	return fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
}

func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// benchLine is one result line of `go test -bench`.
type benchLine struct {
	name     string
	nsOp     float64
	bytesOp  float64
	allocsOp float64
}

// store runs the store benchmarks in models/ (seeded at 10,000 and 100,000
// sessions) three times each.
func (r *report) store(ctx context.Context, moduleRoot string) error {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "3", "-benchtime", "200ms", "./models/")
	cmd.Dir = moduleRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test -bench ./models/: %v\n%s", err, out)
	}
	r.storeRes = parseBench(string(out))
	return nil
}

func parseBench(out string) []benchLine {
	var res []benchLine
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		b := benchLine{name: strings.TrimPrefix(f[0], "Benchmark")}
		// Drop the -GOMAXPROCS suffix.
		if i := strings.LastIndexByte(b.name, '-'); i > 0 {
			if _, err := strconv.Atoi(b.name[i+1:]); err == nil {
				b.name = b.name[:i]
			}
		}
		for j := 2; j+1 < len(f); j += 2 {
			v, err := strconv.ParseFloat(f[j], 64)
			if err != nil {
				continue
			}
			switch f[j+1] {
			case "ns/op":
				b.nsOp = v
			case "B/op":
				b.bytesOp = v
			case "allocs/op":
				b.allocsOp = v
			}
		}
		res = append(res, b)
	}
	return res
}

// dur writes 2m rather than 2m0s.
func dur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return s
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Benchmarks\n\n")
	p("Written by `make bench` (`go run ./internal/bench`) on %s; the run took %s. ", r.started.UTC().Format("2006-01-02"), r.elapsed.Round(time.Second))
	p("Every figure below is from that one run on this machine; rerun `make bench` to check them on yours.\n\n")
	p("| machine | |\n|---|---|\n")
	for _, f := range r.facts {
		p("| %s | %s |\n", f[0], f[1])
	}
	p("| load average at the end | %s |\n\n", r.endLoad)
	r.writeGoals(&b)
	p("## Method\n\n")
	p(`- **Real parts only.** The real Claude Code binary (npm @anthropic-ai/claude-code, the version above) runs against
  the project's fake Messages API (internal/fakeapi) on 127.0.0.1, which answers every turn at once (an echo of the
  question, no delay), so the figures show the cost of everything around the model, not the model. Remote teams run
  on two Debian OpenSSH servers (/usr/sbin/sshd) started by the harness on 127.0.0.1 with their own host and user
  keys; "remote" therefore means a real SSH handshake, real sshd sessions and a real login shell, but no network
  latency. Nothing leaves loopback.
- **Baselines in the same run.** Each comparison interleaves its baseline and its subject sample by sample, rotating
  which goes first in each round (A/B, B/A, …), so that changes in the machine's load fall on both. The ratio is
  median(subject) / median(baseline). The overhead is the per-round difference subject − baseline, summarised.
- **Spread.** Latencies are given as median (p10–p90, n). p10/p90 interpolate between order statistics, so with
  n < 10 they are close to the min and max.
- **Bounds.** Every loop has a sample count (warm %d per arm, cold %d per arm, %d rounds of 20 concurrent asks) and a
  wall-clock cap per phase (2–5 min, and 15 min for the run); a phase that hits its cap reports what it has.
  Samples that failed are counted as errors and left out of the latencies.
- **Which code path.** The full product path is an MCP client (go-sdk) that starts `+"`switchboard mcp --as bench`"+`
  (stdio), which relays to a real `+"`switchboard serve`"+` daemon over its unix socket (in the warm phases it calls
  send_message with a progress token in _meta, as Claude Code calls every MCP tool, so the daemon sends its accepted
  notice and relays Claude's progress as it does for Claude Code); the daemon runs remote teams
  through its ssh_config (settings.sshConfig) and one pooled SSH connection per host, as a user's daemon does. Warm and
  cold asks are measured on that path, locally and over SSH. The broker in process (broker.New with local and
  remote.Pool runners: the same broker, queue, store and runner code the daemon runs, minus the MCP hop and the
  daemon's socket) is measured beside it, so the difference between the two rows is what the MCP relay and the socket
  cost. The 20-teams load test drives both: the broker in process beside its floor, and the daemon through 20
  `+"`switchboard mcp`"+` proxies; the harness reads Claude's turn time from the broker's answer, to separate switchboard's
  own time from Claude's. Each row says which path it measures.
- **Per hop.** Latency per hop comes from the hop marks (section 1, "Per hop"): each hop of the full product path (proxy
  relay, unix socket, MCP decode and encode, queue, worker, store) is timed on every warm sample. CPU per hop comes from
  runtime/pprof profiles of the `+"`switchboard mcp`"+` proxy and the daemon taken during warm asks (section 1) and
  during the 20-teams rounds (section 3): the binary writes one while SWITCHBOARD_CPUPROFILE is set, between SIGUSR1
  and SIGUSR2. Each sample is counted in the hop of its leaf-most recognisable frame (store, SSH, JSON, MCP, syscalls,
  GC, scheduler, broker, daemon).
- **Own time.** The broker times Claude's turn from writing the stream-json user line to Claude's stdin until it has read
  the turn's `+"`result`"+` line (broker/claude.go, the reply's `+"`duration`"+`): the same start and end points as the floor, which
  times its own write of the same kind of line until its read of the result. switchboard's own time per ask is the
  latency minus that turn, so Claude's spread of tens of milliseconds drops out of it. The reply's `+"`duration`"+` is in
  whole milliseconds (truncated), so the harness takes the same interval from the hop marks (below) at microsecond
  resolution, and shows how the two differ. Caveats: Claude's turn inside switchboard is not the floor's process (its
  flags differ, and the broker's user line carries a header of about 80 bytes), so the table shows Claude's turn in
  switchboard's process beside the floor; what the broker does on assistant events during the turn (progress relay)
  counts as Claude's time; over SSH the floor's turn includes the OpenSSH client process and the broker's the in-process
  x/crypto/ssh channel. Ratio B = (floor median + own-time median) / floor median is what switchboard would measure if
  Claude's turn in its process took as long as the floor's.
- **Hop marks.** Each switchboard process records the wall-clock time at which an ask passes each hop
  (internal/hoptrace, on while SWITCHBOARD_HOPS is set; about 20 marks per ask, a clock read and an append each). The
  harness collects them (SIGUSR2) after each warm phase and gives each mark to the sample whose window holds it: the
  harness asks one question at a time.
- **Standby.** Section 2b runs its own daemon, so that its standby processes (which count against maxProcesses and
  run ahead of need) stay out of every other phase's process counts and memory.
- **Start timeouts raised.** Every config the harness writes sets spawnTimeout and sessionInitTimeout to %s
  (defaults %s and %s) and responseTimeout to %s (default %s): starting 20 Claude Code processes at once on 2 cores
  takes longer than the defaults allow, and a figure must not include a retry or a timeout. The load test's untimed
  warm-up also starts its processes 4 at a time. No timed ask comes near these limits.
- **Memory** is VmRSS of the `+"`switchboard serve`"+` process from /proc/PID/status, read one second after it went quiet.
  Claude Code processes are separate processes and are not in the daemon's RSS; their own RSS is shown for scale.
- Timings are reported, never asserted.

`, r.limits.warm, r.limits.cold, r.limits.rounds, dur(startTimeout), dur(configs.DefaultSpawnTimeout),
		dur(configs.DefaultSessionInitTimeout), dur(responseTimeout), dur(configs.DefaultResponseTimeout))

	p("## 1. Warm ask round trip\n\n")
	p("One question to a team whose Claude Code process is already running and idle, until its answer is back. ")
	p("The floor writes the same stream-json user line straight into an already running `claude -p --input-format stream-json` ")
	p("process and reads until its `result` line: nothing can be faster than that.\n\n")
	comparisonTable(&b, "Local", r.warmLocalArms)
	if len(r.warmLocalArms) > 0 {
		ownTable(&b, "Local", r.warmLocalArms[0], r.warmLocalOwn)
	}
	comparisonTable(&b, "Over SSH", r.warmSSHArms)
	if len(r.warmSSHArms) > 0 {
		ownTable(&b, "Over SSH", r.warmSSHArms[0], r.warmSSHOwn)
	}
	hopTable(&b, append(append([]*ownArm(nil), r.warmLocalOwn...), r.warmSSHOwn...))
	r.writeFlags(&b)
	r.writeHot(&b)

	p("## 2. Cold ask: the team has no Claude process\n\n")
	p("Each sample asks as a new asking team (a new session, so a new `--session-id` process), then stops that process untimed, ")
	p("so every sample starts Claude Code from nothing. The baseline is what a person does by hand per question: ")
	p("`cd path && claude -p` locally, and `ssh host 'cd path && claude -p'` with the OpenSSH client remotely, ")
	p("message on stdin. Both start a whole Claude Code process per message, as does switchboard's cold path, so the ")
	p("ratio shows what switchboard adds to (or saves on) a start.\n\n")
	if r.coldLocal != nil {
		comparisonTable(&b, "Local", []*arm{r.coldLocalBase, r.coldLocal})
		comparisonTable(&b, "Remote", []*arm{r.coldSSHBase, r.coldProdNewConn, r.coldProdOpenConn, r.coldNewConn, r.coldOpenConn})
		p("SSH connections accepted by sshd per sample (from its log): by hand %s; full product path: new connection %s, open connection %s; ",
			perSample(r.coldSSHBase), perSample(r.coldProdNewConn), perSample(r.coldProdOpenConn))
		p("in process: new connection %s, open connection %s. ", perSample(r.coldNewConn), perSample(r.coldOpenConn))
		p("For a new connection the daemon's host (bench-c, used by that team alone) is restarted after each sample, untimed, ")
		p("which ends the daemon's connection as a host reboot would; the in-process broker gets a new connection pool instead.\n\n")
		p("What each remote cold path contains: by hand, a TCP connection, key exchange and authentication, then one sshd ")
		p("session running `cd && claude -p`. switchboard on a new connection: the same connection setup, then an SFTP session ")
		p("(to find the home directory and check whether the session's transcript exists, which decides `--session-id` ")
		p("or `--resume`) and an exec session that runs the user's login shell, which execs Claude Code. On an open connection ")
		p("the connection setup and the SFTP session are already paid for. Each sshd session costs a fork and a shell on the ")
		p("host, so on a slow host the extra SFTP session shows.\n\n")
	}

	r.writeStandby(&b)

	p("## 3. Twenty teams asked at once\n\n")
	if l := r.loadRes; l != nil {
		hosts := make([]string, 0, len(l.perHost))
		for h, n := range l.perHost {
			hosts = append(hosts, fmt.Sprintf("%d on %s", n, h))
		}
		sort.Strings(hosts)
		p("%d teams: 10 local and 10 remote (%s), each with a warm Claude Code process, asked one question each at the same moment; ", l.teams, strings.Join(hosts, ", "))
		p("%d rounds per side, interleaved. Subject: the in-process broker (broker.Send, local runner and one pooled SSH connection per host). ", l.rounds)
		p("Baseline: 20 Claude Code processes written to directly, the 10 remote ones each behind its own OpenSSH `ssh` session ")
		p("(the floor of section 1, twenty times). Throughput is 20 answers / time until the last one of a round arrived. ")
		p("With 2 cores and 20 Claude Code turns at once, the machine's CPU is the limit for both sides.\n\n")
		p("| | baseline: direct | switchboard | ratio |\n|---|---|---|---|\n")
		p("| throughput, answers/s (median, min–max over rounds) | %s | %s | %s |\n", rates(l.baseRate), rates(l.subRate), rateRatio(l.subRate, l.baseRate))
		p("| latency p50 | %s | %s | %s |\n", ms(l.base.quantile(0.5)), ms(l.sub.quantile(0.5)), ratioQ(l.sub, l.base, 0.5))
		p("| latency p99 | %s | %s | %s |\n", ms(l.base.quantile(0.99)), ms(l.sub.quantile(0.99)), ratioQ(l.sub, l.base, 0.99))
		p("| overhead p50 (switchboard p50 − baseline p50) | | %s | |\n", ms(l.sub.quantile(0.5)-l.base.quantile(0.5)))
		p("| overhead p99 (switchboard p99 − baseline p99) | | %s | |\n", ms(l.sub.quantile(0.99)-l.base.quantile(0.99)))
		p("| switchboard's own time per ask (latency − Claude's turn as the broker timed it), p50 / p99 | | %s / %s | |\n", ms(l.own.quantile(0.5)), ms(l.own.quantile(0.99)))
		p("| asks measured | %d | %d | |\n", len(l.base), len(l.sub))
		p("| errors | %d | %d | |\n", l.baseErrs, l.subErrs)
		p("| SSH connections opened | %d (one per remote process) | **%d for 2 hosts** (remote.Pool.Dials over the whole run) | |\n", l.floorConns, l.dials)
		p("| SSH connections opened during the timed rounds (sshd log) | %d in total for both sides | | |\n\n", l.loadConns)
		if l.lastErr != "" {
			p("Last error: `%s`\n\n", oneLine(l.lastErr))
		}
		l.stages.write(p)
	}
	r.writeDaemonLoad(&b)
	r.writeNice(&b)

	p("## 4. Memory and the store\n\n")
	m := r.mem
	p("Resident memory of the real `switchboard serve` daemon (full product path):\n\n")
	p("| daemon state | VmRSS |\n|---|---|\n")
	p("| idle, just started, empty store | %s |\n", mib(m.idle))
	if m.live > 0 {
		p("| 20 live Claude processes (20 local teams asked at once through `switchboard mcp`; %d child processes counted; the SSH connection to bench-a from the earlier phases is still open) | %s |\n", m.liveProcs, mib(m.live))
	}
	if m.seeded > 0 {
		p("| idle, just started, %d session records in its SQLite store | %s |\n", m.seededSessions, mib(m.seeded))
		p("| the same, after a team_status call that reads every team's sessions | %s |\n", mib(m.seededAfter))
	}
	if len(m.claude) > 0 {
		s := make(samples, len(m.claude))
		for i, v := range m.claude {
			s[i] = time.Duration(v)
		}
		p("\nFor scale, one idle Claude Code process (not part of the figures above): median %s (min %s, max %s, n=%d). ",
			mib(int64(s.median())), mib(int64(s.quantile(0))), mib(int64(s.quantile(1))), len(s))
		p("The daemon with 20 live processes is %.2f× the size of one of them.\n", float64(m.live)/float64(s.median()))
	}
	p("\n")
	storeTable(&b, r.storeRes)
	r.writeFleet(&b)

	if len(r.failures) > 0 {
		p("## Phases that did not complete\n\n")
		for _, f := range r.failures {
			p("- %s\n", oneLine(f))
		}
		p("\n")
	}
	return b.String()
}

// comparisonTable renders arms[0] as the baseline and the rest against it.
func comparisonTable(b *strings.Builder, title string, arms []*arm) {
	if len(arms) == 0 {
		return
	}
	base := arms[0]
	fmt.Fprintf(b, "**%s**\n\n| | path measured | latency: median (p10–p90, n) | overhead vs baseline | ratio | errors |\n|---|---|---|---|---|---|\n", title)
	for i, a := range arms {
		over, rat := "baseline", "1.00×"
		if i > 0 {
			over, rat = a.s.minus(base.s).summary(), ratio(a.s, base.s)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %d |\n", a.name, a.path, a.s.summary(), over, rat, a.errs)
	}
	for _, a := range arms {
		if a.lastErr != "" {
			fmt.Fprintf(b, "\n%s, last error: `%s`\n", a.name, oneLine(a.lastErr))
		}
	}
	b.WriteString("\n")
}

func perSample(a *arm) string {
	n := len(a.s) + a.errs
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(a.opened)/float64(n))
}

func rates(r []float64) string {
	if len(r) == 0 {
		return "–"
	}
	c := append([]float64(nil), r...)
	sort.Float64s(c)
	return fmt.Sprintf("%.1f (%.1f–%.1f)", medianF(c), c[0], c[len(c)-1])
}

func medianF(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func rateRatio(sub, base []float64) string {
	if len(sub) == 0 || len(base) == 0 {
		return "–"
	}
	s := append([]float64(nil), sub...)
	bb := append([]float64(nil), base...)
	sort.Float64s(s)
	sort.Float64s(bb)
	return fmt.Sprintf("%.2f×", medianF(s)/medianF(bb))
}

func ratioQ(sub, base samples, q float64) string {
	if len(sub) == 0 || base.quantile(q) <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(sub.quantile(q))/float64(base.quantile(q)))
}

// storeTable shows each store operation at two store sizes, sessions
// (10,000 and 100,000) and messages (100,000 and 1,000,000), and how its
// cost grows with the table.
// storeKey names one store benchmark's series: its dimension and
// operation ("sessions/ListSessions recent") and the store's size.
type storeKey struct{ op, size string }

// storeSizes are the sizes each dimension's growth is taken between.
var storeSizes = map[string][2]string{"sessions": {"10000", "100000"}, "messages": {"100000", "1000000"}}

// storeSeries groups the store benchmarks' ns/op by series, with the
// allocations of each and every dimension's ("" for none) operations in
// order of appearance.
func storeSeries(lines []benchLine) (ns map[storeKey][]float64, allocs map[storeKey]float64, ops map[string][]string) {
	type key = storeKey
	ns, allocs, ops = map[key][]float64{}, map[key]float64{}, map[string][]string{}
	seen := map[string]bool{}
	for _, l := range lines {
		op, dim, size := l.name, "", ""
		for _, d := range []string{"sessions", "messages"} {
			i := strings.Index(l.name, "/"+d+"=")
			if i < 0 {
				continue
			}
			rest := l.name[i+len(d)+2:]
			dim, size, op = d, rest, l.name[:i]
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				size, op = rest[:j], l.name[:i]+" "+strings.ReplaceAll(rest[j+1:], "_", " ")
			}
			op = strings.TrimPrefix(op, "Messages ")
		}
		k := key{dim + "/" + op, size}
		ns[k] = append(ns[k], l.nsOp)
		allocs[k] = l.allocsOp
		if !seen[k.op] {
			seen[k.op] = true
			ops[dim] = append(ops[dim], op)
		}
	}
	return ns, allocs, ops
}

// storeGrowth is the median ns/op of an operation at the larger size over
// that at the smaller one, or 0 when either is missing.
func storeGrowth(ns map[storeKey][]float64, dim, op string) float64 {
	sz := storeSizes[dim]
	small, large := ns[storeKey{dim + "/" + op, sz[0]}], ns[storeKey{dim + "/" + op, sz[1]}]
	if len(small) == 0 || len(large) == 0 {
		return 0
	}
	return medianOf(large) / medianOf(small)
}

func storeTable(b *strings.Builder, lines []benchLine) {
	if len(lines) == 0 {
		return
	}
	type key = storeKey
	ns, allocs, ops := storeSeries(lines)
	fmt.Fprintf(b, "Store operations (`go test -bench . -benchmem -count 3 ./models/`, SQLite in WAL mode on disk; median of 3 runs, min–max in brackets).\n\n")
	growth := func(dim, op string) string {
		if g := storeGrowth(ns, dim, op); g > 0 {
			return fmt.Sprintf("%.2f×", g)
		}
		return "–"
	}
	fmt.Fprintf(b, "By sessions (spread over 100 asking teams; every list returns the same rows at both sizes: 50, or one team's last hour, 36):\n\n")
	fmt.Fprintf(b, "| operation | 10,000 sessions | 100,000 sessions | growth for 10× the rows |\n|---|---|---|---|\n")
	for _, op := range ops["sessions"] {
		small, large := ns[key{"sessions/" + op, "10000"}], ns[key{"sessions/" + op, "100000"}]
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", op, nsRange(small), nsRange(large), growth("sessions", op))
	}
	for _, op := range ops[""] {
		fmt.Fprintf(b, "| %s (empty store) | %s (%.0f allocs) | | |\n", op, nsRange(ns[key{"/" + op, ""}]), allocs[key{"/" + op, ""}])
	}
	b.WriteString("\nFilters: recent = newest first; team = one asking team; to = one answering team; status = sessions in error; since-1h = used in the last hour; team-since-1h = both.\n\n")
	if len(ops["messages"]) > 0 {
		fmt.Fprintf(b, "By messages (answered messages from 500 asking teams to 20 teams, as a long history leaves them; the warm ask's statements run on one of its pairs):\n\n")
		fmt.Fprintf(b, "| operation | 100,000 messages | 1,000,000 messages | growth for 10× the rows |\n|---|---|---|---|\n")
		for _, op := range ops["messages"] {
			small, large := ns[key{"messages/" + op, "100000"}], ns[key{"messages/" + op, "1000000"}]
			fmt.Fprintf(b, "| %s | %s | %s | %s |\n", op, nsRange(small), nsRange(large), growth("messages", op))
		}
		b.WriteString("\nMessageCounts team is team_status's count of a team's messages by status; RecentMessages is the dashboard's list (newest 100, of a team or of all); ListMessages pair is `sessions show`; QueueDepths and PendingPairs are what the dashboard and a starting broker read.\n")
	}
}

func medianOf(v []float64) float64 {
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	return medianF(c)
}

func nsRange(v []float64) string {
	if len(v) == 0 {
		return "–"
	}
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	f := func(x float64) string {
		if x < 1e6 {
			return fmt.Sprintf("%.0f µs", x/1e3)
		}
		return fmt.Sprintf("%.2f ms", x/1e6)
	}
	return fmt.Sprintf("%s (%s–%s)", f(medianF(c)), f(c[0]), f(c[len(c)-1]))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
