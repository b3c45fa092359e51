package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/poll"
)

// fakeDaemon speaks just enough MCP on a unix socket to test the proxy:
// it answers initialize and tools/call "echo", and never answers "hang".
type fakeDaemon struct {
	ln net.Listener

	mu      sync.Mutex
	conns   []net.Conn
	callers []string
	methods []string // every method received, in order
	ids     []string // every request id received, in order
	hanging chan struct{}
}

func startFake(t *testing.T, socket string) *fakeDaemon {
	t.Helper()
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDaemon{ln: ln, hanging: make(chan struct{}, 10)}
	go d.accept()
	t.Cleanup(d.kill)
	return d
}

func (d *fakeDaemon) accept() {
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
		go d.serve(c)
	}
}

func (d *fakeDaemon) serve(c net.Conn) {
	br := bufio.NewReader(c)
	hello, err := br.ReadBytes('\n')
	if err != nil {
		return
	}
	var h Hello
	_ = json.Unmarshal(hello, &h)
	d.mu.Lock()
	d.callers = append(d.callers, h.Caller)
	d.mu.Unlock()
	if h.Proto >= helloProto {
		if _, err := c.Write([]byte(`{"pid":1,"socket":"fake"}` + "\n")); err != nil {
			return
		}
	}
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		d.mu.Lock()
		d.methods = append(d.methods, m.Method)
		if m.ID != nil {
			d.ids = append(d.ids, string(m.ID))
		}
		d.mu.Unlock()
		var result string
		switch {
		case m.Method == "ping":
			result = `{}`
		case m.Method == "initialize":
			result = `{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"fake","version":"1"}}`
		case m.Method == "tools/call" && m.Params.Name == "die":
			go d.kill()
			continue
		case m.Method == "tools/call" && m.Params.Name == "hang":
			d.hanging <- struct{}{}
			continue
		case m.Method == "tools/call":
			result = `{"content":[{"type":"text","text":"echo ` + string(m.ID) + `"}]}`
		default:
			continue
		}
		c.Write([]byte(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":` + result + "}\n"))
	}
}

// kill drops the listener and every connection, as a SIGKILL would.
func (d *fakeDaemon) kill() {
	d.ln.Close()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
}

func (d *fakeDaemon) seen() ([]string, []string, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.callers...), append([]string(nil), d.methods...), append([]string(nil), d.ids...)
}

// rpcClient drives the proxy's stdio like an MCP client would.
type rpcClient struct {
	t   *testing.T
	in  *io.PipeWriter
	out *bufio.Reader
}

func (c *rpcClient) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		c.t.Fatalf("write to proxy: %v", err)
	}
}

type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (c *rpcClient) recv() rpcResponse {
	c.t.Helper()
	type res struct {
		line string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		line, err := c.out.ReadString('\n')
		ch <- res{line, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			c.t.Fatalf("read from proxy: %v", r.err)
		}
		var resp rpcResponse
		if err := json.Unmarshal([]byte(r.line), &resp); err != nil {
			c.t.Fatalf("proxy wrote %q: %v", r.line, err)
		}
		return resp
	case <-time.After(poll.Deadline):
		c.t.Fatal("no line from the proxy")
		return rpcResponse{}
	}
}

