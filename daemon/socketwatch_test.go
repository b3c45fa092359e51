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
