package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// StartTimeout bounds how long Connect waits for a daemon it started to
// accept connections.
const StartTimeout = 15 * time.Second

// StartFunc starts a daemon in the background and returns at once. exited,
// when not nil, yields once if that daemon process ends, so a daemon that
// cannot start (a bad config) is reported at once, not after StartTimeout.
type StartFunc func(ctx context.Context) (exited <-chan error, err error)

// ConnectOptions configure Connect.
type ConnectOptions struct {
	Socket  string
	Caller  string
	Version string
	// Config is the absolute path of the caller's config; a daemon serving
	// another one refuses the connection.
	Config string
	// Start, when set, starts the daemon if none answers on Socket.
	Start  StartFunc
	Logger *slog.Logger
}

// NotRunningError says no daemon answers on a socket and none was started.
type NotRunningError struct {
	Socket string
	Err    error
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("no switchboard daemon is running on %s (start one with: switchboard serve)", e.Socket)
}

func (e *NotRunningError) Unwrap() error { return e.Err }

// Connect returns a connection to the daemon on Socket that has said hello
// as Caller and is ready for MCP. When no daemon answers and Start is set,
// it starts one and waits for it.
func Connect(ctx context.Context, opts ConnectOptions) (*Conn, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// A socket another user could replace is refused before anything is
	// sent to it or started behind it.
	if err := checkSocketDir(opts.Socket); err != nil {
		return nil, err
	}
	conn, err := dial(ctx, opts)
	if refused(err) {
		return nil, err
	}
	if err == nil || opts.Start == nil {
		if err != nil {
			return nil, &NotRunningError{Socket: opts.Socket, Err: err}
		}
		return conn, nil
	}
	release, lerr := lockStart(opts.Socket)
	if lerr != nil {
		return nil, lerr
	}
	defer release()
	// Another client may have started it while we waited for the start lock.
	if conn, err := dial(ctx, opts); err == nil || refused(err) {
		return conn, err
	}
	// A daemon that holds the lock but does not answer is shutting down or
	// listening again on a socket someone removed: wait for it to answer or
	// to exit, rather than start one that would find it "already running".
	if conn, err := waitForHolder(ctx, opts, log); conn != nil || err != nil {
		return conn, err
	}
	log.Info("starting the switchboard daemon", "socket", opts.Socket)
	exited, err := opts.Start(ctx)
	if err != nil {
		return nil, fmt.Errorf("start the switchboard daemon: %w", err)
	}
	deadline := time.NewTimer(StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("the switchboard daemon did not answer on %s within %s: %w", opts.Socket, StartTimeout, err)
		case exitErr := <-exited:
			if conn, err := dial(ctx, opts); err == nil {
				return conn, nil
			}
			return nil, fmt.Errorf("the switchboard daemon exited at start: %w", exitErr)
		case <-tick.C:
			var conn *Conn
			if conn, err = dial(ctx, opts); err == nil || refused(err) {
				return conn, err
			}
		}
	}
}

// Conn is a connection to the daemon, past the hello, ready for MCP.
type Conn struct {
	net.Conn
	// Daemon is what the daemon said about itself.
	Daemon Welcome
}

// RefusedError is the daemon's refusal of a client (another config).
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// refused reports whether err is final: a daemon that answers but must not
// be used, which starting another daemon cannot fix.
func refused(err error) bool {
	var fe *ForeignPeerError
	var re *RefusedError
	return errors.As(err, &fe) || errors.As(err, &re)
}

// dial connects, sends the hello line and reads the daemon's welcome.
func dial(ctx context.Context, opts ConnectOptions) (*Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", opts.Socket)
	if err != nil {
		return nil, err
	}
	// The hello names the caller's team and config: say it only to a
	// daemon of this user.
	if err := checkPeer(conn, opts.Socket); err != nil {
		conn.Close()
		return nil, err
	}
	hello, err := json.Marshal(Hello{Caller: opts.Caller, Version: opts.Version, Config: cleanPath(opts.Config), Proto: helloProto})
	if err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := conn.Write(append(hello, '\n')); err != nil {
		conn.Close()
		return nil, fmt.Errorf("say hello to the daemon on %s: %w", opts.Socket, err)
	}
	w, err := readWelcome(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("the daemon on %s did not answer hello (%w); if it is an older switchboard, restart it: switchboard restart", opts.Socket, err)
	}
	if w.Error != "" {
		conn.Close()
		return nil, &RefusedError{Reason: w.Error}
	}
	return &Conn{Conn: conn, Daemon: w}, nil
}

// readWelcome reads the daemon's welcome line a byte at a time, so nothing
// of the MCP stream that follows is taken from the connection.
func readWelcome(conn net.Conn) (Welcome, error) {
	_ = conn.SetReadDeadline(time.Now().Add(helloTimeout))
	defer conn.SetReadDeadline(time.Time{})
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := conn.Read(b); err != nil {
			return Welcome{}, err
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
		if len(line) > maxHelloBytes {
			return Welcome{}, errLineTooLong
		}
	}
	var w Welcome
	if err := json.Unmarshal(line, &w); err != nil {
		return Welcome{}, fmt.Errorf("welcome is not JSON: %w", err)
	}
	return w, nil
}

// Running reports whether a daemon of this user answers on socket.
func Running(ctx context.Context, socket string) bool {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return false
	}
	defer conn.Close()
	return checkPeer(conn, socket) == nil
}

// waitForHolder waits, up to StartTimeout, while a live process holds the
// daemon lock of opts.Socket, and returns a connection if it answers. It
// returns nil, nil once nobody holds the lock.
func waitForHolder(ctx context.Context, opts ConnectOptions, log *slog.Logger) (*Conn, error) {
	deadline := time.Now().Add(StartTimeout)
	logged := false
	for {
		pid := lockHolder(opts.Socket)
		if pid == 0 {
			return nil, nil
		}
		conn, err := dial(ctx, opts)
		if err == nil || refused(err) {
			return conn, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the switchboard daemon (pid %d) holds %s.lock but has not answered on %s for %s; stop it with: kill %d", pid, opts.Socket, opts.Socket, StartTimeout, pid)
		}
		if !logged {
			log.Info("waiting for the switchboard daemon that holds the lock to answer or exit", "pid", pid, "socket", opts.Socket)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
