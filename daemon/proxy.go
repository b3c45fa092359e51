package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hoptrace"
)

// maxLine bounds one JSON-RPC line in either direction, as the MCP SDK does.
const maxLine = mcp.DefaultMaxLineLength

// replayTimeout bounds the wait for a new daemon connection to answer the
// request that checks it.
const replayTimeout = 15 * time.Second

// CodeDaemonStopped is the JSON-RPC error code of requests that were in
// flight when the daemon connection dropped (JSON-RPC's internal error).
const CodeDaemonStopped = -32603

// ProxyOptions configure Proxy.
type ProxyOptions struct {
	Socket  string
	Caller  string
	Version string
	// Config is the caller's config path (see ConnectOptions).
	Config string
	// In and Out carry the client's newline-delimited JSON-RPC (stdio).
	In  io.Reader
	Out io.Writer
	// Start starts the daemon in the background when none answers.
	Start  StartFunc
	Logger *slog.Logger
}

// Proxy relays newline-delimited MCP between In/Out and the daemon until In
// ends or ctx is done. It outlives the daemon: requests in flight when the
// daemon connection drops are answered with an error, and the next client
// line reconnects (starting the daemon again) and replays the client's
// initialize handshake before it is forwarded.
//
// Proxy connects once before reading In, so a daemon that cannot start is
// an error the caller reports at once.
func Proxy(ctx context.Context, opts ProxyOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &proxy{opts: opts, log: log}
	defer p.shutdown()
	if _, err := p.ensureLink(ctx, ""); err != nil {
		return err
	}

	readErr := make(chan error, 1)
	// The reader forwards each line itself, in order, rather than handing
	// it to another goroutine: a hand-off per request is a wake-up the
	// request waits for. It is abandoned when ctx ends first: a read from
	// stdin cannot be interrupted, and the process is about to exit anyway.
	go func() {
		br := bufio.NewReaderSize(opts.In, 64<<10)
		for {
			line, err := readLine(br, maxLine)
			if len(bytes.TrimSpace(line)) > 0 {
				hoptrace.Here(hoptrace.ProxyIn)
				if !p.forwardLine(ctx, line) {
					return
				}
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-readErr:
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("read from the MCP client: %w", err)
	}
}

// forwardLine forwards line unless the proxy is shutting down, and reports
// whether it did. Shutdown waits for a forward under way (which ends with
// ctx), so that no link is opened after it.
func (p *proxy) forwardLine(ctx context.Context, line []byte) bool {
	p.fwdMu.Lock()
	defer p.fwdMu.Unlock()
	if p.stopped || ctx.Err() != nil {
		return false
	}
	p.forward(ctx, line)
	return true
}

type proxy struct {
	opts  ProxyOptions
	log   *slog.Logger
	outMu sync.Mutex
	wg    sync.WaitGroup

	// fwdMu is held while a client line is forwarded; stopped, set at
	// shutdown, ends forwarding.
	fwdMu   sync.Mutex
	stopped bool

	// The handshake to replay to a restarted daemon; only forward (under
	// fwdMu) touches these.
	initLine        []byte
	initializedLine []byte
	links, checks   int

	mu   sync.Mutex
	link *link // nil while disconnected
}

// link is one connection to the daemon and the requests sent on it that
// await an answer.
type link struct {
	conn     net.Conn
	done     chan struct{}
	inflight map[string]json.RawMessage // id key -> the id as the client wrote it
	// checkID is the id of the request that checks a new link (a replayed
	// initialize or a ping), whose answer the client must not see; checked
	// receives that answer's error, if any.
	checkID string
	checked chan error
	// tokens maps an in-flight request to its progress token, and accepted
	// to the message id its progress announced (accepted.go).
	tokens   map[string]string
	accepted map[string]uint64
}

// envelope is the part of a JSON-RPC message the proxy needs.
type envelope struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Error  json.RawMessage `json:"error"`
	// Params is read for progress tokens (accepted.go); a response has
	// none, and a result's fields are skipped unread.
	Params progressParams `json:"params"`
}

func peek(line []byte) envelope {
	var e envelope
	if json.Unmarshal(line, &e) != nil {
		// Batches and junk go through untracked. Params of another shape
		// have no progress token, and must not cost the rest: read again
		// without them.
		var bare struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Error  json.RawMessage `json:"error"`
		}
		_ = json.Unmarshal(line, &bare)
		e = envelope{ID: bare.ID, Method: bare.Method, Error: bare.Error}
	}
	if string(e.ID) == "null" {
		e.ID = nil
	}
	return e
}

