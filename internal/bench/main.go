// Command bench measures switchboard against the real Claude Code binary and
// the fake Messages API, locally and over Debian's sshd on loopback, and
// writes the method and the figures to a Markdown file (BENCHMARKS.md).
//
// Every comparison runs its baseline and its subject interleaved in the same
// run, and every loop is bounded in count and in wall-clock time. It reports;
// it asserts nothing about speed.
//
//	SWITCHBOARD_CLAUDE=/path/to/claude go run ./internal/bench -out BENCHMARKS.md
//
// -only runs some phases; the standalone ones (fleet) set up what they need
// themselves, so with only those selected the product daemon and the
// in-process broker of the other phases are not started:
//
//	SWITCHBOARD_CLAUDE=/path/to/claude go run ./internal/bench -only fleet -out fleet.md
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/hoptrace"
)

func main() {
	var (
		out      = flag.String("out", "BENCHMARKS.md", "Markdown file to write")
		warmN    = flag.Int("warm", 30, "warm asks per arm")
		coldN    = flag.Int("cold", 6, "cold asks per arm")
		rounds   = flag.Int("rounds", 6, "rounds of 20 concurrent asks per arm")
		maxTotal = flag.Duration("max", 15*time.Minute, "wall-clock cap for the whole run")
		store    = flag.Bool("store", true, "run the store benchmarks in models/")
		only     = flag.String("only", "", "comma-separated phase keys to run (warm-local, warm-ssh, flags, hot, cold, standby, load, load-daemon, nice, mem-live, mem-seeded, store, fleet); default all")
		nice     = flag.String("nice", "0,10,10+ssh", "nicenesses of the local teams' Claude processes that the nice phase compares; N+ssh also lowers the SSH teams' (on this machine) to N (needs CAP_SYS_NICE)")
		baseline = flag.String("baseline", "", "a switchboard binary (built from another revision) whose full product path the warm phases ask beside this tree's, interleaved: an A/B of the two builds in one run")
		baseEnv  = flag.String("baseline-env", "", "space-separated KEY=VALUE pairs added to the baseline daemon's environment (-baseline), e.g. GOGC=400 with this tree's binary as the baseline: a runtime setting measured as an A/B")
		baseProx = flag.String("baseline-proxy-env", "", "as -baseline-env, for the baseline's `switchboard mcp` proxy")
		noProg   = flag.Bool("no-progress-arm", false, "add to the warm phases a full-product-path arm whose calls carry no progress token (no accepted notice, no relayed progress), to show what those cost")
	)
	flag.Parse()
	log.SetFlags(log.Ltime)
	// The in-process broker marks the hops its asks pass (hops.go); the
	// switchboard processes do so through SWITCHBOARD_HOPS (world.go).
	hoptrace.Enable()
	claude := os.Getenv("SWITCHBOARD_CLAUDE")
	if claude == "" {
		log.Fatal("set SWITCHBOARD_CLAUDE to the claude binary (make bench does)")
	}
	root, err := moduleRoot()
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *maxTotal)
	defer cancel()
	var nices []niceSpec
	for _, f := range strings.Split(*nice, ",") {
		f = strings.TrimSpace(f)
		num, ssh := strings.CutSuffix(f, "+ssh")
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || n > 19 {
			log.Fatalf("-nice %q: want comma-separated nicenesses from 0 to 19, each optionally with +ssh", *nice)
		}
		nices = append(nices, niceSpec{n: n, ssh: ssh})
	}
	r, err := run(ctx, claude, root, limits{warm: *warmN, cold: *coldN, rounds: *rounds, store: *store, only: *only, nices: nices, baseline: *baseline, baseEnv: strings.Fields(*baseEnv), baseProxyEnv: strings.Fields(*baseProx), noProgress: *noProg})
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, []byte(r.markdown()), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %s", *out)
}

