package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/internal/hoptrace"
)

// Hello is the one JSON line a client sends on connecting, before MCP.
type Hello struct {
	// Caller is the default fromTeam of the connection ("" means "user").
	Caller string `json:"caller"`
	// Version is the client's switchboard version, logged when it differs
	// from the daemon's (a daemon left running across an upgrade).
	Version string `json:"version,omitempty"`
	// Config is the absolute path of the client's config file; a daemon
	// serving another config refuses the client.
	Config string `json:"config,omitempty"`
	// Proto 1 asks the daemon to answer the hello with a Welcome line.
	Proto int `json:"proto,omitempty"`
}

// helloProto is the hello protocol this package speaks: the daemon answers
// a hello with a Welcome line.
const helloProto = 1

// Welcome is the daemon's one-line answer to a Hello (Proto >= 1): who it
// is, or, in Error, why it refuses the client.
type Welcome struct {
	PID     int       `json:"pid"`
	Config  string    `json:"config,omitempty"`
	Version string    `json:"version,omitempty"`
	Socket  string    `json:"socket"`
	Started time.Time `json:"started"`
	Error   string    `json:"error,omitempty"`
}

// CallerHeader carries the caller's team on the HTTP endpoint.
const CallerHeader = "X-Switchboard-Caller"

const (
	helloTimeout  = 10 * time.Second
	maxHelloBytes = 4 << 10
)

// Options configure Serve.
type Options struct {
	// Lock is the daemon lock for the socket to listen on; the caller
	// releases it after closing the broker.
	Lock *Lock
	// HTTPAddr, when set, is a loopback address to serve streamable-HTTP
	// MCP on.
	HTTPAddr string
	Broker   *broker.Broker
	// Version is the daemon's version, compared with each client's.
	Version string
	// ConfigPath is the absolute path of the config the broker serves;
	// clients of another config are refused.
	ConfigPath string
	Logger     *slog.Logger
}

// Serve listens on the locked socket (mode 0600, replacing a stale socket
// left by a crash) and, when HTTPAddr is set, on that loopback address, and
// serves the broker's MCP tools to every client until ctx ends. It then
// stops accepting, closes every connection and removes the socket; the
// caller closes the broker and store and releases the lock.
func Serve(ctx context.Context, opts Options) error {
	if opts.Lock == nil || opts.Lock.f == nil {
		return errors.New("daemon.Serve needs the daemon lock: call Acquire first")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	socket := opts.Lock.Socket()
	if err := checkSocketDir(socket); err != nil {
		return err
	}
	s := &server{opts: opts, log: log, conns: make(map[net.Conn]struct{}), started: time.Now(), socket: socket}

	// The HTTP listener and its token come before the socket: a client
	// that finds the socket answering (Running) reads the token at once,
	// and must find it.
	var hsrv *http.Server
	var hln net.Listener
	if opts.HTTPAddr != "" {
		var err error
		hln, err = listenLoopback(opts.HTTPAddr)
		if err != nil {
			return err
		}
		tok, err := writeToken(socket)
		if err != nil {
			hln.Close()
			return err
		}
		defer os.Remove(TokenPath(socket))
		_, port, _ := net.SplitHostPort(hln.Addr().String())
		h := mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
			return broker.NewMCPServer(opts.Broker, r.Header.Get(CallerHeader))
		}, &mcp.StreamableHTTPOptions{Logger: log})
		hsrv = &http.Server{Handler: HTTPGuard{Token: tok, Port: port}.Wrap(h), ReadHeaderTimeout: 10 * time.Second}
	}
	ln, id, err := listenSocket(socket, log)
	if err != nil {
		if hln != nil {
			hln.Close()
		}
		return err
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.accept(sctx, ln); err != nil {
			errc <- err
		}
	})
	// The watcher owns the listener from here: it listens again when the
	// socket file is removed or replaced, and closes it at shutdown.
	wg.Go(func() { id = s.watchSocket(sctx, socket, ln, id, &wg, errc) })
	if hsrv != nil {
		wg.Go(func() {
			if err := hsrv.Serve(hln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve http on %s: %w", opts.HTTPAddr, err)
			}
		})
		log.Info("serving streamable-HTTP MCP", "addr", hln.Addr().String(), "token_file", TokenPath(socket))
	}
	log.Info("switchboard daemon listening", "socket", socket, "pid", os.Getpid(), "version", opts.Version)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	cancel()
	if hsrv != nil {
		shctx, done := context.WithTimeout(context.Background(), 5*time.Second)
		if err := hsrv.Shutdown(shctx); err != nil {
			hsrv.Close()
		}
		done()
	}
	s.closeAll()
	wg.Wait()
	s.handlers.Wait()
	if fi, err := os.Lstat(socket); err == nil && os.SameFile(fi, id) {
		if err := os.Remove(socket); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("remove socket", "socket", socket, "err", err)
		}
	}
	log.Info("switchboard daemon stopped listening", "socket", socket)
	return serveErr
}

