package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/claudetest"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/internal/fakeclaude/fakeclaudebin"
	"github.com/switchboard-mcp/switchboard/internal/pgtest"
	"github.com/switchboard-mcp/switchboard/internal/poll"
	"github.com/switchboard-mcp/switchboard/internal/testbin"
)

// binary is the switchboard executable the tests run, built once.
var binary string

// quickExit is in the environment of every switchboard the tests start. A
// -race binary otherwise sleeps a second before it exits (the race runtime's
// atexit_sleep_ms, default 1000), and the tests run it hundreds of times;
// races are still reported, as they are found, and still fail the run (exit
// status 66).
const quickExit = "GORACE=atexit_sleep_ms=0"

func TestMain(m *testing.M) {
	flag.Parse() // for testing.Short in buildFlags
	dir, err := os.MkdirTemp("", "sbbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchboard")
	exe, err := testbin.Build("github.com/switchboard-mcp/switchboard/cmd/switchboard",
		append([]string{"-ldflags", "-X main.version=v0.0.0-test"}, buildFlags()...)...)
	if err == nil {
		err = os.WriteFile(binary, exe, 0o700)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", strings.TrimPrefix(quickExit, "GORACE="))
	}
	// One throw-away PostgreSQL cluster for the whole binary (started on
	// the first pgtest.DSN), one database per test.
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildFlags are the go build flags of the switchboard under test.
//
// The full run builds it as this test binary was built: with -race, and
// with the same -gcflags (the Makefile's leave modernc.org's SQLite
// uninstrumented; built without them, the daemon would need SQLite compiled
// a second way). -short builds it without -race: the tests start about 90
// switchboards, and under -race each costs three times the CPU (12 of the
// package's 20 s). What -short gives up is small: a race in a detached
// daemon is reported only to its daemon.log, which no test reads, so only
// races in the short-lived CLI commands (exit status 66) were caught; the
// code the daemon runs concurrently is raced in process by the broker and
// daemon packages' own -short tests, and the full run races the binary.
func buildFlags() []string {
	if !raceEnabled || testing.Short() {
		return nil
	}
	flags := []string{"-race"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-gcflags" && s.Value != "" {
				flags = append(flags, "-gcflags="+s.Value)
			}
		}
	}
	return flags
}

// world is a user's machine for one test: a config with local teams, a
// fake Messages API, the real claude behind a wrapper that logs every start,
// and a daemon socket in a short temp dir.
type world struct {
	t       *testing.T
	root    string
	config  string
	socket  string
	starts  string // the wrapper's log: "PID ARGS" per claude start
	api     *fakeapi.Server
	env     []string
	claude  string // the real binary
	mu      sync.Mutex
	cleanup []func()
}

func newWorld(t *testing.T, teams ...string) *world {
	t.Helper()
	return newWorldWith(t, worldClaude(t), teams...)
}

// newWorldWith is newWorld with the teams running claude (the real one or
// the fake).
func newWorldWith(t *testing.T, claude string, teams ...string) *world {
	t.Helper()
	root, err := os.MkdirTemp("", "sbw")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, root: root, claude: claude}
	t.Cleanup(func() { t.Logf("fake api closed at %s", time.Now().Format("15:04:05.000")) })
	w.api = fakeapi.New(t)
	w.config = filepath.Join(root, "switchboard.yaml")
	w.socket = filepath.Join(root, "run", "broker.sock")
	w.starts = filepath.Join(root, "starts.log")
	wrapper := filepath.Join(root, "bin", "claude")
	mustWrite(t, wrapper, fmt.Sprintf("#!/bin/sh\necho \"$$ $*\" >> %q\nexec %q \"$@\"\n", w.starts, claude), 0o755)

	var y strings.Builder
	// sessionInitTimeout bounds a hang only: a real Claude Code start took
	// over the 30 s default under CPU load, failing a test that asserts
	// nothing about start-up time.
	fmt.Fprintf(&y, "settings:\n  database: { path: %s }\n  socket: %s\n  healthCheckInterval: 1h\n  sessionInitTimeout: 3m\nteams:\n",
		filepath.Join(root, "state", "switchboard.db"), w.socket)
	for _, team := range teams {
		dir := w.teamDir(team)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&y, "  %s:\n    path: %s\n    claudePath: %s\n    description: the %s team\n", team, dir, wrapper, team)
	}
	mustWrite(t, w.config, y.String(), 0o600)
	w.env = append(claudetest.Env(t, w.api), "CLAUDE_CODE_MAX_RETRIES=0", quickExit)
	t.Cleanup(func() {
		t0 := time.Now()
		w.stopDaemon()
		t.Logf("daemon stopped in %s", time.Since(t0))
		w.killClaudes()
		if t.Failed() || os.Getenv("SB_SHOW_DAEMON_LOG") != "" {
			if log, err := os.ReadFile(filepath.Join(root, "run", "daemon.log")); err == nil {
				t.Logf("daemon.log:\n%s", log)
			}
		}
		os.RemoveAll(root)
	})
	return w
}

