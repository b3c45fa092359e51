// Package hoptrace records when a request passes each hop of switchboard's
// warm path (the `switchboard mcp` proxy, the daemon's socket, the MCP
// server, the broker's queue, worker and Claude turn), for the benchmark's
// per-hop breakdown (internal/bench). It is off unless a process turns it on
// (cmd/switchboard does when SWITCHBOARD_HOPS is set); off, Mark costs one
// atomic load.
//
// A mark is a hop name and the wall-clock time it was passed. Wall-clock
// time, not a monotonic reading, so that marks of the proxy, the daemon and
// the benchmark's MCP client, three processes on one machine, share a time
// base. Marks carry no request id: the benchmark asks one question at a
// time and gives a mark to the ask whose window holds it.
package hoptrace

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// maxMarks bounds what a process keeps between two Takes (about 24 bytes
// each): a process nobody collects from stops recording rather than grow.
const maxMarks = 1 << 18

var (
	on      atomic.Bool
	mu      sync.Mutex
	marks   []Mark
	dropped int
)

// Mark is one hop passed: its name and when (Unix nanoseconds).
type Mark struct {
	Name string
	At   int64
}

// Enable turns recording on for this process.
func Enable() { on.Store(true) }

// Enabled reports whether marks are recorded.
func Enabled() bool { return on.Load() }

// Here records that hop name was passed now. Names are constants of the
// caller; see the hop list in internal/bench.
func Here(name string) {
	if !on.Load() {
		return
	}
	at := time.Now().UnixNano()
	mu.Lock()
	if len(marks) < maxMarks {
		marks = append(marks, Mark{name, at})
	} else {
		dropped++
	}
	mu.Unlock()
}

// Take returns the marks recorded since the last Take, oldest first, and
// how many were dropped for want of room.
func Take() ([]Mark, int) {
	mu.Lock()
	defer mu.Unlock()
	out, d := marks, dropped
	marks, dropped = nil, 0
	return out, d
}

// Write writes marks as lines of "unixnano name".
func Write(w io.Writer, ms []Mark) error {
	for _, m := range ms {
		if _, err := fmt.Fprintf(w, "%d %s\n", m.At, m.Name); err != nil {
			return err
		}
	}
	return nil
}

// Read parses what Write wrote.
func Read(r io.Reader) ([]Mark, error) {
	var out []Mark
	for {
		var m Mark
		_, err := fmt.Fscanf(r, "%d %s\n", &m.At, &m.Name)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read hop marks: %w", err)
		}
		out = append(out, m)
	}
}

// The hops of an ask, in the order an ask passes them. A hop that hands
// the ask to another goroutine or process is marked before the hand-off, so
// that the next hop's mark cannot come first. Each process marks its own: the benchmark's MCP client (ClientSend, ClientRecv), the
// `switchboard mcp` proxy (Proxy*), the daemon (Daemon*) and the broker.
const (
	ClientSend   = "client.send"    // the MCP client calls the tool
	ProxyIn      = "proxy.in"       // the proxy read the request line from stdin
	ProxyFwd     = "proxy.fwd"      // ... and writes it to the daemon's socket
	DaemonRead   = "daemon.read"    // the daemon read bytes from the socket
	HandlerStart = "handler.start"  // the MCP server called the tool handler
	Enqueued     = "broker.queued"  // the message is stored (Send's commit)
	QueueRead    = "worker.read"    // the pair's worker reads its queue head
	Delivering   = "worker.deliver" // ... and delivers it
	TurnStart    = "turn.start"     // the user line is written to Claude
	TurnEnd      = "turn.end"       // Claude's result line is read
	Finished     = "worker.done"    // the outcome is stored; waiters are told
	SendReturn   = "broker.reply"   // Send returned to the handler
	HandlerEnd   = "handler.end"    // the handler returned its result
	DaemonWrite  = "daemon.write"   // the MCP server wrote the response
	DaemonSent   = "daemon.sent"    // ... and the daemon sends it on the socket
	ProxyBack    = "proxy.back"     // the proxy read the response line
	ProxyOut     = "proxy.out"      // ... and writes it to stdout
	ClientRecv   = "client.recv"    // the MCP client has the result
)
