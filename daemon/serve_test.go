package daemon

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/internal/poll"
	"github.com/switchboard-mcp/switchboard/models"
)

// shortDir is a temp dir short enough for a unix socket path (t.TempDir
// under a long test name can pass the 104-byte limit).
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sbd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

var noHosts = broker.HostsFunc(func(*configs.Team) (broker.Host, error) {
	return nil, errors.New("no runners in this test")
})

// newBroker returns a broker over a fresh store with two teams whose
// directories exist; nothing in these tests starts a Claude process.
func newBroker(t *testing.T, dir string) *broker.Broker {
	t.Helper()
	return newBrokerLog(t, dir, testLogger(t))
}

// newBrokerLog is newBroker with its logger.
func newBrokerLog(t testing.TB, dir string, log *slog.Logger) *broker.Broker {
	t.Helper()
	for _, d := range []string{"web", "api"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	yaml := "teams:\n  web: { path: " + filepath.Join(dir, "web") + " }\n  api: { path: " + filepath.Join(dir, "api") + " }\n"
	cfg, err := configs.Parse([]byte(yaml), filepath.Join(dir, "switchboard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := models.Open(ctx, models.Options{Path: filepath.Join(dir, "db.sqlite")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	b, err := broker.New(ctx, cfg, broker.Options{Store: store, Hosts: noHosts, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

type served struct {
	socket string
	lock   *Lock
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// serve runs Serve in the background until the test ends (or stop).
func serve(t *testing.T, socket, httpAddr string) *served {
	t.Helper()
	lock, err := Acquire(socket)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	t.Cleanup(func() { lock.Release() })
	b := newBroker(t, filepath.Dir(filepath.Dir(socket)))
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{socket: socket, lock: lock, cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- Serve(ctx, Options{Lock: lock, HTTPAddr: httpAddr, Broker: b, Version: "test", Logger: testLogger(t)})
	}()
	t.Cleanup(func() { s.stop(t) })
	waitFor(t, "the daemon to listen", func() bool { return Running(context.Background(), socket) })
	return s
}

func (s *served) stop(t *testing.T) {
	t.Helper()
	s.once.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(poll.Deadline):
			// A bound for a hang only: Serve first waits out the handlers
			// of requests already read, which a test that floods the
			// daemon leaves by the hundred (seconds of work under -race
			// and load).
			t.Fatal("Serve did not return after cancel")
		}
	})
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, what, cond)
}

// session connects an MCP client through Connect as caller.
func session(t *testing.T, socket, caller string) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	conn, err := Connect(ctx, ConnectOptions{Socket: socket, Caller: caller})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "test"}, nil)
	sess, err := c.Connect(ctx, &mcp.IOTransport{Reader: conn, Writer: conn}, nil)
	if err != nil {
		t.Fatalf("MCP connect: %v", err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

func toolText(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	var sb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			sb.WriteString(tc.Text)
		}
	}
	return sb.String()
}