// worldClaude is the claude the teams run: the real Claude Code (on the fake
// Messages API), or under -short the fake claude, which answers the same
// way without an API and starts in milliseconds.
func worldClaude(t *testing.T) string {
	if testing.Short() {
		return fakeclaudebin.Build(t)
	}
	return claudetest.Binary(t)
}

// needsRealClaude skips a test under -short: it scripts the Messages API or
// checks what only the real Claude Code does.
func needsRealClaude(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs the real Claude Code; the full run has it")
	}
}

func mustWrite(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func (w *world) teamDir(team string) string { return filepath.Join(w.root, "teams", team) }

// result is what a finished command left.
type result struct {
	stdout, stderr string
	code           int
}

// run runs switchboard as a user would, with --config, and waits for it.
func (w *world) run(stdin string, args ...string) result {
	w.t.Helper()
	return w.runIn(w.root, w.env, stdin, args...)
}

func (w *world) runIn(dir string, env []string, stdin string, args ...string) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--config", w.config}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(env[:len(env):len(env)], quickExit)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("run switchboard %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// proxy starts `switchboard mcp --as as` and connects a real MCP client to
// it over its stdio, as Claude Code does.
func (w *world) proxy(as string, opts *mcp.ClientOptions) *mcp.ClientSession {
	w.t.Helper()
	cmd := exec.Command(binary, "--config", w.config, "--log-level", "debug", "mcp", "--as", as)
	cmd.Dir = w.root
	cmd.Env = w.env
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	c := mcp.NewClient(&mcp.Implementation{Name: "test-" + as, Version: "1"}, opts)
	sess, err := c.Connect(context.Background(), &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		w.t.Fatalf("connect to switchboard mcp: %v\nstderr: %s", err, stderr.String())
	}
	w.t.Cleanup(func() {
		sess.Close()
		if w.t.Failed() {
			w.t.Logf("switchboard mcp --as %s stderr:\n%s", as, stderr.String())
		}
	})
	return sess
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemonPID is the pid in the daemon's lock file, 0 when there is none.
func (w *world) daemonPID() int {
	data, err := os.ReadFile(w.socket + ".lock")
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// alive reports whether pid runs (a zombie does not count: a detached
// daemon's parent may be gone, and nobody may reap it).
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// stopDaemon stops a daemon left running, as the user would with kill.
func (w *world) stopDaemon() {
	pid := w.daemonPID()
	if pid == 0 || !alive(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(20 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		w.t.Errorf("daemon %d ignored SIGTERM for 20s", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// claudeStarts returns the argument lines of every conversation process
// the wrapper started (not `--version`), with their pids.
func (w *world) claudeStarts() (pids []int, argv []string) {
	data, _ := os.ReadFile(w.starts)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		pid, args, ok := strings.Cut(line, " ")
		if !ok || !strings.Contains(args, "stream-json") {
			continue
		}
		n, _ := strconv.Atoi(pid)
		pids = append(pids, n)
		argv = append(argv, args)
	}
	return pids, argv
}

func (w *world) killClaudes() {
	pids, _ := w.claudeStarts()
	for _, pid := range pids {
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// sessionArg returns the session id a claude start used and whether it
// resumed it.
func sessionArg(args string) (id string, resumed bool) {
	f := strings.Fields(args)
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "--session-id":
			return f[i+1], false
		case "--resume":
			return f[i+1], true
		}
	}
	return "", false
}

// waitFor polls cond until it holds (see internal/poll).
var waitFor = poll.Until

// text is a tool result's text; "" for none (the call failed).
func text(res *mcp.CallToolResult) string {
	if res == nil {
		return ""
	}
	var sb strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			sb.WriteString(t.Text)
		}
	}
	return sb.String()
}

func send(ctx context.Context, sess *mcp.ClientSession, to, message string) (*mcp.CallToolResult, error) {
	return sess.CallTool(ctx, &mcp.CallToolParams{Name: "send_message", Arguments: map[string]any{"toTeam": to, "message": message}})
}