func TestProxySurvivesDaemonDeath(t *testing.T) {
	socket := filepath.Join(shortDir(t), "broker.sock")
	var (
		mu      sync.Mutex
		daemons []*fakeDaemon
	)
	start := func(context.Context) (<-chan error, error) {
		mu.Lock()
		defer mu.Unlock()
		daemons = append(daemons, startFake(t, socket))
		return nil, nil
	}
	current := func() *fakeDaemon {
		mu.Lock()
		defer mu.Unlock()
		return daemons[len(daemons)-1]
	}

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Proxy(context.Background(), ProxyOptions{Socket: socket, Caller: "web", In: inR, Out: outW, Start: start, Logger: testLogger(t)})
		outW.Close()
	}()
	c := &rpcClient{t: t, in: inW, out: bufio.NewReader(outR)}

	c.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if r := c.recv(); string(r.ID) != "0" || r.Result == nil {
		t.Fatalf("initialize answer = %+v", r)
	}
	c.send(`{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}`)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)
	if r := c.recv(); string(r.ID) != "1" || !strings.Contains(string(r.Result), "echo 1") {
		t.Fatalf("echo answer = %+v", r)
	}

	first := current()
	c.send(`{"jsonrpc":"2.0","id":"two","method":"tools/call","params":{"name":"hang"}}`)
	select {
	case <-first.hanging:
	case <-time.After(poll.Deadline):
		t.Fatal("the hanging call never reached the daemon")
	}
	first.kill()
	r := c.recv()
	if string(r.ID) != `"two"` || r.Error == nil || r.Error.Code != CodeDaemonStopped ||
		!strings.Contains(r.Error.Message, "the switchboard daemon stopped while handling this request") ||
		!strings.Contains(r.Error.Message, "message_status") {
		t.Fatalf("in-flight call after the daemon died = %+v (error %+v)", r, r.Error)
	}

	// The next call starts a new daemon, which gets the handshake again
	// before the call; the client sees only its own answer.
	c.send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo"}}`)
	if r := c.recv(); string(r.ID) != "3" || !strings.Contains(string(r.Result), "echo 3") {
		t.Fatalf("call after restart = %+v", r)
	}
	second := current()
	if second == first {
		t.Fatal("no new daemon was started")
	}
	callers, methods, ids := second.seen()
	if want := []string{"initialize", "notifications/initialized", "tools/call"}; strings.Join(methods, ",") != strings.Join(want, ",") {
		t.Errorf("restarted daemon saw %v, want %v", methods, want)
	}
	if len(ids) == 0 || ids[0] == "0" {
		t.Errorf("replayed initialize reused the client's id: %v", ids)
	}
	if len(callers) != 1 || callers[0] != "web" {
		t.Errorf("restarted daemon's hello callers = %v, want [web]", callers)
	}

	inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Proxy = %v after stdin closed", err)
		}
	case <-time.After(poll.Deadline):
		t.Fatal("Proxy did not return after stdin closed")
	}
}

