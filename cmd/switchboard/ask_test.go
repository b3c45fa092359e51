package main

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

// A daemon killed while `switchboard ask` waits: the id is already on
// stderr, the failure says the message was accepted and how to fetch it,
// and `switchboard status ID` shows the answer once a new daemon has
// settled it.
func TestAskDaemonKilledKeepsID(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	needsRealClaude(t)
	w := newWorld(t, "web", "api")
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	w.api.Script(func(req fakeapi.Request) fakeapi.Reply {
		if !req.HasToolResult && strings.Contains(req.UserText, "slow question") {
			select {
			case arrived <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-time.After(60 * time.Second):
			}
		}
		return fakeapi.DefaultReply(req)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--config", w.config, "ask", "--from", "web", "api", "slow question")
	cmd.Dir, cmd.Env = w.root, w.env
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	idLine := regexp.MustCompile(`message (\d+) accepted`)
	waitFor(t, "ask to print the message id", func() bool { return idLine.MatchString(stderr.String()) })
	id := idLine.FindStringSubmatch(stderr.String())[1]
	select {
	case <-arrived:
	case <-time.After(60 * time.Second):
		t.Fatal("the slow question never reached Claude")
	}
	if err := syscall.Kill(w.daemonPID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("ask after the daemon died: %v, want exit 1", err)
	}
	l := lines(stderr.String())
	if stdout.String() != "" || len(l) != 2 || !strings.Contains(l[1], "message "+id+" was accepted and is kept") ||
		!strings.Contains(l[1], "switchboard status "+id) {
		t.Fatalf("ask after the daemon died: stdout %q, stderr %q; want the id and how to fetch it", stdout.String(), stderr.String())
	}
	close(release)
	var r result
	waitFor(t, "switchboard status "+id+" to show the answer", func() bool {
		r = w.run("", "status", id)
		return r.code == 0 && strings.Contains(r.stdout, ": answered")
	})
	// The fake model echoes what it was asked last: after the crash, the
	// broker's request for the lost answer.
	if !strings.Contains(r.stdout, "ECHO: ") || !strings.Contains(r.stdout, "message "+id) {
		t.Errorf("message %s: stdout %q, stderr %q", id, r.stdout, r.stderr)
	}
	if r := w.run("", "status", "999"); r.code != 1 || !strings.Contains(r.stderr, "no message with id 999") {
		t.Errorf("unknown id: exit %d, stderr %q", r.code, r.stderr)
	}
}

// Through `switchboard mcp`, as Claude Code calls it: a daemon killed
// mid-call leaves an error that names the accepted message, so the model
// fetches it instead of sending it twice.
func TestProxyErrorCarriesAcceptedID(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	needsRealClaude(t)
	w := newWorld(t, "web", "api")
	release := make(chan struct{})
	defer close(release)
	arrived := make(chan struct{}, 1)
	w.api.Script(func(req fakeapi.Request) fakeapi.Reply {
		if !req.HasToolResult && strings.Contains(req.UserText, "slow question") {
			select {
			case arrived <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-time.After(60 * time.Second):
			}
		}
		return fakeapi.DefaultReply(req)
	})
	var mu sync.Mutex
	var accepted string
	sess := w.proxy("web", &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
		mu.Lock()
		defer mu.Unlock()
		if m := regexp.MustCompile(`accepted message (\d+)`).FindStringSubmatch(req.Params.Message); m != nil && accepted == "" {
			accepted = m[1]
		}
	}})
	done := make(chan error, 1)
	go func() {
		params := &mcp.CallToolParams{Name: "send_message", Arguments: map[string]any{"toTeam": "api", "message": "slow question"}}
		params.SetProgressToken("p1")
		_, err := sess.CallTool(context.Background(), params)
		done <- err
	}()
	select {
	case <-arrived:
	case <-time.After(60 * time.Second):
		t.Fatal("the slow question never reached Claude")
	}
	mu.Lock()
	id := accepted
	mu.Unlock()
	if id == "" {
		t.Fatal("no progress notification carried the message id")
	}
	if err := syscall.Kill(w.daemonPID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "message "+id+" was accepted and is kept") || !strings.Contains(err.Error(), "messageId="+id) {
			t.Fatalf("in-flight call after SIGKILL = %v, want it to name message %s", err, id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the in-flight call was not answered after the daemon died")
	}
}