// socketCheckInterval is how often the daemon checks that its socket file
// is still the one it listens on.
var socketCheckInterval = 2 * time.Second

// listenSocket listens on socket, replacing a stale socket file, and
// returns the listener and the file's identity. Closing the listener leaves
// the path alone: by then it may be another listener's.
func listenSocket(socket string, log *slog.Logger) (*net.UnixListener, fs.FileInfo, error) {
	if err := removeStale(socket, log); err != nil {
		return nil, nil, err
	}
	// Bound under a name of its own, restricted, then renamed into place:
	// the socket file never shows at its path with the umask's wider mode,
	// not even to a client that connects at once. (The directory is 0700
	// already; the mode is belt and braces for a socket directory the user
	// made group-readable.)
	// The name is as long as the socket's, which the config kept within
	// what sun_path takes; the socket's lock keeps other daemons away.
	last := byte('~')
	if socket[len(socket)-1] == last {
		last = '#'
	}
	tmp := socket[:len(socket)-1] + string(last)
	_ = os.Remove(tmp) // left by a daemon killed here
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", socket, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, nil, fmt.Errorf("restrict %s to its owner: %w", socket, err)
	}
	if err := os.Rename(tmp, socket); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, nil, fmt.Errorf("listen on %s: %w", socket, err)
	}
	id, err := os.Lstat(socket)
	if err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("check %s: %w", socket, err)
	}
	return ln, id, nil
}

// watchSocket listens again whenever the socket file stops being the one
// ln serves (someone deleted it, or put another file there): without this
// the daemon would hold the lock yet be unreachable, and every client would
// find it "already running". It closes the listener when ctx ends and
// returns the identity of the socket file it last created.
func (s *server) watchSocket(ctx context.Context, socket string, ln *net.UnixListener, id fs.FileInfo, wg *sync.WaitGroup, errc chan<- error) fs.FileInfo {
	t := time.NewTicker(socketCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			ln.Close()
			return id
		case <-t.C:
		}
		if fi, err := os.Lstat(socket); err == nil && os.SameFile(fi, id) {
			continue
		}
		s.log.Warn("the daemon socket was removed or replaced; listening on it again", "socket", socket)
		nln, nid, err := listenSocket(socket, s.log)
		if err != nil {
			s.log.Error("listen on the daemon socket again", "socket", socket, "err", err)
			continue
		}
		ln.Close()
		ln, id = nln, nid
		wg.Go(func() {
			if err := s.accept(ctx, nln); err != nil {
				errc <- err
			}
		})
	}
}

// listenLoopback listens on addr only if it is a loopback address: the
// bearer token travels in clear text, so other machines must not reach it.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("httpAddr %q is not host:port", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("httpAddr %q is not a loopback address; use 127.0.0.1:PORT or [::1]:PORT", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	// "localhost" is whatever the hosts file says; check what it became.
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("httpAddr %q resolved to %s, which is not a loopback address", addr, ln.Addr())
	}
	return ln, nil
}

// removeStale removes a socket file left by a daemon that died without
// cleaning up. Holding the lock proves nobody listens on it; anything that is
// not a socket is left alone, so a mistyped settings.socket cannot delete a
// user's file.
func removeStale(socket string, log *slog.Logger) error {
	fi, err := os.Lstat(socket)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", socket, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket; move it away or set another settings.socket", socket)
	}
	if err := os.Remove(socket); err != nil {
		return fmt.Errorf("remove stale socket %s: %w", socket, err)
	}
	log.Info("replaced a stale socket left by an earlier daemon", "socket", socket)
	return nil
}