// A client on the stateless protocol sends no initialize; a new link is
// checked with a ping instead, and a daemon that accepts a connection while
// dying is passed over for a live one.
func TestProxyStatelessClientAndDyingDaemon(t *testing.T) {
	socket := filepath.Join(shortDir(t), "broker.sock")
	var (
		mu      sync.Mutex
		daemons []*fakeDaemon
	)
	start := func(context.Context) (<-chan error, error) {
		mu.Lock()
		defer mu.Unlock()
		daemons = append(daemons, startFake(t, socket))
		return nil, nil
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Proxy(context.Background(), ProxyOptions{Socket: socket, Caller: "api", In: inR, Out: outW, Start: start, Logger: testLogger(t)})
		outW.Close()
	}()
	c := &rpcClient{t: t, in: inW, out: bufio.NewReader(outR)}
	c.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)
	if r := c.recv(); string(r.ID) != "1" || !strings.Contains(string(r.Result), "echo 1") {
		t.Fatalf("first call = %+v", r)
	}

	mu.Lock()
	first := daemons[0]
	mu.Unlock()
	c.send(`{"jsonrpc":"2.0","id":"d","method":"tools/call","params":{"name":"die"}}`)
	if r := c.recv(); string(r.ID) != `"d"` || r.Error == nil || r.Error.Code != CodeDaemonStopped {
		t.Fatalf("call that killed the daemon = %+v", r)
	}
	// A dying daemon: it takes one connection and drops it unanswered.
	dying, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if conn, err := dying.Accept(); err == nil {
			conn.Close()
		}
		dying.Close()
	}()

	c.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}}`)
	if r := c.recv(); string(r.ID) != "2" || !strings.Contains(string(r.Result), "echo 2") {
		t.Fatalf("call after the daemon died = %+v (error %+v)", r, r.Error)
	}
	mu.Lock()
	second := daemons[len(daemons)-1]
	mu.Unlock()
	if second == first {
		t.Fatal("no new daemon was started")
	}
	if _, methods, _ := second.seen(); strings.Join(methods, ",") != "ping,tools/call" {
		t.Errorf("new daemon saw %v, want a ping then the call", methods)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Errorf("Proxy = %v", err)
	}
}

func TestProxyFailsWhenDaemonCannotStart(t *testing.T) {
	socket := filepath.Join(shortDir(t), "broker.sock")
	start := func(context.Context) (<-chan error, error) {
		c := make(chan error, 1)
		c <- io.ErrUnexpectedEOF
		return c, nil
	}
	err := Proxy(context.Background(), ProxyOptions{Socket: socket, In: strings.NewReader(""), Out: io.Discard, Start: start, Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "exited at start") {
		t.Fatalf("Proxy = %v, want the start failure", err)
	}
}

func TestIDKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{{"1", "1.0"}, {"1", " 1"}, {`"x"`, `"x"`}} {
		if idKey(json.RawMessage(tc.a)) != idKey(json.RawMessage(tc.b)) {
			t.Errorf("ids %s and %s differ", tc.a, tc.b)
		}
	}
	if idKey(json.RawMessage("1")) == idKey(json.RawMessage(`"1"`)) {
		t.Error("number 1 and string \"1\" are the same id")
	}
}

// One parse of a line gives the proxy everything it tracks: the id and
// method of a request, its progress token, and the message id an accepted
// notice announces. A request whose params are not an object (positional
// params) is still tracked, as before the parse was merged.
func TestPeekReadsWhatTheProxyTracks(t *testing.T) {
	for _, tc := range []struct {
		name, line, id, method, token string
		accepted                      uint64
	}{
		{name: "call with a progress token", line: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"send_message","_meta":{"progressToken":"p1"}}}`,
			id: "7", method: "tools/call", token: `s:p1`},
		{name: "call without one", line: `{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x"}}`, id: `"a"`, method: "tools/call"},
		{name: "positional params", line: `{"jsonrpc":"2.0","id":3,"method":"custom","params":[1,2]}`, id: "3", method: "custom"},
		{name: "accepted notice", line: `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":5,"progress":1,"message":"switchboard accepted message 42; if this call fails, fetch the answer with message_status messageId=42"}}`,
			method: "notifications/progress", accepted: 42},
		{name: "response", line: `{"jsonrpc":"2.0","id":9,"result":{"content":[{"type":"text","text":"hi"}]}}`, id: "9"},
		{name: "junk", line: `not json`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := peek([]byte(tc.line))
			if string(e.ID) != tc.id || e.Method != tc.method || e.requestToken() != tc.token {
				t.Errorf("peek = id %s method %q token %q; want id %s method %q token %q", e.ID, e.Method, e.requestToken(), tc.id, tc.method, tc.token)
			}
			if _, id, _ := e.acceptedNotice(); id != tc.accepted {
				t.Errorf("accepted id = %d, want %d", id, tc.accepted)
			}
		})
	}
}

// The client's lines are forwarded by the goroutine that reads them; when
// ctx ends while a forward waits for a daemon to start, Proxy still
// returns, and opens no connection after.
func TestProxyStopsWhileForwardWaits(t *testing.T) {
	socket := filepath.Join(shortDir(t), "broker.sock")
	d := startFake(t, socket)
	started := make(chan struct{}, 1)
	start := func(ctx context.Context) (<-chan error, error) {
		started <- struct{}{}
		<-ctx.Done() // a daemon that never comes up
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Proxy(ctx, ProxyOptions{Socket: socket, Caller: "api", In: inR, Out: outW, Start: start, Logger: testLogger(t)})
		outW.Close()
	}()
	c := &rpcClient{t: t, in: inW, out: bufio.NewReader(outR)}
	c.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)
	if r := c.recv(); string(r.ID) != "1" {
		t.Fatalf("first call = %+v", r)
	}
	c.send(`{"jsonrpc":"2.0","id":"d","method":"tools/call","params":{"name":"die"}}`)
	if r := c.recv(); r.Error == nil {
		t.Fatalf("call that killed the daemon = %+v", r)
	}
	// The next line needs a new daemon, which never starts.
	go io.Copy(io.Discard, outR)
	c.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}}`)
	select {
	case <-started:
	case <-time.After(poll.Deadline):
		t.Fatal("the proxy did not try to start a daemon")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Proxy = %v, want nil on cancel", err)
		}
	case <-time.After(poll.Deadline):
		t.Fatal("Proxy did not return after ctx ended while a forward waited")
	}
	if callers, _, _ := d.seen(); len(callers) != 1 {
		t.Errorf("the daemon saw %d connections, want 1", len(callers))
	}
}
