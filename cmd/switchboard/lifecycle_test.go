package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// stop, status, restart and the config a daemon serves, through the built
// binary as a user runs them.
func TestLifecycleCommands(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	w := newWorld(t, "web", "api")

	oneErrorLine(t, w.run("", "status"), 1, "not running")
	if r := w.run("", "stop"); r.code != 0 || !strings.Contains(r.stdout, "not running") {
		t.Errorf("stop with no daemon: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	if r := w.run("", "teams"); r.code != 0 {
		t.Fatalf("teams: exit %d, %q", r.code, r.stderr)
	}
	pid := w.daemonPID()
	r := w.run("", "status")
	for _, want := range []string{fmt.Sprintf("pid:        %d", pid), "config:     " + w.config, "socket:     " + w.socket,
		"version:    v0.0.0-test", "teams:      2", "processes:  0", "queue:      0 queued, 0 running"} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("status lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}

	// Another config that names the same socket is refused with the way out.
	other := filepath.Join(w.root, "other", "switchboard.yaml")
	data, _ := os.ReadFile(w.config)
	mustWrite(t, other, string(data), 0o600)
	r = w.runIn(w.root, w.env, "", "--config", other, "teams")
	want := fmt.Sprintf(`the daemon on %s serves %s, not %s; stop it with "switchboard stop --config %s"`, w.socket, w.config, other, w.config)
	if r.code != 1 || !strings.Contains(r.stderr, want) || len(lines(r.stderr)) != 1 {
		t.Errorf("teams with another config: exit %d, stderr %q; want %q", r.code, r.stderr, want)
	}

	r = w.run("", "stop")
	if r.code != 0 || r.stdout != fmt.Sprintf("switchboard daemon: stopped (pid %d)\n", pid) {
		t.Errorf("stop: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if alive(pid) {
		t.Errorf("daemon %d still runs after stop", pid)
	}
	if _, err := os.Lstat(w.socket); !os.IsNotExist(err) {
		t.Errorf("socket left after stop: %v", err)
	}

	r = w.run("", "restart")
	m := regexp.MustCompile(`started \(pid (\d+)\)`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || m[1] != fmt.Sprint(w.daemonPID()) {
		t.Fatalf("restart: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	// kill, then at once a command: it waits for the old daemon to go
	// instead of failing with "already running".
	second := w.daemonPID()
	if err := syscall.Kill(second, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := w.run("", "teams"); r.code != 0 {
		t.Errorf("teams right after kill: exit %d, %q", r.code, r.stderr)
	}
	if third := w.daemonPID(); third == second || !alive(third) {
		t.Errorf("daemon after kill+teams: pid %d (killed %d)", third, second)
	}
}

func TestInitAndVersion(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	w := newWorld(t)
	dir := filepath.Join(w.root, "my project")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := w.runIn(dir, w.env, "", "init")
	if r.code != 0 || !strings.Contains(r.stdout, `team "my-project"`) {
		t.Fatalf("init: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	cfg := filepath.Join(dir, "switchboard.yaml")
	data, err := os.ReadFile(cfg)
	if err != nil || !strings.Contains(string(data), "  my-project:\n    path: "+dir+"\n") || !strings.Contains(string(data), "# ") {
		t.Fatalf("init wrote %q (%v)", data, err)
	}
	oneErrorLine(t, w.runIn(dir, w.env, "", "init"), 1, "already exists")
	if after, _ := os.ReadFile(cfg); string(after) != string(data) {
		t.Error("a second init changed the file")
	}
	// The written config loads: list its teams without a daemon.
	r = w.runIn(dir, w.env, "", "--config", cfg, "sessions")
	if r.code != 0 {
		t.Errorf("the starter config does not load: exit %d, %q", r.code, r.stderr)
	}

	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := w.run("", args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "switchboard v0.0.0-test (go") {
			t.Errorf("%v: exit %d, %q %q", args, r.code, r.stdout, r.stderr)
		}
	}
	r = w.run("", "status", "1", "2")
	if r.code != 2 || !strings.HasSuffix(r.stderr, "(see switchboard status --help)\n") {
		t.Errorf("status with two args: exit %d, %q", r.code, r.stderr)
	}
}

// `switchboard mcp --http` prints the headers that open the HTTP endpoint;
// without them it refuses.
func TestMCPHTTPHeaders(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	w := newWorld(t, "web")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data, _ := os.ReadFile(w.config)
	mustWrite(t, w.config, strings.Replace(string(data), "settings:\n", "settings:\n  httpAddr: "+addr+"\n", 1), 0o600)

	r := w.run("", "mcp", "--http")
	var h map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &h) != nil || !strings.HasPrefix(h["Authorization"], "Bearer ") {
		t.Fatalf("mcp --http: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`
	for _, withToken := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(initialize))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if withToken {
			req.Header.Set("Authorization", h["Authorization"])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: 401, true: 200}[withToken]; resp.StatusCode != want {
			t.Errorf("token %v: status %d, want %d", withToken, resp.StatusCode, want)
		}
	}
}