type server struct {
	opts     Options
	started  time.Time
	socket   string
	log      *slog.Logger
	handlers sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (s *server) accept(ctx context.Context, ln net.Listener) error {
	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does, rather than taking the daemon down.
			s.log.Warn("accept on the daemon socket", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if !s.track(conn) {
			conn.Close()
			return nil
		}
		s.handlers.Go(func() {
			defer s.untrack(conn)
			s.handle(ctx, conn)
		})
	}
}

func (s *server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
}

// handle reads the hello line, then serves MCP on the connection until the
// client leaves or the daemon stops.
func (s *server) handle(ctx context.Context, conn net.Conn) {
	// The socket's modes keep other users out; the kernel's word on who
	// dialled is the check that does not depend on them.
	if p, err := peerOf(conn); err != nil || p.uid != os.Geteuid() {
		s.log.Warn("refused a client of another user", "uid", p.uid, "pid", p.pid, "err", err)
		return
	}
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(helloTimeout))
	line, err := readLine(br, maxHelloBytes)
	if err != nil {
		// A bare connect-and-close is how Running probes; not worth a warning.
		lvl := slog.LevelWarn
		if errors.Is(err, io.EOF) {
			lvl = slog.LevelDebug
		}
		s.log.Log(ctx, lvl, "client left before saying hello", "err", err)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	var h Hello
	if err := json.Unmarshal(line, &h); err != nil {
		s.log.Warn("client hello is not JSON", "err", err)
		return
	}
	if h.Caller != "" {
		if err := configs.ValidTeamName(h.Caller); err != nil {
			s.log.Warn("client hello names an invalid caller", "caller", h.Caller, "err", err)
			return
		}
	}
	log := s.log.With("caller", h.Caller)
	if h.Proto >= helloProto {
		w := Welcome{PID: os.Getpid(), Config: s.opts.ConfigPath, Version: s.opts.Version, Socket: s.socket, Started: s.started}
		mine, theirs := cleanPath(s.opts.ConfigPath), cleanPath(h.Config)
		if mine != "" && theirs != "" && mine != theirs {
			w.Error = fmt.Sprintf("the daemon on %s serves %s, not %s; stop it with \"switchboard stop --config %s\", "+
				"or set settings.socket in %s to run a second daemon", s.socket, mine, theirs, mine, theirs)
			log.Warn("refused a client of another config", "client_config", theirs, "config", mine)
		}
		b, _ := json.Marshal(w)
		if _, err := conn.Write(append(b, '\n')); err != nil || w.Error != "" {
			return
		}
	}
	if h.Version != "" && s.opts.Version != "" && h.Version != s.opts.Version {
		log.Warn("client and daemon versions differ; restart the daemon to run the new version", "client", h.Version, "daemon", s.opts.Version)
	}
	srv := broker.NewMCPServer(s.opts.Broker, h.Caller)
	out := newOutQueue(conn, maxOutQueue, log)
	defer out.wait()
	defer conn.Close() // unblocks the queue's writer
	sess, err := srv.Connect(ctx, &socketTransport{r: markedReader{br}, conn: conn, out: out}, nil)
	if err != nil {
		log.Warn("start MCP session", "err", err)
		return
	}
	log.Debug("client connected")
	if err := sess.Wait(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		log.Debug("client session ended", "err", err)
	}
}

func cleanPath(p string) string {
	if p == "" {
		return ""
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return filepath.Clean(p)
}

// markedReader marks each read of a client's bytes as a hop (hoptrace).
type markedReader struct{ r io.Reader }

func (m markedReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if n > 0 {
		hoptrace.Here(hoptrace.DaemonRead)
	}
	return n, err
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its "\n" (or "\r\n"), reading at
// most max bytes (0: no limit). At EOF after a partial line it returns the
// line and io.EOF.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if max > 0 && len(line) > max {
			return nil, fmt.Errorf("%w (over %d bytes)", errLineTooLong, max)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
			if n > 1 && line[n-2] == '\r' {
				line = line[:n-2]
			}
		}
		if err != nil && len(line) == 0 {
			return nil, err
		}
		return line, err
	}
}