// idKey canonicalises an id so the client's 1 and the server's 1.0 match.
func idKey(id json.RawMessage) string {
	var v any
	d := json.NewDecoder(bytes.NewReader(id))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return string(id)
	}
	switch v := v.(type) {
	case string:
		return "s:" + v
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return "n:" + strconv.FormatInt(n, 10)
		}
		if f, err := v.Float64(); err == nil {
			return "n:" + strconv.FormatFloat(f, 'g', -1, 64)
		}
	}
	return string(id)
}

// forward sends one client line to the daemon, reconnecting first when the
// last connection dropped.
func (p *proxy) forward(ctx context.Context, line []byte) {
	e := peek(line)
	isRequest := e.ID != nil && e.Method != ""
	switch e.Method {
	case "initialize":
		p.initLine = bytes.Clone(line)
	case "notifications/initialized":
		p.initializedLine = bytes.Clone(line)
	}
	for range 2 {
		l, err := p.ensureLink(ctx, e.Method)
		if err != nil {
			p.log.Error("cannot reach the switchboard daemon", "err", err)
			if isRequest {
				p.writeOut(errorLine(e.ID, "the switchboard daemon is not reachable: "+err.Error()))
			}
			return
		}
		p.mu.Lock()
		if p.link != l {
			// It dropped between connecting and now: its reader has answered
			// what was in flight; connect again.
			p.mu.Unlock()
			continue
		}
		if isRequest {
			l.inflight[idKey(e.ID)] = e.ID
			if tok := e.requestToken(); tok != "" {
				l.tokens[idKey(e.ID)] = tok
			}
		}
		p.mu.Unlock()
		hoptrace.Here(hoptrace.ProxyFwd)
		if err := writeLine(l.conn, line); err != nil {
			// The reader notices the closed conn and answers the request.
			p.log.Warn("write to the switchboard daemon", "err", err)
			l.conn.Close()
		}
		return
	}
	if isRequest {
		p.writeOut(errorLine(e.ID, "the switchboard daemon connection keeps dropping; call again"))
	}
}

// errDropped says a new daemon connection closed before it answered the
// proxy's first request: a daemon that was dying still accepted it.
var errDropped = errors.New("the daemon closed the connection")

