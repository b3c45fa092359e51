package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A connection whose reader never reads: queued bytes never pass the limit,
// and the write that would is refused and closes the connection.
func TestOutQueueBounded(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	const limit = 10 << 10
	q := newOutQueue(a, limit, testLogger(t))
	chunk := make([]byte, 1000)
	var err error
	writes := 0
	for ; writes < 1000 && err == nil; writes++ {
		_, err = q.Write(chunk)
	}
	if !errors.Is(err, errOutQueueFull) {
		t.Fatalf("after %d unread writes: %v, want errOutQueueFull", writes, err)
	}
	q.mu.Lock()
	peak := q.peak
	q.mu.Unlock()
	if peak > limit {
		t.Errorf("%d bytes were queued, over the %d limit", peak, limit)
	}
	// The connection is closed: the reader gets what was in flight, then EOF.
	if _, err := io.ReadAll(b); err != nil {
		t.Errorf("reading the dropped connection: %v", err)
	}
	q.wait()
	if _, err := q.Write(chunk); err == nil {
		t.Error("a write after the drop was accepted")
	}
}

// A client that sends requests and never reads their answers is dropped by
// the daemon instead of growing it.
func TestDaemonDropsClientThatDoesNotRead(t *testing.T) {
	old := maxOutQueue
	maxOutQueue = 64 << 10
	t.Cleanup(func() { maxOutQueue = old })
	socket := filepath.Join(shortDir(t), "broker.sock")
	serve(t, socket, "")
	conn, err := Connect(context.Background(), ConnectOptions{Socket: socket, Caller: "web"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`+"\n")
	fmt.Fprintf(conn, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
	// Each tools/list answer is several KiB; 100,000 of them would be
	// hundreds of MiB held by a daemon that never drops the client.
	const most = 100000
	// A daemon that stops reading instead of dropping would block the
	// writes below for ever; the deadline only turns that hang into a
	// failure.
	conn.SetWriteDeadline(time.Now().Add(time.Minute))
	var werr error
	sent := 0
	for ; sent < most && werr == nil; sent++ {
		_, werr = fmt.Fprintf(conn, `{"jsonrpc":"2.0","id":%d,"method":"tools/list"}`+"\n", sent+1)
	}
	if werr == nil || errors.Is(werr, os.ErrDeadlineExceeded) {
		t.Fatalf("the daemon still takes requests after %d unread answers", sent)
	}
	t.Logf("dropped after %d requests: %v", sent, werr)
}
