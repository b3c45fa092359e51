package main

import (
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/dashboard"
)

// enableDashboard sets settings.dashboard to a free loopback port and
// returns it.
func (w *world) enableDashboard() string {
	w.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		w.t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data, _ := os.ReadFile(w.config)
	mustWrite(w.t, w.config, strings.Replace(string(data), "settings:\n", "settings:\n  dashboard: "+addr+"\n", 1), 0o600)
	return addr
}

// `switchboard dashboard` as a new user meets it: off, it says which line
// to add where; on, it starts the daemon and prints a URL that opens the
// page, while the address without the token gets 401.
func TestDashboardCommand(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon, dashboard port
	w := newWorld(t, "web", "api")

	r := w.run("", "dashboard")
	for _, want := range []string{"the dashboard is off: add this line under settings: in " + w.config, "\n  dashboard: 127.0.0.1:1616\n", "switchboard restart"} {
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("dashboard while off: exit %d, stderr %q; want %q", r.code, r.stderr, want)
		}
	}

	// Turned on while a daemon runs: that daemon serves no page, and the
	// command says how to get one.
	if r := w.run("", "teams"); r.code != 0 {
		t.Fatalf("teams: exit %d, %q", r.code, r.stderr)
	}
	addr := w.enableDashboard()
	oneErrorLine(t, w.run("", "dashboard"), 1, "serves no dashboard")
	if r := w.run("", "dashboard"); !strings.Contains(r.stderr, "run: switchboard restart") {
		t.Errorf("dashboard before the restart: %q, want the way out", r.stderr)
	}
	if r := w.run("", "restart"); r.code != 0 {
		t.Fatalf("restart: exit %d, %q", r.code, r.stderr)
	}
	r = w.run("", "dashboard")
	prefix := "http://" + addr + "/?token="
	if r.code != 0 || !strings.HasPrefix(r.stdout, prefix) || len(lines(r.stdout)) != 1 {
		t.Fatalf("dashboard: exit %d, stdout %q, stderr %q; want one line %s...", r.code, r.stdout, r.stderr, prefix)
	}
	url := strings.TrimSpace(r.stdout)
	tokenFile := dashboard.TokenPath(w.socket)
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file %s: %v, mode %v; want 0600", tokenFile, err, fi.Mode())
	}

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET / without the token: %s, want 401", resp.Status)
	}
	resp, err = noRedirect.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || !resp.Cookies()[0].HttpOnly {
		t.Errorf("GET the printed URL: %s, cookies %v; want 303 with an HttpOnly cookie", resp.Status, resp.Cookies())
	}
	// Another name for this machine is refused (DNS rebinding).
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Host = "evil.example:" + strings.Split(addr, ":")[1]
	if resp, err := noRedirect.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET with Host %s: %v %v; want 403", req.Host, err, resp)
	}

	// A second run finds the same daemon and the same token.
	if again := w.run("", "dashboard"); again.stdout != r.stdout {
		t.Errorf("second dashboard run printed %q, want %q", again.stdout, r.stdout)
	}
	w.run("", "stop")
	if _, err := os.Stat(tokenFile); !os.IsNotExist(err) {
		t.Errorf("token file left after stop: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/"); err == nil {
		t.Error("the dashboard still answers after stop")
	}
}