// ensureLink returns the live daemon connection, connecting (and starting
// the daemon) when there is none.
func (p *proxy) ensureLink(ctx context.Context, method string) (*link, error) {
	p.mu.Lock()
	l := p.link
	p.mu.Unlock()
	if l != nil {
		return l, nil
	}
	// Right after a daemon dies its listening socket may still take a
	// connection that the kernel then resets; try again until the socket
	// is dead (and a new daemon starts) or a live daemon answers.
	deadline := time.Now().Add(StartTimeout)
	for {
		l, err := p.connect(ctx, method)
		if err == nil || !errors.Is(err, errDropped) || time.Now().After(deadline) {
			return l, err
		}
		p.log.Debug("the daemon dropped a new connection; connecting again", "err", err)
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// connect opens a link. Every link after the first is checked before use:
// the client's initialize (and initialized) are replayed to the new daemon,
// unless method is the one being forwarded now, or, for a client that never
// sent initialize (the stateless protocol), a ping goes first. Either answer
// is swallowed.
func (p *proxy) connect(ctx context.Context, method string) (*link, error) {
	conn, err := Connect(ctx, ConnectOptions{Socket: p.opts.Socket, Caller: p.opts.Caller, Version: p.opts.Version, Config: p.opts.Config, Start: p.opts.Start, Logger: p.log})
	if err != nil {
		return nil, err
	}
	l := &link{conn: conn, done: make(chan struct{}), inflight: make(map[string]json.RawMessage),
		tokens: make(map[string]string), accepted: make(map[string]uint64)}
	var check []byte
	if p.links > 0 && method != "initialize" {
		p.checks++
		id := fmt.Sprintf("switchboard-proxy-%d", p.checks)
		if p.initLine != nil {
			check, err = withID(p.initLine, id)
		} else {
			check, err = json.Marshal(map[string]string{"jsonrpc": "2.0", "id": id, "method": "ping"})
		}
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("replay initialize: %w", err)
		}
		l.checkID = idKey(json.RawMessage(strconv.Quote(id)))
		l.checked = make(chan error, 1)
	}
	p.links++
	p.mu.Lock()
	p.link = l
	p.mu.Unlock()
	p.wg.Add(1)
	go p.read(l)
	if check == nil {
		return l, nil
	}
	p.log.Info("reconnected to the switchboard daemon", "replaying_initialize", p.initLine != nil)
	if err := p.check(ctx, l, check, method); err != nil {
		conn.Close()
		return nil, err
	}
	return l, nil
}

func (p *proxy) check(ctx context.Context, l *link, first []byte, method string) error {
	if err := writeLine(l.conn, first); err != nil {
		return fmt.Errorf("%w: %v", errDropped, err)
	}
	t := time.NewTimer(replayTimeout)
	defer t.Stop()
	select {
	case err := <-l.checked:
		if err != nil {
			return fmt.Errorf("replay initialize: the daemon refused it: %w", err)
		}
	case <-l.done:
		return errDropped
	case <-t.C:
		return fmt.Errorf("the daemon did not answer within %s", replayTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	if p.initLine != nil && p.initializedLine != nil && method != "notifications/initialized" {
		if err := writeLine(l.conn, p.initializedLine); err != nil {
			return fmt.Errorf("%w: %v", errDropped, err)
		}
	}
	return nil
}

// withID returns the JSON-RPC message line with its id replaced.
func withID(line []byte, id string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, err
	}
	m["id"] = json.RawMessage(strconv.Quote(id))
	return json.Marshal(m)
}

// read relays the daemon's lines to the client until the connection drops,
// then answers every request still in flight on it.
func (p *proxy) read(l *link) {
	defer p.wg.Done()
	defer close(l.done)
	br := bufio.NewReaderSize(l.conn, 64<<10)
	var cause error
	for {
		line, err := readLine(br, maxLine)
		if len(bytes.TrimSpace(line)) > 0 {
			hoptrace.Here(hoptrace.ProxyBack)
			if !p.swallow(l, line) {
				hoptrace.Here(hoptrace.ProxyOut)
				p.writeOut(line)
			}
		}
		if err != nil {
			cause = err
			break
		}
	}
	l.conn.Close()
	p.mu.Lock()
	if p.link == l {
		p.link = nil
	}
	pending := l.inflight
	l.inflight = nil
	accepted := l.accepted
	p.mu.Unlock()
	if len(pending) == 0 {
		p.log.Info("the switchboard daemon connection closed", "err", cause)
		return
	}
	reason := "connection closed"
	if !errors.Is(cause, io.EOF) && !errors.Is(cause, net.ErrClosed) {
		reason = cause.Error()
	}
	p.log.Warn("the switchboard daemon connection dropped with requests in flight", "requests", len(pending), "err", cause)
	for k, id := range pending {
		p.writeOut(errorLine(id, lostText(reason, accepted[k])))
	}
}

// swallow takes a response off the in-flight list and reports whether it
// answers the link's check, which the client must not see.
func (p *proxy) swallow(l *link, line []byte) bool {
	e := peek(line)
	if e.ID == nil && e.Method != "" {
		p.mu.Lock()
		l.noteProgress(e)
		p.mu.Unlock()
		return false
	}
	if e.ID == nil || e.Method != "" {
		return false
	}
	k := idKey(e.ID)
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(l.tokens, k)
	delete(l.accepted, k)
	if l.checkID != "" && k == l.checkID {
		l.checkID = ""
		var err error
		if e.Error != nil {
			err = errors.New(string(e.Error))
		}
		l.checked <- err
		return true
	}
	delete(l.inflight, k)
	return false
}

func (p *proxy) writeOut(line []byte) {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	if err := writeLine(p.opts.Out, line); err != nil {
		p.log.Debug("write to the MCP client", "err", err)
	}
}

func (p *proxy) shutdown() {
	p.fwdMu.Lock()
	p.stopped = true
	p.fwdMu.Unlock()
	p.mu.Lock()
	l := p.link
	p.mu.Unlock()
	if l != nil {
		l.conn.Close()
	}
	p.wg.Wait()
}

func writeLine(w io.Writer, line []byte) error {
	buf := make([]byte, 0, len(line)+1)
	buf = append(append(buf, line...), '\n')
	_, err := w.Write(buf)
	return err
}

func errorLine(id json.RawMessage, msg string) []byte {
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: id, Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{CodeDaemonStopped, msg}})
	return b
}