// limits are the sample counts; each phase also has a wall-clock cap.
type limits struct {
	warm, cold, rounds int
	store              bool
	only               string     // phase keys, comma-separated; "" runs all
	nices              []niceSpec // the nice phase's arms
	// baseline is a switchboard binary of another revision: the warm
	// phases add its full product path as an arm (A/B of two builds).
	baseline string
	baseEnv  []string // added to the baseline daemon's environment
	// baseProxyEnv is added to the baseline proxy's environment.
	baseProxyEnv []string
	// noProgress adds the warm phases' arm without a progress token.
	noProgress bool
}

func (l limits) runs(key string) bool {
	if l.only == "" {
		return true
	}
	for _, k := range strings.Split(l.only, ",") {
		if strings.TrimSpace(k) == key {
			return true
		}
	}
	return false
}

// standalone are the phases that set up everything they use.
var standalone = map[string]bool{"fleet": true}

// onlyStandalone reports whether every selected phase is standalone, so
// the shared setup can be skipped.
func (l limits) onlyStandalone() bool {
	if l.only == "" {
		return false
	}
	for _, k := range strings.Split(l.only, ",") {
		if !standalone[strings.TrimSpace(k)] {
			return false
		}
	}
	return true
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run from inside the switchboard module")
	}
	return filepath.Dir(mod), nil
}

