package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

// setTeam adds yaml lines (indented under the team) to team's config.
func (w *world) setTeam(team, lines string) {
	w.t.Helper()
	cfg, err := os.ReadFile(w.config)
	if err != nil {
		w.t.Fatal(err)
	}
	anchor := "description: the " + team + " team\n"
	y := strings.Replace(string(cfg), anchor, anchor+lines, 1)
	mustWrite(w.t, w.config, y, 0o600)
}

func writeTool(dir, name string) (string, string) {
	path := filepath.Join(dir, name)
	return fakeapi.Tool("Write", map[string]string{"file_path": path, "content": "hi"}), path
}

var approvalRow = regexp.MustCompile(`(?m)^(\d+)\s+(\S+)\s+(\S+)\s+Write\s`)

// waitApproval polls `switchboard approvals` until a Write request of team
// shows and returns its id.
func (w *world) waitApproval(team string) string {
	w.t.Helper()
	var id string
	waitFor(w.t, "switchboard approvals to list a Write request of "+team, func() bool {
		r := w.run("", "approvals")
		if r.code != 0 {
			w.t.Fatalf("approvals: exit %d: %s", r.code, r.stderr)
		}
		for _, m := range approvalRow.FindAllStringSubmatch(r.stdout, -1) {
			if m[2] == team {
				id = m[1]
				return true
			}
		}
		return false
	})
	return id
}

// A new user's path through ask mode, through the built binary and the real
// Claude Code: the Write pauses, `switchboard approvals` and team_status
// show it, `switchboard approve` lets it finish and the file appears;
// `switchboard deny` with a reason gives the model that reason; a team in
// no mode cannot write a canary; sessions show keeps every decision; no
// claude ever runs with --dangerously-skip-permissions.
func TestApprovalsThroughCLI(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	w := newWorld(t, "web", "api", "db")
	w.setTeam("db", "    grantPermission: \"no\"\n")
	sess := w.proxy("web", nil)
	ctx := context.Background()

	if r := w.run("", "approvals"); r.code != 0 || !strings.Contains(r.stdout, "no permission requests are waiting") {
		t.Fatalf("approvals before the daemon: %d %q %q", r.code, r.stdout, r.stderr)
	}

	msg, path := writeTool(w.teamDir("api"), "approved.txt")
	done := make(chan string, 1)
	go func() {
		res, err := send(ctx, sess, "api", msg)
		if err != nil {
			done <- "error: " + err.Error()
			return
		}
		done <- text(res)
	}()
	id := w.waitApproval("api")
	// The request is stored just before the pair is marked waiting.
	waitFor(t, "team_status to show api waiting for permission to Write", func() bool {
		status, _ := callTool(t, sess, "team_status", map[string]any{"team": "api"})
		return strings.Contains(status, `"state": "waiting for permission"`) && strings.Contains(status, `"tool": "Write"`)
	})
	if r := w.run("", "teams"); !regexp.MustCompile(`(?m)^api\s.*waiting for permission`).MatchString(r.stdout) {
		t.Fatalf("switchboard teams does not show api waiting: %q %q", r.stdout, r.stderr)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("the file exists before the approval")
	}
	if r := w.run("", "approve", id); r.code != 0 || !strings.Contains(r.stdout, "allowed request "+id) {
		t.Fatalf("approve %s: %d %q %q", id, r.code, r.stdout, r.stderr)
	}
	if got := <-done; !strings.Contains(got, fakeapi.WriteCreated(path)) {
		t.Fatalf("after approve: %q", got)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("approved, but no file: %v", err)
	}
	if r := w.run("", "approve", id); r.code != 1 || !strings.Contains(r.stderr, "no longer pending") {
		t.Fatalf("approving twice: %d %q", r.code, r.stderr)
	}

	msg, path = writeTool(w.teamDir("api"), "denied.txt")
	go func() {
		res, err := send(ctx, sess, "api", msg)
		if err != nil {
			done <- "error: " + err.Error()
			return
		}
		done <- text(res)
	}()
	id = w.waitApproval("api")
	if r := w.run("", "deny", id, "not on a Friday"); r.code != 0 {
		t.Fatalf("deny: %d %q", r.code, r.stderr)
	}
	if got := <-done; got != fakeapi.ToolResultPrefix+"not on a Friday" {
		t.Fatalf("after deny: %q", got)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("denied, but the file was written")
	}

	msg, canary := writeTool(w.teamDir("db"), "canary.txt")
	res, err := send(ctx, sess, "db", msg)
	if err != nil || !strings.Contains(text(res), "team db does not grant tool permissions") {
		t.Fatalf("db in no mode: %v %q", err, text(res))
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("a team in no mode wrote the canary")
	}

	// sessions show keeps every request with its decision.
	ls := w.run("", "sessions", "ls")
	var sid string
	for _, line := range strings.Split(ls.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "web" && f[1] == "api" {
			sid = f[2]
		}
	}
	show := w.run("", "sessions", "show", sid)
	if show.code != 0 || !strings.Contains(show.stdout, "permission requests:") || !strings.Contains(show.stdout, "allowed") ||
		!strings.Contains(show.stdout, "not on a Friday") || !strings.Contains(show.stdout, "operator user") {
		t.Fatalf("sessions show %s: %q %q", sid, show.stdout, show.stderr)
	}

	_, argv := w.claudeStarts()
	if len(argv) < 2 {
		t.Fatalf("claude starts: %q", argv)
	}
	for _, a := range argv {
		if strings.Contains(a, "--dangerously-skip-permissions") || !strings.Contains(a, "--permission-prompt-tool stdio") {
			t.Errorf("claude started with %q", a)
		}
	}
}

