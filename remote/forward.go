package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// ErrForwardRefused marks a remote port forward the SSH server refused,
// which OpenSSH does under `AllowTcpForwarding no` (or `local`).
var ErrForwardRefused = errors.New("the SSH server refused a remote port forward; it needs AllowTcpForwarding yes or remote in its sshd_config")

// Key names the shared connection the runner uses: runners with the same
// key share one connection, and so one remote listener.
func (r *Runner) Key() string { return r.target.Key() }

// ListenLoopback returns the connection's remote port forward: the host
// listens on its own 127.0.0.1 at a port it picks (as `ssh -R` makes) and
// connections to that port arrive on the listener. There is one per
// connection, opened on first use and shared by every caller, who must not
// close it; it ends with the connection, and after a reconnect the next call
// opens a new one (compare listeners to notice). A refusal by the server
// wraps ErrForwardRefused and is asked again on the next call.
func (r *Runner) ListenLoopback(ctx context.Context) (net.Listener, error) {
	c, err := r.pool.get(ctx, r.target)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", r.Where(), err)
	}
	c.fwdMu.Lock()
	defer c.fwdMu.Unlock()
	if c.fwd != nil {
		return c.fwd, nil
	}
	var ln net.Listener
	err = r.pool.await(ctx, func() error {
		var err error
		ln, err = c.client.Listen("tcp", "127.0.0.1:0")
		return err
	})
	if err != nil {
		if c.isDead() || ctx.Err() != nil {
			return nil, fmt.Errorf("listen on %s: %w", r.Where(), err)
		}
		// x/crypto/ssh reports a refused tcpip-forward request only as
		// "request denied by peer" on a live connection.
		return nil, fmt.Errorf("listen on 127.0.0.1 of %s: %w (%v)", r.Where(), ErrForwardRefused, err)
	}
	c.fwd = ln
	return ln, nil
}