func TestServeSocketModesAndTools(t *testing.T) {
	dir := shortDir(t)
	socket := filepath.Join(dir, "run", "broker.sock")
	serve(t, socket, "")

	for path, want := range map[string]fs.FileMode{filepath.Dir(socket): 0o700, socket: 0o600, socket + ".lock": 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", path, got, want)
		}
	}
	sess := session(t, socket, "web")
	res, err := sess.CallTool(context.Background(), &mcp.CallToolParams{Name: "list_teams"})
	if err != nil {
		t.Fatal(err)
	}
	if text := toolText(t, res); !strings.Contains(text, `"api"`) || !strings.Contains(text, `"web"`) {
		t.Errorf("list_teams = %s, want both teams", text)
	}
	res, err = sess.CallTool(context.Background(), &mcp.CallToolParams{Name: "session_fork", Arguments: map[string]any{"team": "nope"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(toolText(t, res), "unknown team") {
		t.Errorf("session_fork to an unknown team = %+v, want a tool error naming it", toolText(t, res))
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	dir := shortDir(t)
	socket := filepath.Join(dir, "broker.sock")
	serve(t, socket, "")

	_, err := Acquire(socket)
	var re *RunningError
	if !errors.As(err, &re) {
		t.Fatalf("second Acquire = %v, want a RunningError", err)
	}
	want := "a switchboard daemon is already running on " + socket + " (pid " + strconv.Itoa(os.Getpid()) + ")"
	if err.Error() != want {
		t.Errorf("second Acquire = %q, want %q", err, want)
	}
	// The first daemon still serves.
	if !Running(context.Background(), socket) {
		t.Error("the first daemon stopped answering")
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	dir := shortDir(t)
	socket := filepath.Join(dir, "broker.sock")
	// A crash leaves the socket file behind with nobody listening.
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if Running(context.Background(), socket) {
		t.Fatal("the stale socket still answers")
	}
	s := serve(t, socket, "")
	if !Running(context.Background(), socket) {
		t.Fatal("the daemon does not answer on the replaced socket")
	}
	s.stop(t)
	if _, err := os.Lstat(socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after shutdown: %v", err)
	}
	s.lock.Release()
	if _, err := os.Lstat(socket + ".lock"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file left after release: %v", err)
	}
	// A released lock can be taken again.
	l, err := Acquire(socket)
	if err != nil {
		t.Fatalf("Acquire after release: %v", err)
	}
	l.Release()
}

func TestNonSocketFileLeftAlone(t *testing.T) {
	dir := shortDir(t)
	socket := filepath.Join(dir, "broker.sock")
	if err := os.WriteFile(socket, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	lock, err := Acquire(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	err = Serve(context.Background(), Options{Lock: lock, Broker: newBroker(t, dir)})
	if err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("Serve over a regular file = %v, want a refusal", err)
	}
	if data, _ := os.ReadFile(socket); string(data) != "precious" {
		t.Error("the regular file was changed")
	}
}

func TestHTTPEndpoint(t *testing.T) {
	dir := shortDir(t)
	// Find a free loopback port, then let the daemon take it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	serve(t, filepath.Join(dir, "broker.sock"), addr)

	ctx := context.Background()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "test"}, nil)
	tok, err := ReadToken(filepath.Join(dir, "broker.sock"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: headerTransport{map[string]string{CallerHeader: "web", "Authorization": "Bearer " + tok}}}
	sess, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + addr, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatalf("connect over HTTP: %v", err)
	}
	defer sess.Close()
	res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "list_teams"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(toolText(t, res), `"api"`) {
		t.Errorf("list_teams over HTTP = %s", toolText(t, res))
	}
}

type headerTransport struct{ headers map[string]string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.headers {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestHTTPRefusesNonLoopback(t *testing.T) {
	dir := shortDir(t)
	lock, err := Acquire(filepath.Join(dir, "broker.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:1615", "example.com:80", "nonsense"} {
		err := Serve(context.Background(), Options{Lock: lock, HTTPAddr: addr, Broker: newBroker(t, t.TempDir())})
		if err == nil || !strings.Contains(err.Error(), "httpAddr") {
			t.Errorf("Serve with httpAddr %s = %v, want a refusal", addr, err)
		}
	}
}

func TestConnectWithoutDaemon(t *testing.T) {
	socket := filepath.Join(shortDir(t), "broker.sock")
	_, err := Connect(context.Background(), ConnectOptions{Socket: socket})
	var nr *NotRunningError
	if !errors.As(err, &nr) || !strings.Contains(err.Error(), "switchboard serve") {
		t.Fatalf("Connect with no daemon = %v, want NotRunningError", err)
	}
}

func TestConnectReportsDaemonThatCannotStart(t *testing.T) {
	socket := filepath.Join(shortDir(t), "broker.sock")
	start := func(context.Context) (<-chan error, error) {
		c := make(chan error, 1)
		c <- errors.New("config line 3: teams.api.path is not absolute")
		return c, nil
	}
	_, err := Connect(context.Background(), ConnectOptions{Socket: socket, Start: start})
	if err == nil || !strings.Contains(err.Error(), "teams.api.path is not absolute") {
		t.Fatalf("Connect = %v, want the daemon's own error", err)
	}
}

// Connections of one caller share its MCP server (broker.NewMCPServer) and
// nothing else: each gets its own answers and progress, one leaving does
// not end the other, and another caller's connection keeps its own team.
func TestConnectionsOfOneCaller(t *testing.T) {
	dir := shortDir(t)
	socket := filepath.Join(dir, "run", "broker.sock")
	serve(t, socket, "")
	ctx := context.Background()
	a, b, api := session(t, socket, "web"), session(t, socket, "web"), session(t, socket, "api")
	var wg sync.WaitGroup
	for i, s := range []*mcp.ClientSession{a, b, api, a, b} {
		wg.Go(func() {
			res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "list_teams"})
			if err != nil || res.IsError {
				t.Errorf("connection %d: list_teams: %v %s", i, err, toolText(t, res))
			}
		})
	}
	wg.Wait()
	a.Close() // the client's transport reports its own closed socket
	res, err := b.CallTool(ctx, &mcp.CallToolParams{Name: "list_teams"})
	if err != nil || res.IsError {
		t.Fatalf("the second web connection after the first left: %v", err)
	}
	// fromTeam is the connection's own team, whoever else shares a server.
	res, err = api.CallTool(ctx, &mcp.CallToolParams{Name: "send_message", Arguments: map[string]any{"toTeam": "web", "fromTeam": "web", "message": "hi", "timeout": -1}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(toolText(t, res), `acts as "api"`) {
		t.Errorf("api connection sending as web: %s, want refused as not its team", toolText(t, res))
	}
}
