package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
)

// dial connects to t, through its ProxyJump hops when it has any: the first
// hop over TCP, every further hop through a channel of the previous one, each
// with its own authentication and host key check. It returns the final
// client and the jump clients, which must be closed after it.
func dial(ctx context.Context, t Target, log *slog.Logger) (*ssh.Client, []*ssh.Client, error) {
	final := t
	final.ProxyJump = nil
	hops := append(append([]Target(nil), t.ProxyJump...), final)

	var clients []*ssh.Client
	closeAll := func() {
		for i := len(clients) - 1; i >= 0; i-- {
			clients[i].Close()
		}
	}
	for i, h := range hops {
		var via *ssh.Client
		var viaName string
		if i > 0 {
			via, viaName = clients[i-1], hops[i-1].Destination()
		}
		c, err := dialHop(ctx, h, via, viaName, log)
		if err != nil {
			closeAll()
			if i < len(hops)-1 {
				return nil, nil, fmt.Errorf("jump host %s: %w", h.Destination(), err)
			}
			return nil, nil, err
		}
		clients = append(clients, c)
	}
	return clients[len(clients)-1], clients[:len(clients)-1], nil
}

// dialHop connects to h directly, or through the client via when not nil.
func dialHop(ctx context.Context, h Target, via *ssh.Client, viaName string, log *slog.Logger) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, h.ConnectTimeout)
	defer cancel()

	hostKey, algos, err := hostKeyCheck(h, log)
	if err != nil {
		return nil, err
	}
	a, err := loadAuth(h, log)
	if err != nil {
		return nil, err
	}
	defer a.Close() // agent signatures are only needed during the handshake

	var nc net.Conn
	if via == nil {
		var d net.Dialer
		if nc, err = d.DialContext(ctx, "tcp", h.Addr()); err != nil {
			return nil, fmt.Errorf("connect to %s: %w", h.Addr(), err)
		}
	} else if nc, err = via.DialContext(ctx, "tcp", h.Addr()); err != nil {
		return nil, fmt.Errorf("connect to %s through jump host %s: %w", h.Addr(), viaName, err)
	}

	// The handshake has no context of its own: closing the connection is
	// what interrupts it on timeout or cancel.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(nc, h.Addr(), &ssh.ClientConfig{
		User:              h.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(a.signers...)},
		HostKeyCallback:   hostKey,
		HostKeyAlgorithms: algos,
		Timeout:           h.ConnectTimeout,
	})
	if !stop() {
		if err == nil {
			cc.Close()
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("ssh handshake with %s: no answer within ConnectTimeout %s: %w", h.Addr(), h.ConnectTimeout, ctx.Err())
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", h.Addr(), ctx.Err())
	}
	if err != nil {
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			err = a.explain(err)
		}
		return nil, fmt.Errorf("ssh to %s: %w", h.Destination(), err)
	}
	return ssh.NewClient(cc, chans, reqs), nil
}
