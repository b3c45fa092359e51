package hosts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/remote"
)

// DefaultCredentialDir is where, on a team's host, the broker keeps the
// 0600 files that carry a Claude process's session credential, unless
// Options say otherwise ("~/" is the home of the user Claude runs as).
const DefaultCredentialDir = "~/.switchboard/run"

// ErrNoMCPHandler is returned by MCPEndpoint before ServeMCP was called.
var ErrNoMCPHandler = errors.New("switchboard's tools are not served to teams (no handler)")

// mcpServer serves the broker's session-credential MCP handler on one
// loopback listener for this machine and one remote port forward per SSH
// connection. Every listener serves the same handler: it, not the
// listener, decides who a caller is (by its bearer token).
type mcpServer struct {
	mu       sync.Mutex
	handler  http.Handler
	local    *served
	forwards map[string]*served // by the SSH connection's key
	closed   bool
}

// served is one listener and the HTTP server on it.
type served struct {
	ln   net.Listener
	srv  *http.Server
	url  string
	done chan struct{} // closed when the listener failed (its connection died)
}

func (s *served) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func serve(ln net.Listener, h http.Handler) *served {
	s := &served{ln: ln, url: "http://" + ln.Addr().String() + "/mcp", done: make(chan struct{}),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s
}

// ServeMCP sets the handler that serves switchboard's tools to the Claude
// processes the broker starts; the broker hands it over once, before it
// starts any. Listeners open on first use (MCPEndpoint).
func (h *Hosts) ServeMCP(handler http.Handler) {
	h.mcp.mu.Lock()
	defer h.mcp.mu.Unlock()
	h.mcp.handler = handler
}

func (h *Hosts) closeMCP() {
	h.mcp.mu.Lock()
	defer h.mcp.mu.Unlock()
	h.mcp.closed = true
	all := []*served{h.mcp.local}
	for _, s := range h.mcp.forwards {
		all = append(all, s)
	}
	for _, s := range all {
		if s != nil {
			s.srv.Close()
		}
	}
}

// MCPEndpoint returns the URL at which the team's Claude reaches
// switchboard's tools, and the directory on the team's host for the files
// carrying session credentials. This machine's teams share one listener on
// 127.0.0.1; a remote team's URL is a port on the remote host's loopback,
// forwarded over the team's existing SSH connection (one forward per
// connection, opened again after a reconnect; no new connection). An error
// says why the team cannot ask back, e.g. the remote sshd refuses forwarding
// (it wraps remote.ErrForwardRefused).
func (tm *Team) MCPEndpoint(ctx context.Context) (url, dir string, err error) {
	if tm.err != nil {
		return "", "", tm.err
	}
	m := &tm.hosts.mcp
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return "", "", errors.New("hosts are closed")
	case m.handler == nil:
		return "", "", ErrNoMCPHandler
	}
	if !tm.remote {
		if m.local == nil || !m.local.alive() {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return "", "", fmt.Errorf("listen on 127.0.0.1 for switchboard's tools: %w", err)
			}
			m.local = serve(ln, m.handler)
		}
		return m.local.url, tm.hosts.opts.CredentialDir, nil
	}
	r, ok := tm.Runner.(*remote.Runner)
	if !ok {
		return "", "", fmt.Errorf("team %s has no SSH connection to forward a port on", tm.team.Name)
	}
	// The connection's one forward; a new listener means the connection
	// was redialled since.
	ln, err := r.ListenLoopback(ctx)
	if err != nil {
		return "", "", err
	}
	if s := m.forwards[r.Key()]; s != nil && s.ln == ln && s.alive() {
		return s.url, tm.hosts.opts.RemoteCredentialDir, nil
	}
	if m.forwards == nil {
		m.forwards = make(map[string]*served)
	}
	s := serve(ln, m.handler)
	m.forwards[r.Key()] = s
	return s.url, tm.hosts.opts.RemoteCredentialDir, nil
}

// CheckAskBack tells whether the team's Claude could reach switchboard's
// tools: nil on this machine; on a remote host it opens the connection's
// remote port forward (kept for the connection's life, as MCPEndpoint
// would).
func (tm *Team) CheckAskBack(ctx context.Context) error {
	if tm.err != nil {
		return tm.err
	}
	r, ok := tm.Runner.(*remote.Runner)
	if !tm.remote || !ok {
		return nil
	}
	_, err := r.ListenLoopback(ctx)
	return err
}
