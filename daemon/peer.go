package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// peerCred is who is at the other end of a unix socket connection: for a
// client, the process that listens; for the daemon, the one that dialled.
type peerCred struct {
	uid int
	pid int // 0 where the platform does not say
}

// peerOf asks the kernel who the peer of a unix connection is.
func peerOf(c net.Conn) (peerCred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peerCred{}, fmt.Errorf("not a unix socket connection: %T", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peerCred{}, err
	}
	var p peerCred
	var perr error
	if err := raw.Control(func(fd uintptr) { p, perr = sockPeer(int(fd)) }); err != nil {
		return peerCred{}, err
	}
	return p, perr
}

// ForeignPeerError says a socket is served by another user's process.
type ForeignPeerError struct {
	Socket string
	UID    int
}

func (e *ForeignPeerError) Error() string {
	return fmt.Sprintf("%s is served by a process of uid %d, not by you (uid %d); refusing to talk to it: "+
		"stop that process or set another settings.socket", e.Socket, e.UID, os.Geteuid())
}

// checkPeer refuses a daemon connection whose other end is not this user.
func checkPeer(c net.Conn, socket string) error {
	p, err := peerOf(c)
	if err != nil {
		return fmt.Errorf("check who serves %s: %w", socket, err)
	}
	if p.uid != os.Geteuid() {
		return &ForeignPeerError{Socket: socket, UID: p.uid}
	}
	return nil
}

// checkSocketDir refuses a socket directory that another user could use to
// replace the socket: one not owned by this user, or writable by its group
// or by others.
func checkSocketDir(socket string) error {
	dir := filepath.Dir(socket)
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // created 0700 by whoever starts the daemon
	}
	if err != nil {
		return fmt.Errorf("check the socket directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("the socket directory %s is not a directory; set another settings.socket", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("the socket directory %s belongs to uid %d, not to you (uid %d); set settings.socket to a directory of your own (e.g. ~/.switchboard/broker.sock)", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("the socket directory %s is writable by other users (mode %o), who could replace the socket; fix it with: chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	return nil
}
