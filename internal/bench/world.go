package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/daemon"
	"github.com/switchboard-mcp/switchboard/hosts"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
	"github.com/switchboard-mcp/switchboard/local"
	"github.com/switchboard-mcp/switchboard/models"
	"github.com/switchboard-mcp/switchboard/remote"
)

// world is everything one benchmark run sets up under a private temporary
// directory: the fake API, three sshd hosts, the built switchboard binary
// and the environments Claude Code runs with.
type world struct {
	root   string
	claude string
	bin    string // the switchboard binary built for this run
	api    *fakeapi.Server
	// hosts are bench-a and bench-b, shared by many teams, and bench-c,
	// which the daemon's new-connection team has to itself.
	hosts     []*sshdtest.Server
	sshConfig string
	// localEnv is the complete environment of local Claude processes and
	// of the daemon: a private HOME and CLAUDE_CONFIG_DIR and the fake API.
	localEnv []string
	// remoteEnv is what remote teams add to the SSH host's environment;
	// its HOME stands for the remote user's home.
	remoteEnv map[string]string
}

func newWorld(ctx context.Context, claude, moduleRoot string) (*world, error) {
	root, err := os.MkdirTemp("", "sbbench")
	if err != nil {
		return nil, err
	}
	w := &world{root: root, claude: claude}
	if w.api, err = fakeapi.Start(); err != nil {
		w.Close()
		return nil, err
	}
	// Answers are instant (no SLEEP), so every figure shows overhead.
	w.api.Script(fakeapi.DefaultReply)

	w.bin = filepath.Join(root, "bin", "switchboard")
	build := exec.CommandContext(ctx, "go", "build", "-o", w.bin, "./cmd/switchboard")
	build.Dir = moduleRoot
	if out, err := build.CombinedOutput(); err != nil {
		w.Close()
		return nil, fmt.Errorf("build switchboard: %v\n%s", err, out)
	}

	localHome, remoteHome := filepath.Join(root, "home-local"), filepath.Join(root, "home-remote")
	for _, d := range []string{filepath.Join(localHome, ".claude"), filepath.Join(remoteHome, ".claude"), w.teamDir(""), filepath.Dir(w.profilePrefix()), filepath.Dir(w.hopsPrefix())} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			w.Close()
			return nil, err
		}
	}
	w.localEnv = append([]string{
		"HOME=" + localHome,
		"CLAUDE_CONFIG_DIR=" + filepath.Join(localHome, ".claude"),
		"PATH=" + os.Getenv("PATH"),
		"TMPDIR=" + os.TempDir(),
		"LANG=C.UTF-8",
		"CLAUDE_CODE_MAX_RETRIES=0",
		// switchboard processes write a CPU profile on SIGUSR1..SIGUSR2.
		"SWITCHBOARD_CPUPROFILE=" + w.profilePrefix(),
		// ... and their hop marks on SIGUSR2 (hops.go).
		"SWITCHBOARD_HOPS=" + w.hopsPrefix(),
	}, w.api.Env()...)
	if t := os.Getenv("SWITCHBOARD_TRACE"); t != "" {
		// An execution trace over the same window (cmd/switchboard/profile.go),
		// for finding where asks wait; off by default, as tracing costs CPU.
		w.localEnv = append(w.localEnv, "SWITCHBOARD_TRACE="+t)
	}
	w.remoteEnv = map[string]string{
		"HOME":                    remoteHome,
		"CLAUDE_CONFIG_DIR":       filepath.Join(remoteHome, ".claude"),
		"CLAUDE_CODE_MAX_RETRIES": "0",
	}
	for _, kv := range w.api.Env() {
		k, v, _ := strings.Cut(kv, "=")
		w.remoteEnv[k] = v
	}

	var cfg strings.Builder
	for _, alias := range []string{"bench-a", "bench-b", "bench-c"} {
		h, err := sshdtest.Launch(ctx, filepath.Join(root, "sshd", alias), sshdtest.Options{Alias: alias})
		if err != nil {
			w.Close()
			return nil, err
		}
		w.hosts = append(w.hosts, h)
		cfg.WriteString(h.ConfigBlock())
	}
	w.sshConfig = filepath.Join(root, "ssh_config")
	if err := os.WriteFile(w.sshConfig, []byte(cfg.String()), 0o600); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// Close stops what the world started and removes its files.
func (w *world) Close() {
	for _, h := range w.hosts {
		h.Stop()
	}
	if w.api != nil {
		w.api.Close()
	}
	os.RemoveAll(w.root)
}

// teamDir is a team's project directory (on this machine, which is also
// the SSH hosts' machine).
func (w *world) teamDir(team string) string {
	d := filepath.Join(w.root, "teams", team)
	os.MkdirAll(d, 0o700)
	return d
}

