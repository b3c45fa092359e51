package brokerview_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/dashboard"
	"github.com/switchboard-mcp/switchboard/dashboard/brokerview"
	"github.com/switchboard-mcp/switchboard/hosts"
	"github.com/switchboard-mcp/switchboard/internal/fakeclaude/fakeclaudebin"
	"github.com/switchboard-mcp/switchboard/local"
	"github.com/switchboard-mcp/switchboard/models"
)

// env is a real broker (local processes of the fake claude, a real SQLite
// file) with its dashboard served on a loopback port as the daemon serves
// it: dashboard.Serve, the listener's AllowedHosts, a fresh token.
type env struct {
	b     *broker.Broker
	store *models.Store
	base  string // http://127.0.0.1:PORT
	token string
	root  string
}

func newEnv(t *testing.T, teams ...string) *env {
	t.Helper()
	root := t.TempDir()
	bin := fakeclaudebin.Build(t)
	configDir := filepath.Join(root, "claude-config")
	var y strings.Builder
	fmt.Fprintf(&y, "settings:\n  healthCheckInterval: 1h\n  permissionTimeout: 10m\nteams:\n")
	for _, team := range teams {
		dir := filepath.Join(root, "teams", team)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&y, "  %s:\n    path: %q\n    claudePath: %q\n    description: the %s team\n", team, dir, bin, team)
	}
	cfg, err := configs.Parse([]byte(y.String()), filepath.Join(root, "switchboard.yaml"))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y.String())
	}
	ctx := context.Background()
	store, err := models.Open(ctx, models.Options{Path: filepath.Join(root, "switchboard.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ring := broker.NewLogRing(500)
	log := slog.New(ring.Handler(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})))
	hs := hosts.New(hosts.Options{Local: local.New(local.Options{Env: append(os.Environ(), "CLAUDE_CONFIG_DIR="+configDir)}), LocalConfigDir: configDir})
	b, err := broker.New(ctx, cfg, broker.Options{Store: store, Logger: log, Logs: ring,
		Hosts: broker.HostsFunc(func(t *configs.Team) (broker.Host, error) {
			tm, err := hs.For(t)
			if tm == nil {
				return nil, err
			}
			return tm, err
		})})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	token, err := dashboard.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	h := dashboard.New(dashboard.Options{
		Backend: brokerview.New(brokerview.Options{Broker: b, Store: store, Logs: ring}),
		Token:   token, AllowedHosts: dashboard.AllowedHosts(ln.Addr()), Logger: log.With("component", "dashboard"),
	})
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- dashboard.Serve(sctx, ln, h) }()
	t.Cleanup(func() {
		// Shutdown with pages still open must not hang: their /events end
		// with the server's base context.
		stop()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("dashboard.Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("dashboard.Serve did not return after its context ended")
		}
		b.Close()
		store.Close()
	})
	return &env{b: b, store: store, base: "http://" + ln.Addr().String(), token: token, root: root}
}

// get fetches path with the bearer token and decodes JSON into out.
func (e *env) get(t *testing.T, path string, out any) {
	t.Helper()
	resp := e.do(t, http.MethodGet, path, "", true)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// post sends a JSON action and returns the status and the decoded answer.
func (e *env) post(t *testing.T, path, body string) (int, map[string]any) {
	t.Helper()
	resp := e.do(t, http.MethodPost, path, body, true)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (e *env) do(t *testing.T, method, path, body string, withToken bool) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if withToken {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// pair finds the from->to pair in a Teams answer.
func pairOf(teams []dashboard.Team, from, to string) (dashboard.Pair, bool) {
	for _, tm := range teams {
		for _, p := range tm.Pairs {
			if p.From == from && p.To == to {
				return p, true
			}
		}
	}
	return dashboard.Pair{}, false
}
