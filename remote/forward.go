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

// ListenLoopback asks the host, over the shared connection, to listen on
// its own 127.0.0.1 at a port it picks (a remote port forward, as `ssh -R`
// makes) and returns the listener; connections to that port on the host
// arrive on it. The listener ends with the connection: after a reconnect the
// caller listens again. A refusal by the server wraps ErrForwardRefused.
func (r *Runner) ListenLoopback(ctx context.Context) (net.Listener, error) {
	c, err := r.pool.get(ctx, r.target)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", r.Where(), err)
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
	return ln, nil
}
