package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

// Several Claude Code windows, each with its own `switchboard mcp`, share
// one daemon: answers go to the right asker, one session has one Claude
// process, and different sessions run at the same time.
func TestManyProxiesShareOneDaemon(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	needsRealClaude(t)
	w := newWorld(t, "web", "api", "db", "ops")

	// Two asks that can only both be answered "OVERLAP" if each is in the
	// fake API while the other is: a broker that serialised the pairs would
	// leave the first one waiting alone until its partner gave up.
	var (
		mu      sync.Mutex
		arrived int
		both    = make(chan struct{})
	)
	w.api.Script(func(req fakeapi.Request) fakeapi.Reply {
		if req.HasToolResult || !strings.Contains(req.UserText, "RENDEZVOUS") {
			return fakeapi.DefaultReply(req)
		}
		mu.Lock()
		arrived++
		if arrived == 2 {
			close(both)
		}
		mu.Unlock()
		select {
		case <-both:
			return fakeapi.Reply{Text: "OVERLAP in " + req.CWD}
		case <-time.After(45 * time.Second):
			return fakeapi.Reply{Text: "ALONE in " + req.CWD}
		}
	})

	const askers = 3
	sessions := make([]*mcp.ClientSession, askers)
	var wg sync.WaitGroup
	for i := range askers {
		wg.Go(func() { sessions[i] = w.proxy("web", nil) })
	}
	wg.Wait()

	answers := make([]string, askers)
	errs := make([]error, askers)
	for i, s := range sessions {
		wg.Go(func() {
			res, err := send(context.Background(), s, "api", fmt.Sprintf("question from asker %d", i))
			if err == nil && res.IsError {
				err = fmt.Errorf("tool error: %s", text(res))
			}
			if err == nil {
				answers[i] = text(res)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i := range askers {
		if errs[i] != nil {
			t.Fatalf("asker %d: %v", i, errs[i])
		}
		for j := range askers {
			mine := strings.Contains(answers[i], fmt.Sprintf("question from asker %d", j))
			if mine != (i == j) {
				t.Errorf("asker %d got %q", i, answers[i])
			}
		}
		if !strings.Contains(answers[i], "CWD: "+w.teamDir("api")) {
			t.Errorf("asker %d's answer was not written in api's directory: %q", i, answers[i])
		}
	}
	_, argv := w.claudeStarts()
	if len(argv) != 1 {
		t.Fatalf("%d claude processes started for one session, want 1:\n%s", len(argv), strings.Join(argv, "\n"))
	}

	overlap := make([]string, 2)
	for i, to := range []string{"db", "ops"} {
		wg.Go(func() {
			res, err := send(context.Background(), sessions[i], to, "RENDEZVOUS with the other team")
			if err != nil {
				overlap[i] = err.Error()
				return
			}
			overlap[i] = text(res)
		})
	}
	wg.Wait()
	for i, to := range []string{"db", "ops"} {
		if want := "OVERLAP in " + w.teamDir(to); overlap[i] != want {
			t.Errorf("ask to %s = %q, want %q: the two pairs did not run at the same time", to, overlap[i], want)
		}
	}

	log, _ := os.ReadFile(filepath.Join(filepath.Dir(w.socket), "daemon.log"))
	if n := strings.Count(string(log), "switchboard daemon listening"); n != 1 {
		t.Errorf("%d daemons started for %d proxies, want 1:\n%s", n, askers, log)
	}
}

// Killing the daemon mid-answer fails that call clearly; the next call
// starts a new daemon and the session goes on under the same id.
func TestDaemonKilledMidAsk(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	needsRealClaude(t)
	w := newWorld(t, "web", "api")
	// The slow answer takes until the daemon has been killed.
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	w.api.Script(func(req fakeapi.Request) fakeapi.Reply {
		if !req.HasToolResult && strings.Contains(req.UserText, "slow question") {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-time.After(60 * time.Second):
			}
		}
		return fakeapi.DefaultReply(req)
	})
	sess := w.proxy("web", nil)
	ctx := context.Background()

	res, err := send(ctx, sess, "api", "remember the number 7")
	if err != nil || res.IsError {
		t.Fatalf("first ask: %v %s", err, text(res))
	}
	first := w.daemonPID()
	if first == 0 || !alive(first) {
		t.Fatalf("no daemon after the first ask (pid %d)", first)
	}

	done := make(chan error, 1)
	go func() {
		_, err := send(ctx, sess, "api", "slow question")
		done <- err
	}()
	select {
	case <-arrived:
	case <-time.After(60 * time.Second):
		t.Fatal("the slow question never reached Claude")
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "the switchboard daemon stopped while handling this request") ||
			!strings.Contains(err.Error(), "message_status") {
			t.Fatalf("in-flight call after SIGKILL = %v, want the daemon-stopped error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the in-flight call was not answered after the daemon died")
	}
	// The kernel takes the daemon's Claude processes down with it, so none
	// can write into the session beside the next daemon's.
	pids, _ := w.claudeStarts()
	for _, pid := range pids {
		waitFor(t, fmt.Sprintf("claude %d to die with its daemon", pid), func() bool { return !alive(pid) })
	}
	close(release)

	res, err = send(ctx, sess, "api", "what was the number?")
	if err != nil || res.IsError {
		t.Fatalf("ask after the daemon died: %v %v", err, res)
	}
	if !strings.Contains(text(res), "what was the number?") {
		t.Errorf("answer after restart = %q", text(res))
	}
	second := w.daemonPID()
	if second == 0 || second == first || !alive(second) {
		t.Fatalf("daemon pid after restart = %d (before: %d), want a new live daemon", second, first)
	}
	_, argv := w.claudeStarts()
	if len(argv) != 2 {
		t.Fatalf("claude starts = %q, want the first and the resumed one", argv)
	}
	id1, resumed1 := sessionArg(argv[0])
	id2, resumed2 := sessionArg(argv[1])
	if id1 == "" || resumed1 || id2 != id1 || !resumed2 {
		t.Errorf("claude starts = %q, want --session-id X then --resume X", argv)
	}
}

// The daemon in the foreground: its socket and directory are private, a
// second one is refused, a stale socket is replaced, SIGTERM stops it.
func TestServeLifecycle(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	w := newWorld(t, "web", "api")
	// A crashed daemon's socket: the file is there, nobody listens.
	if err := os.MkdirAll(filepath.Dir(w.socket), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", w.socket)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()

	cmd := exec.Command(binary, "--config", w.config, "serve")
	cmd.Env = w.env
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	waitFor(t, "the daemon to answer", func() bool {
		c, err := net.Dial("unix", w.socket)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	for path, want := range map[string]fs.FileMode{filepath.Dir(w.socket): 0o700, w.socket: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %o, want %o", path, fi.Mode().Perm(), want)
		}
	}
	if fi, _ := os.Lstat(w.socket); fi.Mode()&fs.ModeSocket == 0 {
		t.Errorf("%s is not a socket", w.socket)
	}

	r := w.run("", "serve")
	want := fmt.Sprintf("switchboard: a switchboard daemon is already running on %s (pid %d)\n", w.socket, cmd.Process.Pid)
	if r.code != 1 || r.stderr != want || r.stdout != "" {
		t.Errorf("second serve: exit %d, stderr %q, stdout %q; want exit 1 and %q", r.code, r.stderr, r.stdout, want)
	}
	if r := w.run("", "ask", "api", "still there?"); r.code != 0 || !strings.Contains(r.stdout, "still there?") {
		t.Errorf("ask after the refused second serve: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	for _, p := range []string{w.socket, w.socket + ".lock"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after shutdown (%v)", p, err)
		}
	}
	pids, _ := w.claudeStarts()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("claude %d still runs after the daemon stopped", pid)
		}
	}
}