// forward through `switchboard mcp`: the asker's own MCP client is asked
// by elicitation (the proxy relays it), and one that cannot elicit leaves
// the request to `switchboard approvals`.
func TestForwardElicitsThroughProxy(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	w := newWorld(t, "api")
	w.setTeam("api", "    grantPermission: forward\n")
	var mu sync.Mutex
	var asked []string
	answers := []string{"accept", "decline"}
	opts := &mcp.ClientOptions{ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, req.Params.Message)
		a := answers[0]
		answers = answers[1:]
		return &mcp.ElicitResult{Action: a}, nil
	}}
	sess := w.proxyVersion("user", opts, "2025-11-25")
	ctx := context.Background()

	msg, path := writeTool(w.teamDir("api"), "yes.txt")
	res, err := send(ctx, sess, "api", msg)
	if err != nil || !strings.Contains(text(res), fakeapi.WriteCreated(path)) {
		t.Fatalf("accepted: %v %q", err, text(res))
	}
	msg, path2 := writeTool(w.teamDir("api"), "no.txt")
	res, err = send(ctx, sess, "api", msg)
	if err != nil || !strings.Contains(text(res), "did not allow Write: decline") {
		t.Fatalf("declined: %v %q", err, text(res))
	}
	if _, err := os.Stat(path2); err == nil {
		t.Fatal("declined, but the file was written")
	}
	mu.Lock()
	if len(asked) != 2 || !strings.Contains(asked[0], "yes.txt") || !strings.Contains(asked[0], "Team api") {
		t.Fatalf("elicited %q", asked)
	}
	mu.Unlock()

	plain := w.proxy("user", nil)
	msg, path3 := writeTool(w.teamDir("api"), "operator.txt")
	done := make(chan string, 1)
	go func() {
		res, err := send(ctx, plain, "api", msg)
		if err != nil {
			done <- err.Error()
			return
		}
		done <- text(res)
	}()
	id := w.waitApproval("api")
	if r := w.run("", "approve", id); r.code != 0 {
		t.Fatalf("approve: %q", r.stderr)
	}
	if got := <-done; !strings.Contains(got, fakeapi.WriteCreated(path3)) {
		t.Fatalf("fallback to ask: %q", got)
	}
}

// proxyVersion is proxy with the MCP protocol version the client asks for.
func (w *world) proxyVersion(as string, opts *mcp.ClientOptions, version string) *mcp.ClientSession {
	w.t.Helper()
	cmd := exec.Command(binary, "--config", w.config, "mcp", "--as", as)
	cmd.Dir = w.root
	cmd.Env = w.env
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	c := mcp.NewClient(&mcp.Implementation{Name: "test-" + as, Version: "1"}, opts)
	sess, err := c.Connect(context.Background(), &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: version})
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
