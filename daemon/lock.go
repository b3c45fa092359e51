// Package daemon runs one switchboard broker per user behind a unix socket
// and gives Claude Code windows a stdio proxy to it, so that however many
// windows use switchboard, a session never has two Claude processes.
package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// maxSocketPath is the longest unix socket path every platform accepts
// (sun_path is 104 bytes on macOS and the BSDs, 108 on Linux).
const maxSocketPath = 103

// RunningError says another daemon already holds the socket's lock.
type RunningError struct {
	Socket string
	PID    int // 0 when the other daemon has not written it yet
}

func (e *RunningError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("a switchboard daemon is already running on %s", e.Socket)
	}
	return fmt.Sprintf("a switchboard daemon is already running on %s (pid %d)", e.Socket, e.PID)
}

// Lock is the proof that this process is the one daemon for a socket. Take it
// before opening the store or starting the broker: a second broker on the
// same database would start a second Claude process for a session.
type Lock struct {
	socket string
	path   string
	f      *os.File
}

// Acquire takes the daemon lock for socket: an flock on "<socket>.lock",
// held until Release. The socket's directory is created 0700. When another
// daemon holds the lock it returns a *RunningError naming its pid.
func Acquire(socket string) (*Lock, error) {
	if socket == "" {
		return nil, errors.New("daemon socket path is empty; set settings.socket")
	}
	socket, err := filepath.Abs(socket)
	if err != nil {
		return nil, fmt.Errorf("daemon socket %s: %w", socket, err)
	}
	if len(socket) > maxSocketPath {
		return nil, fmt.Errorf("daemon socket path %s is %d bytes, over the %d that unix sockets allow; set a shorter settings.socket", socket, len(socket), maxSocketPath)
	}
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return nil, fmt.Errorf("create the daemon socket directory: %w", err)
	}
	path := socket + ".lock"
	// A daemon shutting down removes the lock file while it still holds the
	// lock; whoever opened the old file then locks an unlinked inode. Check
	// the locked file is still the one at path, and start over if not.
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open daemon lock %s: %w", path, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			pid := readPID(f)
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, &RunningError{Socket: socket, PID: pid}
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !samePath(f, path) {
			f.Close()
			continue
		}
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, fmt.Errorf("write daemon lock %s: %w", path, err)
		}
		if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
			f.Close()
			return nil, fmt.Errorf("write daemon lock %s: %w", path, err)
		}
		return &Lock{socket: socket, path: path, f: f}, nil
	}
	return nil, fmt.Errorf("lock %s: the file keeps being replaced; is another daemon starting and stopping?", path)
}

// Socket is the absolute socket path the lock guards.
func (l *Lock) Socket() string { return l.socket }

// Release removes the lock file and lets another daemon start. Removing
// before unlocking means nobody can lock the old file after it is gone
// from the directory without noticing (see Acquire).
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(l.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("release daemon lock %s: %w", l.path, err)
	}
	return nil
}

func readPID(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(string(bytes.TrimSpace(buf[:n])))
	if err != nil {
		return 0
	}
	return pid
}

func samePath(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	if err != nil {
		return false
	}
	return os.SameFile(a, b)
}

// lockStart serialises starting a daemon among the clients of one socket,
// so that two proxies finding no daemon start one, not two (the second
// would only fail on the daemon lock, but its failure would look like a
// daemon that cannot start). The file is left in place: removing it would
// reopen the race Acquire guards against.
func lockStart(socket string) (release func(), err error) {
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return nil, fmt.Errorf("create the daemon socket directory: %w", err)
	}
	path := socket + ".start"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// LockHolder returns the pid of the live process that holds the daemon
// lock of socket, 0 when there is none (no lock file, or a pid that is no
// longer running, as a SIGKILLed daemon leaves).
func LockHolder(socket string) int { return lockHolder(socket) }

func lockHolder(socket string) int {
	f, err := os.Open(socket + ".lock")
	if err != nil {
		return 0
	}
	defer f.Close()
	pid := readPID(f)
	if pid <= 0 || !ProcessAlive(pid) {
		return 0
	}
	return pid
}

// ProcessAlive reports whether pid runs. A zombie does not count: a
// daemon's parent may be gone and nobody may reap it at once.
func ProcessAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no procfs (macOS): kill said it exists
	}
	s := string(data)
	i := bytes.LastIndexByte(data, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
