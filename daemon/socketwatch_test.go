package daemon

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A running daemon whose socket file was deleted (or replaced) listens
// again, and a client that finds no socket waits for it instead of starting
// a second daemon that would only find the first "already running".
func TestDeletedSocketRecreated(t *testing.T) {
	old := socketCheckInterval
	socketCheckInterval = 100 * time.Millisecond
	t.Cleanup(func() { socketCheckInterval = old })
	socket := filepath.Join(shortDir(t), "broker.sock")
	serve(t, socket, "")

	for _, how := range []string{"deleted", "replaced"} {
		if err := os.Remove(socket); err != nil {
			t.Fatal(err)
		}
		if how == "replaced" {
			// Another socket file nobody serves, as a crashed copy would leave.
			ln, err := net.Listen("unix", socket)
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.UnixListener).SetUnlinkOnClose(false)
			ln.Close()
		}
		start := func(context.Context) (<-chan error, error) {
			return nil, errors.New("started a second daemon while the first one runs")
		}
		ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
		conn, err := Connect(ctx, ConnectOptions{Socket: socket, Caller: "web", Start: start})
		cancel()
		if err != nil {
			t.Fatalf("socket %s: Connect = %v, want the running daemon", how, err)
		}
		conn.Close()
		sess := session(t, socket, "web")
		if _, err := sess.ListTools(context.Background(), nil); err != nil {
			t.Errorf("socket %s: the daemon does not answer MCP: %v", how, err)
		}
	}
}

// A client of another config is refused with one line that names both
// configs and how to switch; a client of the same config gets the
// daemon's own description.
func TestHelloConfigMismatch(t *testing.T) {
	dir := shortDir(t)
	socket := filepath.Join(dir, "run", "broker.sock")
	lock, err := Acquire(socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Release() })
	b := newBroker(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	mine := filepath.Join(dir, "home", "config.yaml")
	go func() {
		done <- Serve(ctx, Options{Lock: lock, Broker: b, Version: "test", ConfigPath: mine, Logger: testLogger(t)})
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the daemon to listen", func() bool { return Running(context.Background(), socket) })

	other := filepath.Join(dir, "repo", "switchboard.yaml")
	start := func(context.Context) (<-chan error, error) { return nil, errors.New("must not start a daemon") }
	_, err = Connect(context.Background(), ConnectOptions{Socket: socket, Caller: "web", Config: other, Start: start})
	want := `the daemon on ` + socket + ` serves ` + mine + `, not ` + other + `; stop it with "switchboard stop --config ` + mine +
		`", or set settings.socket in ` + other + ` to run a second daemon`
	var re *RefusedError
	if !errors.As(err, &re) || err.Error() != want {
		t.Fatalf("Connect with another config = %v\nwant %s", err, want)
	}
	conn, err := Connect(context.Background(), ConnectOptions{Socket: socket, Caller: "web", Config: filepath.Join(dir, "home", ".", "config.yaml")})
	if err != nil {
		t.Fatalf("Connect with the same config: %v", err)
	}
	defer conn.Close()
	if w := conn.Daemon; w.PID != os.Getpid() || w.Config != mine || w.Version != "test" || w.Socket != socket || w.Started.IsZero() {
		t.Errorf("welcome = %+v", w)
	}
}
