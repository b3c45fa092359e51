package models

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// shouldPing decides whether database/sql's pool pings a Postgres
// connection before reusing it. pgx pings only connections idle for over a
// second, but a fleet broker uses its connections more often than that
// (the heartbeat alone runs every leaseTTL/3), so after a server restart or
// a failover each stale connection would fail one real query, a heartbeat
// or an ask, with "terminating connection due to administrator command".
// A terminated backend leaves its FATAL message (or EOF) waiting on the
// socket: a peek that does not block finds it, and the ping then fails and
// the pool drops the connection instead of handing it out.
func shouldPing(_ context.Context, p stdlib.ShouldPingParams) bool {
	return p.IdleDuration > time.Second || pendingInput(p.Conn.PgConn().Conn())
}

// pendingInput reports whether an idle connection has bytes or EOF waiting,
// which on a connection between queries only a server closing it sends.
// It never blocks; a connection it cannot inspect (TLS) reports false.
func pendingInput(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	pending := false
	// Control, not Read: Read takes the descriptor's read lock, which pgx's
	// background reader may hold, blocked in a read, until the server next
	// sends something. A peek consumes nothing, so it needs no lock.
	_ = raw.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		pending = n > 0 || (n == 0 && err == nil) || (err != nil && !errors.Is(err, syscall.EAGAIN))
	})
	return pending
}
