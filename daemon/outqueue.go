package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/switchboard-mcp/switchboard/internal/hoptrace"
)

// maxOutQueue bounds the answers queued for one client connection. A client
// that never reads its answers would otherwise keep the daemon holding every
// one of them; past this its connection is dropped.
var maxOutQueue = 16 << 20

// errOutQueueFull says a client stopped reading its answers.
var errOutQueueFull = errors.New("the client does not read its answers")

// outQueue is the write side of a client connection: writes are queued,
// never block the MCP session, and a background writer sends them in order.
// When more than limit bytes wait, the connection is closed and every
// later write fails.
type outQueue struct {
	conn  net.Conn
	limit int
	log   *slog.Logger
	done  chan struct{}

	mu      sync.Mutex
	cond    *sync.Cond
	pending [][]byte
	queued  int
	peak    int // the most bytes ever queued, for tests
	err     error
	closing bool
}

func newOutQueue(conn net.Conn, limit int, log *slog.Logger) *outQueue {
	q := &outQueue{conn: conn, limit: limit, log: log, done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	go q.run()
	return q
}

// Write queues a copy of p.
func (q *outQueue) Write(p []byte) (int, error) {
	if err := q.send(append([]byte(nil), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// send queues p itself, which the caller must not touch again: the MCP
// connection hands over each message it encoded, and a copy of it would be
// one more allocation per message.
func (q *outQueue) send(p []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	if q.closing {
		return net.ErrClosed
	}
	if q.queued+len(p) > q.limit {
		q.err = fmt.Errorf("%w: %d bytes wait to be sent, over the %d-byte limit", errOutQueueFull, q.queued, q.limit)
		q.log.Warn("dropping a client that does not read its answers", "queued_bytes", q.queued, "limit", q.limit)
		q.pending, q.queued = nil, 0
		q.conn.Close()
		q.cond.Broadcast()
		return q.err
	}
	hoptrace.Here(hoptrace.DaemonWrite)
	q.pending = append(q.pending, p)
	q.queued += len(p)
	q.peak = max(q.peak, q.queued)
	q.cond.Broadcast()
	return nil
}

// Close stops taking writes; what is queued is still sent (until the
// connection closes).
func (q *outQueue) Close() error {
	q.mu.Lock()
	q.closing = true
	q.cond.Broadcast()
	q.mu.Unlock()
	return nil
}

// wait returns when the background writer has stopped; close the
// connection first if it may be blocked.
func (q *outQueue) wait() { <-q.done }

func (q *outQueue) run() {
	defer close(q.done)
	for {
		q.mu.Lock()
		for len(q.pending) == 0 && q.err == nil && !q.closing {
			q.cond.Wait()
		}
		if q.err != nil || len(q.pending) == 0 {
			q.mu.Unlock()
			return
		}
		batch := q.pending
		q.pending = nil
		q.mu.Unlock()

		n := 0
		for _, b := range batch {
			n += len(b)
		}
		bufs := net.Buffers(batch)
		hoptrace.Here(hoptrace.DaemonSent)
		_, err := bufs.WriteTo(q.conn)

		q.mu.Lock()
		if q.err == nil {
			q.queued -= n
			if err != nil {
				q.err = err
				q.pending, q.queued = nil, 0
			}
		}
		q.mu.Unlock()
	}
}
