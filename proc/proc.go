// Package proc is the contract between the broker and the runners that start
// Claude Code somewhere: on this machine (local) or over SSH (remote). It holds
// only types, so both sides can depend on it without depending on each other.
package proc

import (
	"context"
	"errors"
	"io"
	"io/fs"
)

// ErrConnectionLost marks (errors.Is) a process or file operation that
// failed because the connection to its host was lost, not because the
// program failed: a retryable fault. Runners over a network wrap it.
var ErrConnectionLost = errors.New("connection to the host lost")

// Spec describes one process to start.
type Spec struct {
	// Dir is the absolute working directory on the runner's host.
	Dir string
	// Command is the program: an absolute path, a path starting with "~/"
	// (the runner's home), or a bare name looked up on the host's PATH.
	Command string
	// Args are passed as separate arguments; runners quote them for any shell
	// they go through. Message text never travels here, only on stdin.
	Args []string
	// Env is added to the host's environment for this process.
	Env map[string]string
	// Nice lowers the process's CPU priority by this much, as nice(1)'s -n
	// does (0 to 19; the kernel caps the result at 19), for every thread it
	// ever has: it is set before the program starts, so threads the program
	// creates inherit it. It is for a process that shares its machine's CPU
	// with the broker, so that the broker's short bursts of work are not
	// queued behind it. Runners whose processes run on another machine
	// ignore it: there, nothing of the broker waits for that CPU.
	Nice int
}

// Process is a started program with its standard streams.
type Process interface {
	// Stdin receives the stream-json input; closing it ends Claude's input.
	Stdin() io.WriteCloser
	// Stdout yields the stream-json events.
	Stdout() io.Reader
	// Stderr yields diagnostics. Runners buffer or drain it so an unread
	// stderr never blocks the process.
	Stderr() io.Reader
	// Wait blocks until the process exits and returns its error, if any.
	Wait() error
	// Kill stops the process at once.
	Kill() error
	// Pid is the process id on its host, or 0 when unknown.
	Pid() int
}

// Files gives access to files on the runner's host. Errors about a file that
// does not exist wrap fs.ErrNotExist (errors.Is), on every host: the broker
// tells a missing session file from an unreachable host by it.
type Files interface {
	Stat(ctx context.Context, path string) (fs.FileInfo, error)
	ReadFile(ctx context.Context, path string) ([]byte, error)
	Remove(ctx context.Context, path string) error
	// WriteFile creates or replaces path with data, readable and writable
	// by its owner only (0600, whatever the umask), creating missing parent
	// directories with mode 0700. Other users on the host must never be able
	// to read what it writes: it carries session credentials. "~/" starts
	// the runner's home, as in Spec.Command.
	WriteFile(ctx context.Context, path string, data []byte) error
	// Home is the home directory of the user processes run as.
	Home(ctx context.Context) (string, error)
}

// Runner starts processes and reaches files on one host.
type Runner interface {
	Start(ctx context.Context, spec Spec) (Process, error)
	Files() Files
	// Where names the host for people: "local" or the SSH destination.
	Where() string
}
