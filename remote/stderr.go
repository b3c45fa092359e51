package remote

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"sync"
)

const (
	// stderrMax bounds unread stderr; the oldest bytes go first so the
	// remote process never blocks on a reader that is not reading.
	stderrMax = 256 << 10
	// tailMax is how much recent stderr error messages quote.
	tailMax = 2 << 10
)

// stderrBuf receives the session's stderr. Before the start script reports
// ready it also picks out the script's marker lines. Reads block until data
// arrives or the stream ends.
type stderrBuf struct {
	mu      sync.Mutex
	cond    sync.Cond
	buf     []byte
	tail    []byte
	closed  bool
	started bool   // ready marker seen
	pending []byte // partial line before ready
	pid     int
	noDir   bool
	noCmd   bool
	ready   chan struct{}
}

func newStderrBuf() *stderrBuf {
	b := &stderrBuf{ready: make(chan struct{})}
	b.cond.L = &b.mu
	return b
}

func (b *stderrBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if !b.started {
		b.pending = append(b.pending, p...)
		p = nil
		for !b.started {
			// The program runs before the script prints the marker, so
			// its own stderr may come first, even on the marker's line;
			// the marker itself is one small write, never split by it.
			if j := bytes.Index(b.pending, []byte(readyMarker)); j >= 0 {
				k := bytes.IndexByte(b.pending[j:], '\n')
				if k < 0 {
					break // the rest of the marker line is still to come
				}
				b.appendLocked(b.pending[:j])
				b.pid, _ = strconv.Atoi(string(b.pending[j+len(readyMarker) : j+k]))
				b.started = true
				close(b.ready)
				b.pending = b.pending[j+k+1:]
				break
			}
			i := bytes.IndexByte(b.pending, '\n')
			if i < 0 {
				// Not a marker line yet; pass it on, but keep what could
				// be the start of a marker split across writes.
				if keep := len(readyMarker) + 24; len(b.pending) > tailMax+keep {
					b.appendLocked(b.pending[:len(b.pending)-keep])
					b.pending = append([]byte(nil), b.pending[len(b.pending)-keep:]...)
				}
				break
			}
			line := string(b.pending[:i])
			b.pending = b.pending[i+1:]
			switch {
			case line == noDirMarker:
				b.noDir = true
			case line == noCmdMarker:
				b.noCmd = true
			default:
				b.appendLocked([]byte(line + "\n"))
			}
		}
		if b.started {
			p = b.pending
			b.pending = nil
		}
	}
	b.appendLocked(p)
	return n, nil
}

func (b *stderrBuf) appendLocked(p []byte) {
	if len(p) == 0 {
		return
	}
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - stderrMax; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	b.tail = append(b.tail, p...)
	if over := len(b.tail) - tailMax; over > 0 {
		b.tail = append(b.tail[:0], b.tail[over:]...)
	}
	b.cond.Broadcast()
}

func (b *stderrBuf) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.buf) == 0 && !b.closed {
		b.cond.Wait()
	}
	if len(b.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

// closeWrite ends the stream once the session has ended.
func (b *stderrBuf) closeWrite() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.appendLocked(b.pending)
	b.pending = nil
	b.closed = true
	b.cond.Broadcast()
}

// lastLines is the recent stderr, trimmed, for error messages.
func (b *stderrBuf) lastLines() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.tail))
}

func (b *stderrBuf) state() (pid int, noDir, noCmd bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pid, b.noDir, b.noCmd
}
