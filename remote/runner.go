package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/switchboard-mcp/switchboard/proc"
)

// Runner starts processes and reaches files on one SSH host, over its pool's
// shared connection. It implements proc.Runner.
type Runner struct {
	pool   *Pool
	target Target
}

var _ proc.Runner = (*Runner)(nil)

// Where names the host for people: the alias the user configured, else
// user@host:port.
func (r *Runner) Where() string {
	if r.target.Alias != "" {
		return r.target.Alias
	}
	return r.target.Destination()
}

// Ping checks that the host is reachable: it dials (or reuses the
// connection) and waits for an answer to a keepalive request.
func (r *Runner) Ping(ctx context.Context) error {
	c, err := r.pool.get(ctx, r.target)
	if err != nil {
		return err
	}
	err = r.pool.await(ctx, func() error {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("ping %s: %w", r.Where(), err)
	}
	return nil
}

// await runs f, which cannot be cancelled, and returns early when ctx ends.
// f always ends in bounded time: keepalives close a connection that stops
// answering, which fails every call on it.
func (p *Pool) await(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		done <- f()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// session opens a session on the shared connection, redialling once when
// the connection turns out to have died since its last use.
func (r *Runner) session(ctx context.Context) (*conn, *ssh.Session, error) {
	for attempt := 0; ; attempt++ {
		c, err := r.pool.get(ctx, r.target)
		if err != nil {
			return nil, nil, err
		}
		s, err := c.client.NewSession()
		if err == nil {
			return c, s, nil
		}
		var refused *ssh.OpenChannelError
		if attempt > 0 || errors.As(err, &refused) {
			return nil, nil, fmt.Errorf("open ssh session on %s: %w", r.Where(), err)
		}
		// The transport is gone; once the watcher has seen it, get redials.
		select {
		case <-c.dead:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// Start runs spec on the host: in spec.Dir, with spec.Env added, through the
// user's login shell so a command found on the login PATH works. It returns
// once the program is exec'd, or with an error naming the host and the
// missing directory or program. ctx bounds the start only, not the process.
//
// spec.Nice is ignored: the program runs on the remote host, whose CPU the
// broker does not use, so a lower priority there would only slow Claude
// against the host's other work without speeding up the broker.
func (r *Runner) Start(ctx context.Context, spec proc.Spec) (proc.Process, error) {
	cmd, err := buildCommand(spec)
	if err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", spec.Command, r.Where(), err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", spec.Command, r.Where(), err)
	}
	c, sess, err := r.session(ctx)
	if err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", spec.Command, r.Where(), err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	p := &process{
		r: r, c: c, sess: sess, spec: spec,
		stdin: stdinCloser{stdin}, stdout: stdout, stderr: newStderrBuf(),
		exited: make(chan struct{}),
	}
	sess.Stderr = p.stderr
	if err := sess.Start(cmd); err != nil {
		sess.Close()
		return nil, fmt.Errorf("start %s on %s: %w", spec.Command, r.Where(), err)
	}
	r.pool.wg.Add(1)
	go p.wait()

	select {
	case <-p.stderr.ready:
		p.pid, _, _ = p.stderr.state()
		return p, nil
	case <-p.exited:
		return nil, p.Wait()
	case <-ctx.Done():
		// Return now rather than after the login shell. Before the ready
		// marker only the user's shell runs: the closed channel makes its
		// next write to stderr, the marker, fail, so the program is never
		// exec'd. SIGKILL then would risk killing ~/.profile half-way
		// through, leaving behind whatever lock files it held.
		p.pid, _, _ = p.stderr.state()
		p.Kill()
		return nil, fmt.Errorf("start %s on %s: %w", spec.Command, r.Where(), ctx.Err())
	}
}

// stdinCloser makes closing stdin after the program has exited a no-op, as
// it is for a local pipe: the SSH channel reports io.EOF once the server has
// closed it, but nothing was lost.
type stdinCloser struct{ io.WriteCloser }

func (s stdinCloser) Close() error {
	if err := s.WriteCloser.Close(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// process is a program running in an SSH session.
type process struct {
	r      *Runner
	c      *conn
	sess   *ssh.Session
	spec   proc.Spec
	stdin  io.WriteCloser
	stdout io.Reader
	stderr *stderrBuf
	pid    int

	exited chan struct{}
	err    error // set before exited closes
	killMu sync.Mutex
	killed bool
}

func (p *process) Stdin() io.WriteCloser { return p.stdin }
func (p *process) Stdout() io.Reader     { return p.stdout }
func (p *process) Stderr() io.Reader     { return p.stderr }
func (p *process) Pid() int              { return p.pid }

func (p *process) Wait() error {
	<-p.exited
	return p.err
}

func (p *process) wait() {
	defer p.r.pool.wg.Done()
	err := p.sess.Wait()
	p.sess.Close()
	p.stderr.closeWrite()
	p.err = p.explain(err)
	close(p.exited)
}

// explain turns a session's end into an error a person can act on.
func (p *process) explain(err error) error {
	if err == nil {
		return nil
	}
	where, cmd := p.r.Where(), p.spec.Command
	_, noDir, noCmd := p.stderr.state()
	started := false
	select {
	case <-p.stderr.ready:
		started = true
	default:
	}
	var exit *ssh.ExitError
	isExit := errors.As(err, &exit)
	switch {
	case !started && noDir && isExit && exit.ExitStatus() == exitNoDir:
		return notFoundError(fmt.Sprintf("start %s on %s: directory %s does not exist (or is not accessible)", cmd, where, p.spec.Dir))
	case !started && noCmd && isExit && exit.ExitStatus() == exitNoCmd:
		if strings.Contains(cmd, "/") {
			return notFoundError(fmt.Sprintf("start on %s: program %s does not exist or is not executable", where, cmd))
		}
		return notFoundError(fmt.Sprintf("start on %s: program %s not found on the login shell's PATH (set claudePath to its full path)", where, cmd))
	}
	p.killMu.Lock()
	killed := p.killed
	p.killMu.Unlock()
	if killed {
		return fmt.Errorf("%s on %s: killed", cmd, where)
	}
	tail := p.stderr.lastLines()
	if isExit {
		return &ExitError{Command: cmd, Where: where, Started: started, Stderr: tail, err: exit}
	}
	if tail != "" {
		tail = ": " + tail
	}
	return fmt.Errorf("%s on %s: %w%s", cmd, where, p.c.lostErr(), tail)
}

// ExitError reports a remote program that exited with a non-zero status or
// died on a signal, with the end of what it wrote to stderr.
type ExitError struct {
	Command string // the program as given in the spec
	Where   string // the host, as Runner.Where names it
	// Started is false when the user's login shell exited before it ran
	// the program, for instance because ~/.profile failed.
	Started bool
	Stderr  string // the recent stderr, trimmed
	err     *ssh.ExitError
}

// ExitCode is the exit status, or -1 when a signal ended the program.
func (e *ExitError) ExitCode() int {
	if e.err.Signal() != "" {
		return -1
	}
	return e.err.ExitStatus()
}

func (e *ExitError) Error() string {
	what := "exited"
	if !e.Started {
		what = "exited before it started"
	}
	var msg string
	if sig := e.err.Signal(); sig != "" {
		msg = fmt.Sprintf("%s on %s %s on signal %s", e.Command, e.Where, what, sig)
	} else {
		msg = fmt.Sprintf("%s on %s %s with status %d", e.Command, e.Where, what, e.err.ExitStatus())
	}
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Unwrap gives errors.As access to the *ssh.ExitError.
func (e *ExitError) Unwrap() error { return e.err }

// notFoundError is a missing remote directory or program; it matches
// fs.ErrNotExist.
type notFoundError string

func (e notFoundError) Error() string { return string(e) }
func (e notFoundError) Unwrap() error { return fs.ErrNotExist }

// Kill stops the remote program at once. It sends SIGKILL as an SSH signal
// request, but sshd refuses those in some setups (sessions of root, which
// run without privilege separation), so it also runs kill on the host
// against the program's process group: the session's, which sshd starts
// with setsid, holding the program, its children and its stdin watcher.
func (p *process) Kill() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	p.killMu.Lock()
	p.killed = true
	p.killMu.Unlock()
	_ = p.sess.Signal(ssh.SIGKILL) // the session may already be gone
	var killErr error
	if p.pid > 0 {
		killErr = p.killByPid()
	}
	_ = p.stdin.Close()
	if err := p.sess.Close(); err != nil && !errors.Is(err, io.EOF) && killErr == nil {
		killErr = err
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	if killErr != nil {
		return fmt.Errorf("kill %s (pid %d) on %s: %w", p.spec.Command, p.pid, p.r.Where(), killErr)
	}
	return nil
}

func (p *process) killByPid() error {
	s, err := p.c.client.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	// The group kill fails harmlessly where the program leads no group. A
	// failing kill means the program is already gone: not an error.
	err = s.Run(fmt.Sprintf(`g=$(ps -o pgid= -p %d 2>/dev/null | tr -d ' '); { [ -n "$g" ] && kill -KILL -- -"$g" 2>/dev/null; } || kill -KILL %d 2>/dev/null`, p.pid, p.pid))
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		return nil
	}
	return err
}