// teamSpec is one team of a generated config.
type teamSpec struct {
	name    string
	host    string // ssh alias, or "" for a local team
	standby int    // standby Claude processes
}

// The timeouts of every config the harness writes. Starts get more time
// than the defaults because 20 Claude Code processes starting at once on 2
// cores take longer than those allow, and a benchmark must not measure a
// retry or a timeout.
const (
	startTimeout    = 2 * time.Minute // spawnTimeout and sessionInitTimeout
	responseTimeout = 3 * time.Minute
)

// config writes a switchboard config with the given teams and returns its
// path. Every process the benchmark needs must fit under maxProcesses.
func (w *world) config(name string, teams []teamSpec) (string, error) {
	var y strings.Builder
	fmt.Fprintf(&y, "settings:\n  database: { path: %s }\n  socket: %s\n  sshConfig: %s\n",
		filepath.Join(w.root, name, "switchboard.db"), filepath.Join(w.root, name, "broker.sock"), w.sshConfig)
	y.WriteString("  healthCheckInterval: 1h\n  idleTimeout: 1h\n  maxProcesses: 64\n  logLevel: warn\n")
	fmt.Fprintf(&y, "  spawnTimeout: %s\n  sessionInitTimeout: %s\n  responseTimeout: %s\nteams:\n",
		startTimeout, startTimeout, responseTimeout)
	for _, t := range teams {
		fmt.Fprintf(&y, "  %s:\n    path: %s\n    claudePath: %s\n", t.name, w.teamDir(t.name), w.claude)
		if t.standby > 0 {
			fmt.Fprintf(&y, "    standby: %d\n", t.standby)
		}
		if t.host != "" {
			fmt.Fprintf(&y, "    ssh: %s\n    env:\n", t.host)
			for k, v := range w.remoteEnv {
				fmt.Fprintf(&y, "      %s: %q\n", k, v)
			}
		}
	}
	path := filepath.Join(w.root, name, "switchboard.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(y.String()), 0o600)
}

// benchRunners is the host wiring of an in-process broker: local teams run
// here, remote teams share one SSH connection per host from pool, and the
// team named freshTeam gets its own pool that renew replaces, so that each of
// its cold starts pays for a new SSH connection.
type benchRunners struct {
	opts      hosts.Options // Local, SSHConfig, LocalConfigDir
	freshTeam string

	pool *remote.Pool // the shared pool of hosts

	mu    sync.Mutex
	hosts *hosts.Hosts
	fresh *hosts.Hosts
}

func (r *benchRunners) newHosts() *hosts.Hosts {
	o := r.opts
	o.Pool = remote.NewPool(quietLog)
	return hosts.New(o)
}

func (r *benchRunners) For(t *configs.Team) (broker.Host, error) {
	r.mu.Lock()
	hs := r.hosts
	if t.Name == r.freshTeam {
		hs = r.fresh
	}
	r.mu.Unlock()
	tm, err := hs.For(t)
	if tm == nil {
		return nil, err
	}
	return tm, err
}

// renew closes the fresh team's pool (and its connection) and starts an
// empty one.
func (r *benchRunners) renew() {
	r.mu.Lock()
	old := r.fresh
	r.fresh = r.newHosts()
	r.mu.Unlock()
	old.Close()
}

func (r *benchRunners) Close() {
	r.hosts.Close()
	r.fresh.Close()
}

// quietLog keeps the components' logs out of the benchmark's output.
var quietLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// inproc is a broker running inside the harness, wired as the daemon wires
// it, minus the MCP hop; its runners can force a new SSH connection.
type inproc struct {
	*broker.Broker
	store   *models.Store
	runners *benchRunners
	stages  *stageLog // on during the load phase's timed rounds
}

func (w *world) startInproc(ctx context.Context, cfgPath, freshTeam string) (*inproc, error) {
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	store, err := models.Open(ctx, models.Options{Path: cfg.Settings.Database.Path, DSN: cfg.Settings.Database.DSN, Logger: quietLog})
	if err != nil {
		return nil, err
	}
	run := &benchRunners{freshTeam: freshTeam, opts: hosts.Options{
		Local:     local.New(local.Options{Env: w.localEnv, Logger: quietLog}),
		SSHConfig: w.sshConfig, LocalConfigDir: envValue(w.localEnv, "CLAUDE_CONFIG_DIR"),
	}}
	run.pool = remote.NewPool(quietLog)
	shared := run.opts
	shared.Pool = run.pool
	run.hosts, run.fresh = hosts.New(shared), run.newHosts()
	// Fleet is used only on a shared (Postgres) store: the fleet phase.
	fleet := broker.FleetOptions{Name: cfg.Settings.Fleet.Name, LeaseTTL: cfg.Settings.Fleet.LeaseTTL.Duration, ConfigFile: cfgPath}
	stages := &stageLog{}
	b, err := broker.New(ctx, cfg, broker.Options{Store: store, Hosts: run, Logger: quietLog, Fleet: fleet, Stages: stages.record})
	if err != nil {
		run.Close()
		store.Close()
		return nil, err
	}
	return &inproc{Broker: b, store: store, runners: run, stages: stages}, nil
}

// sqlStats are the store's connection pool counters.
func (p *inproc) sqlStats() sql.DBStats {
	db, err := p.store.DB().DB()
	if err != nil {
		return sql.DBStats{}
	}
	return db.Stats()
}

func (p *inproc) Close() {
	p.Broker.Close()
	p.runners.Close()
	p.store.Close()
}

// ask sends one message and waits for its answer, which must echo the
// message; turn is the time Claude took, as the broker measured it.
func (p *inproc) ask(ctx context.Context, from, to, text string) (turn time.Duration, err error) {
	r, err := p.Send(ctx, broker.SendRequest{From: from, To: to, Text: text, Wait: 2 * time.Minute})
	if err != nil {
		return 0, err
	}
	if r.Status != models.MessageAnswered {
		return 0, fmt.Errorf("ask %s->%s: %s %s", from, to, r.Status, r.Error)
	}
	if !strings.Contains(r.Answer, text) {
		return 0, fmt.Errorf("ask %s->%s: answer %q does not echo the question", from, to, r.Answer)
	}
	return r.Duration, nil
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// daemonProc is a real `switchboard serve` process.
type daemonProc struct {
	cmd    *exec.Cmd
	cfg    string
	socket string
	done   chan struct{}
}

func (w *world) startDaemon(ctx context.Context, cfgPath string) (*daemonProc, error) {
	return w.startDaemonBin(ctx, w.bin, cfgPath)
}

// startDaemonBin is startDaemon with another switchboard binary (the
// baseline of an A/B run, see -baseline) and env added to its environment.
func (w *world) startDaemonBin(ctx context.Context, bin, cfgPath string, env ...string) (*daemonProc, error) {
	cfg, err := configs.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(cfgPath), "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config", cfgPath, "serve")
	cmd.Env, cmd.Stdout, cmd.Stderr = append(w.localEnv[:len(w.localEnv):len(w.localEnv)], env...), logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start switchboard serve: %w", err)
	}
	d := &daemonProc{cmd: cmd, cfg: cfgPath, socket: cfg.Settings.Socket, done: make(chan struct{})}
	go func() { cmd.Wait(); close(d.done) }()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for !daemon.Running(ctx, d.socket) {
		select {
		case <-d.done:
			return nil, errors.New("switchboard serve exited at start; see daemon.log")
		case <-ctx.Done():
			d.Stop()
			return nil, fmt.Errorf("switchboard serve did not listen on %s: %w", d.socket, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return d, nil
}

func (d *daemonProc) Pid() int { return d.cmd.Process.Pid }

// Stop stops the daemon as a user would (SIGTERM), killing it if it hangs.
func (d *daemonProc) Stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// client is an MCP client talking to the daemon through `switchboard mcp`,
// the path Claude Code uses.
type client struct {
	sess *mcp.ClientSession
	pid  int // the `switchboard mcp` proxy
}

func (w *world) connect(ctx context.Context, cfgPath, as string) (*client, error) {
	return w.connectBin(ctx, w.bin, cfgPath, as)
}

// connectBin is connect through another switchboard binary's proxy, with
// env added to the proxy's environment.
func (w *world) connectBin(ctx context.Context, bin, cfgPath, as string, env ...string) (*client, error) {
	cmd := exec.Command(bin, "--config", cfgPath, "mcp", "--as", as)
	cmd.Dir, cmd.Env = w.root, append(w.localEnv[:len(w.localEnv):len(w.localEnv)], env...)
	c := mcp.NewClient(&mcp.Implementation{Name: "switchboard-bench", Version: "1"}, nil)
	sess, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to switchboard mcp: %w", err)
	}
	return &client{sess: sess, pid: cmd.Process.Pid}, nil
}

func (c *client) Close() { c.sess.Close() }

// call runs a tool and fails on a tool error.
func (c *client) call(ctx context.Context, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	res, err := c.sess.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tool, err)
	}
	if res.IsError {
		return nil, fmt.Errorf("%s: tool error: %s", tool, resultText(res))
	}
	return res, nil
}

// ask is send_message; the answer must echo the question.
func (c *client) ask(ctx context.Context, from, to, text string) error {
	res, err := c.call(ctx, "send_message", map[string]any{"toTeam": to, "fromTeam": from, "message": text, "timeout": 120000})
	if err != nil {
		return err
	}
	if got := resultText(res); !strings.Contains(got, text) {
		return fmt.Errorf("send_message to %s: answer %q does not echo the question", to, got)
	}
	return nil
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// rss is a process's resident set size from /proc/<pid>/status (VmRSS).
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
