package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// ErrClosed is returned by runners of a closed Pool.
var ErrClosed = errors.New("ssh connection pool is closed")

// ErrConnectionLost marks failures caused by a dropped SSH connection (the
// host went away or stopped answering keepalives). The next use redials.
var ErrConnectionLost = errors.New("ssh connection lost")

// Pool shares one SSH connection per host (user@host:port plus the jump
// chain) among all its runners. Connections are dialled on first use, kept
// alive with keepalive@openssh.com requests, and redialled after they die.
type Pool struct {
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	dials  atomic.Int64

	mu     sync.Mutex
	closed bool
	conns  map[string]*conn
}

// NewPool returns an empty pool; a nil logger means slog.Default().
func NewPool(log *slog.Logger) *Pool {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{log: log, ctx: ctx, cancel: cancel, conns: map[string]*conn{}}
}

// Runner returns a runner for t. Runners are cheap; all runners for the same
// host share the pool's connection to it.
func (p *Pool) Runner(t Target) *Runner {
	applyDefaults(&t)
	for i := range t.ProxyJump {
		applyDefaults(&t.ProxyJump[i])
	}
	return &Runner{pool: p, target: t}
}

// Dials reports how many connections the pool has dialled (tried) so far.
func (p *Pool) Dials() int64 { return p.dials.Load() }

// Close closes every connection, failing their sessions, and waits for the
// pool's goroutines to end.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := make([]*conn, 0, len(p.conns))
	for _, c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	p.cancel()
	for _, c := range conns {
		select {
		case <-c.ready:
			if c.client != nil {
				c.fail(ErrClosed)
			}
		default: // still dialling; the cancelled context ends it
		}
	}
	p.wg.Wait()
	return nil
}

// conn is one shared connection and what hangs off it.
type conn struct {
	key    string
	target Target
	ready  chan struct{} // closed when dialling ended; then err or client is set
	err    error
	client *ssh.Client
	jumps  []*ssh.Client
	dead   chan struct{} // closed once the client is gone

	lost atomic.Pointer[error] // why we closed it, if we did

	sftpMu sync.Mutex
	sftp   *sftp.Client
	home   string

	fwdMu sync.Mutex
	fwd   net.Listener // the remote port forward on this connection (forward.go)
}

// fail closes the connection, recording why so that sessions that die with
// it can say so.
func (c *conn) fail(err error) {
	c.lost.CompareAndSwap(nil, &err)
	c.client.Close()
}

func (c *conn) isDead() bool {
	select {
	case <-c.ready:
		if c.err != nil {
			return true
		}
	default:
		return false
	}
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// lostErr explains a connection that died under a session.
func (c *conn) lostErr() error {
	if e := c.lost.Load(); e != nil {
		return fmt.Errorf("%w to %s: %w", ErrConnectionLost, c.target.Destination(), *e)
	}
	return fmt.Errorf("%w to %s", ErrConnectionLost, c.target.Destination())
}

// get returns the live connection for t, dialling it if needed. The dial
// runs under the pool's context so one caller giving up does not fail others
// waiting on the same host.
func (p *Pool) get(ctx context.Context, t Target) (*conn, error) {
	key := t.Key()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	c := p.conns[key]
	if c != nil && c.isDead() {
		delete(p.conns, key)
		c = nil
	}
	if c == nil {
		c = &conn{key: key, target: t, ready: make(chan struct{}), dead: make(chan struct{})}
		p.conns[key] = c
		p.wg.Add(1)
		go p.dialConn(c)
	}
	p.mu.Unlock()

	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("connect to %s: %w", t.Destination(), ctx.Err())
	}
	if c.err != nil {
		return nil, c.err
	}
	return c, nil
}

func (p *Pool) dialConn(c *conn) {
	defer p.wg.Done()
	p.dials.Add(1)
	client, jumps, err := dial(p.ctx, c.target, p.log)

	p.mu.Lock()
	defer p.mu.Unlock()
	defer close(c.ready)
	if err == nil && p.closed {
		client.Close()
		for _, j := range jumps {
			j.Close()
		}
		err = ErrClosed
	}
	if err != nil {
		c.err = err
		if p.conns[c.key] == c {
			delete(p.conns, c.key)
		}
		return
	}
	c.client, c.jumps = client, jumps
	p.log.Debug("ssh connected", "host", c.key)
	p.wg.Add(2)
	go p.watch(c)
	go p.keepalive(c)
}

// watch waits for the connection to end, however it ends, and cleans up.
func (p *Pool) watch(c *conn) {
	defer p.wg.Done()
	err := c.client.Wait()
	close(c.dead)
	for i := len(c.jumps) - 1; i >= 0; i-- {
		c.jumps[i].Close()
	}
	c.sftpMu.Lock()
	if c.sftp != nil {
		c.sftp.Close()
	}
	c.sftpMu.Unlock()

	p.mu.Lock()
	if p.conns[c.key] == c {
		delete(p.conns, c.key)
	}
	p.mu.Unlock()
	if e := c.lost.Load(); e != nil {
		err = *e
	}
	p.log.Info("ssh connection closed", "host", c.key, "reason", err)
}

// keepalive sends keepalive@openssh.com every ServerAliveInterval; after
// ServerAliveCountMax unanswered requests, or one failed request, it closes
// the connection so that sessions on it fail now rather than hang.
func (p *Pool) keepalive(c *conn) {
	defer p.wg.Done()
	t := c.target
	tick := time.NewTicker(t.ServerAliveInterval)
	defer tick.Stop()
	replies := make(chan error)
	unanswered := 0
	for {
		select {
		case <-c.dead:
			return
		case err := <-replies:
			if err != nil {
				c.fail(fmt.Errorf("keepalive: %w", err))
				return
			}
			unanswered = 0
		case <-tick.C:
			if unanswered >= t.ServerAliveCountMax {
				c.fail(fmt.Errorf("no reply to %d keepalives sent every %s", unanswered, t.ServerAliveInterval))
				return
			}
			unanswered++
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				// Any reply, even a refusal, proves the server is there.
				_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
				select {
				case replies <- err:
				case <-c.dead:
				}
			}()
		}
	}
}

// sftpClient returns the connection's shared SFTP client, opening it once.
func (c *conn) sftpClient() (*sftp.Client, string, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp == nil {
		s, err := sftp.NewClient(c.client)
		if err != nil {
			return nil, "", fmt.Errorf("open sftp on %s: %w", c.target.Destination(), err)
		}
		home, err := s.Getwd()
		if err != nil {
			s.Close()
			return nil, "", fmt.Errorf("sftp home on %s: %w", c.target.Destination(), err)
		}
		c.sftp, c.home = s, home
	}
	return c.sftp, c.home, nil
}

// dropSFTP forgets a broken SFTP client so the next call reopens it.
func (c *conn) dropSFTP(s *sftp.Client) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp == s {
		c.sftp.Close()
		c.sftp = nil
	}
}