func run(ctx context.Context, claude, moduleRoot string, lim limits) (*report, error) {
	start := time.Now()
	rep := &report{started: start, limits: lim}
	if err := rep.machine(ctx, claude); err != nil {
		return nil, err
	}
	log.Print("setting up: fake API, three sshd on 127.0.0.1, switchboard binary")
	w, err := newWorld(ctx, claude, moduleRoot)
	if err != nil {
		return nil, err
	}
	defer w.Close()

	// The shared setup of every phase but the standalone ones.
	var (
		prodLocal []teamSpec
		prodCfg   string
		d         *daemonProc
		cl        *client
		b         *inproc
		base      *basePath
	)
	if !lim.onlyStandalone() {
		// The product daemon, reached through `switchboard mcp`: local teams,
		// two remote teams on bench-a (warm asks, and cold asks on the open
		// connection) and one on bench-c, which is restarted after each of its
		// cold asks so that the next one needs a new connection.
		// "bench" asks, "mem" and "load" ask in their phases, and each cold
		// sample asks as a new team: a connection may ask only as its own
		// configured team, so they are all teams (never asked themselves).
		prodLocal = []teamSpec{{name: "bench"}, {name: "warm"}, {name: "cold"}}
		for i := range 20 {
			prodLocal = append(prodLocal, teamSpec{name: fmt.Sprintf("m%02d", i)})
		}
		prodTeams := append(prodLocal[:len(prodLocal):len(prodLocal)],
			teamSpec{name: "rwarm", host: w.hosts[0].Alias},
			teamSpec{name: "rcold", host: w.hosts[0].Alias},
			teamSpec{name: "rnew", host: w.hosts[2].Alias})
		prodTeams = append(prodTeams, teamSpec{name: "mem"}, teamSpec{name: "load"})
		for i := range lim.cold {
			prodTeams = append(prodTeams, teamSpec{name: coldFrom(i)})
		}
		// The 20-teams test through the daemon: m00..m09 and these ten.
		for i := range 10 {
			prodTeams = append(prodTeams, teamSpec{name: fmt.Sprintf("dr%02d", i), host: w.hosts[i/5].Alias})
		}
		prodCfg, err = w.config("product", prodTeams)
		if err != nil {
			return nil, err
		}
		d, err = w.startDaemon(ctx, prodCfg)
		if err != nil {
			return nil, err
		}
		defer d.Stop()
		if err := rep.memIdle(ctx, d); err != nil {
			return nil, err
		}
		cl, err = w.connect(ctx, prodCfg, "bench")
		if err != nil {
			return nil, err
		}
		defer cl.Close()

		// The in-process broker: 10 local teams, 5 on each SSH host, and one
		// remote team that gets a new SSH connection for each cold start.
		var inTeams []teamSpec
		for i := range 10 {
			inTeams = append(inTeams, teamSpec{name: fmt.Sprintf("l%02d", i)})
		}
		for i := range 10 {
			inTeams = append(inTeams, teamSpec{name: fmt.Sprintf("r%02d", i), host: w.hosts[i/5].Alias})
		}
		inTeams = append(inTeams, teamSpec{name: "rnew", host: w.hosts[0].Alias})
		inCfg, err := w.config("inproc", inTeams)
		if err != nil {
			return nil, err
		}
		b, err = w.startInproc(ctx, inCfg, "rnew")
		if err != nil {
			return nil, err
		}
		defer b.Close()

		if lim.baseline != "" && (lim.runs("warm-local") || lim.runs("warm-ssh")) {
			if base, err = w.startBase(ctx, lim.baseline, lim.baseEnv, lim.baseProxyEnv); err != nil {
				return nil, err
			}
			defer base.Close()
		}
	}

	phases := []struct {
		key, name string
		cap       time.Duration
		f         func(context.Context) error
	}{
		{"warm-local", "warm asks, local", 2 * time.Minute, func(ctx context.Context) error { return rep.warmLocal(ctx, w, cl, d, b, base) }},
		{"warm-ssh", "warm asks, SSH", 2 * time.Minute, func(ctx context.Context) error { return rep.warmSSH(ctx, w, cl, d, b, base) }},
		{"flags", "session flag order", 1 * time.Minute, func(ctx context.Context) error { return rep.flagOrder(ctx, w) }},
		{"hot", "warm ask CPU profile", 1 * time.Minute, func(ctx context.Context) error { return rep.hotPath(ctx, w, cl, d) }},
		{"cold", "cold asks", 4 * time.Minute, func(ctx context.Context) error { return rep.coldAsks(ctx, w, prodCfg, cl, b) }},
		{"standby", "first asks with standby", 2 * time.Minute, func(ctx context.Context) error { return rep.standbyFirst(ctx, w) }},
		{"load", "20 teams at once", 4 * time.Minute, func(ctx context.Context) error { return rep.load(ctx, w, b) }},
		{"load-daemon", "20 teams at once through the daemon", 4 * time.Minute, func(ctx context.Context) error { return rep.loadDaemon(ctx, w, prodCfg, d) }},
		{"nice", "20 teams at once by niceness of local Claude", 4 * time.Minute, func(ctx context.Context) error { return rep.niceLoad(ctx, w, prodCfg, d, b, lim.nices) }},
		{"mem-live", "memory with 20 live processes", 2 * time.Minute, func(ctx context.Context) error { return rep.memLive(ctx, w, prodCfg, cl, d) }},
		{"mem-seeded", "memory with 100,000 sessions", 2 * time.Minute, func(ctx context.Context) error { return rep.memSeeded(ctx, w, prodLocal) }},
		{"store", "store benchmarks", 5 * time.Minute, func(ctx context.Context) error { return rep.store(ctx, moduleRoot) }},
		{"fleet", "Postgres store and a second broker", 3 * time.Minute, func(ctx context.Context) error { return rep.fleet(ctx, w) }},
	}
	for _, ph := range phases {
		if (ph.key == "store" && !lim.store) || !lim.runs(ph.key) {
			continue
		}
		log.Printf("phase: %s", ph.name)
		pctx, cancel := context.WithTimeout(ctx, ph.cap)
		err := ph.f(pctx)
		cancel()
		if err != nil {
			// A failed phase is reported, and the rest still run.
			log.Printf("phase %s: %v", ph.name, err)
			rep.failures = append(rep.failures, fmt.Sprintf("%s: %v", ph.name, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	rep.elapsed = time.Since(start)
	rep.endLoad = loadAvg()
	return rep, nil
}
