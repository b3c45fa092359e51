// Package local runs Claude Code on this machine: processes through os/exec
// in their own process group, files through the os package.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard-mcp/switchboard/proc"
)

// installHint tells a person how to fix a Claude binary that cannot be found.
const installHint = "install Claude Code (npm i -g @anthropic-ai/claude-code) or set claudePath"

// stderrLimit bounds how much of a process's stderr is kept: enough for the
// last screenful of a crash, small enough for a pool of long-lived processes.
const stderrLimit = 64 << 10

// waitDelay bounds how long Wait keeps draining stderr after the process
// exits, for when a grandchild still holds the pipe open.
const waitDelay = 2 * time.Second

// Options configure a Runner.
type Options struct {
	// Env is the base environment of every process, as KEY=value entries;
	// nil means os.Environ(). Spec.Env entries override it.
	Env []string
	// Logger receives process start and exit records; nil means slog.Default().
	Logger *slog.Logger
}

// Runner starts processes and reaches files on this machine. It implements
// proc.Runner and is safe for concurrent use.
type Runner struct {
	env []string
	log *slog.Logger
}

var _ proc.Runner = (*Runner)(nil)

// New returns a Runner for this machine.
func New(opts Options) *Runner {
	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Runner{env: env, log: log}
}

// Where names this host for people.
func (r *Runner) Where() string { return "local" }

// Files gives access to this machine's files; "~/" means the home directory.
func (r *Runner) Files() proc.Files { return files{home: r.home} }

// home is the home directory processes see: HOME from the base environment,
// falling back to the current user's.
func (r *Runner) home() (string, error) {
	if h := lookupEnv(r.env, "HOME"); h != "" {
		return h, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home directory: %w", err)
	}
	return h, nil
}

// Start starts spec.Command in spec.Dir. ctx bounds only the start itself:
// the process outlives it and is stopped with Kill.
func (r *Runner) Start(ctx context.Context, spec proc.Spec) (proc.Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Command, err)
	}
	// PWD as a shell would set it: Claude Code's Bash tool and the shells
	// it starts trust an inherited PWD that matches the directory.
	extra := map[string]string{"PWD": spec.Dir}
	for k, v := range spec.Env {
		extra[k] = v
	}
	env := mergeEnv(r.env, extra)
	path, err := r.resolve(spec.Command, lookupEnv(env, "PATH"))
	if err != nil {
		return nil, err
	}
	if err := checkDir(spec.Dir); err != nil {
		return nil, err
	}

	cmd := exec.Command(path, spec.Args...)
	if spec.Nice > 0 {
		if cmd, err = niced(spec.Nice, path, spec.Args); err != nil {
			return nil, err
		}
	}
	cmd.Dir = spec.Dir
	cmd.Env = env
	cmd.SysProcAttr = procAttr()
	stderr := &ring{limit: stderrLimit}
	cmd.Stderr = stderr
	cmd.WaitDelay = waitDelay

	// Plain pipes rather than cmd.StdinPipe and cmd.StdoutPipe: Wait closes
	// those at exit, so a fast process would close stdin under a caller about
	// to close it (its Close then fails) and lose output not yet read.
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	cmd.Stdin = stdinR
	cmd.Stdout = stdoutW
	err = cmd.Start()
	// The child has its own copies now; ours would keep the pipes open.
	stdinR.Close()
	stdoutW.Close()
	if err != nil {
		stdinW.Close()
		stdoutR.Close()
		return nil, fmt.Errorf("start %s in %s: %w", path, spec.Dir, err)
	}
	stdin := &onceCloser{f: stdinW}

	p := &process{
		cmd:    cmd,
		name:   filepath.Base(path),
		stdin:  stdin,
		stdout: &eofCloser{f: stdoutR},
		stderr: stderr,
		done:   make(chan struct{}),
		log:    r.log.With("pid", cmd.Process.Pid, "command", path),
	}
	go p.wait()
	p.log.Debug("process started", "dir", spec.Dir, "nice", spec.Nice)
	return p, nil
}

// niced is the command that runs path with args at n lower CPU priority:
// nice(1) lowers its own priority, then executes the program in place, so
// the program is born at the lower priority with every thread it makes
// (Linux keeps a niceness per thread; raising a running process's would
// miss the threads it already made), keeps its pid, and its command line
// is its own again (reap.go's pattern still finds it).
//
// Not done in this process: lowering the thread that forks would outlive
// the fork (an unprivileged broker cannot raise a thread's priority back),
// and ending that thread instead makes the kernel send Pdeathsig to every
// child it ever forked (TestNicedProcessEndingKillsNoOther).
func niced(n int, path string, args []string) (*exec.Cmd, error) {
	nice, err := exec.LookPath("nice")
	if err != nil {
		return nil, fmt.Errorf("start %s at lower CPU priority: %w; install coreutils, or set settings.claudeNice: 0", path, err)
	}
	return exec.Command(nice, append([]string{"-n", strconv.Itoa(n), "--", path}, args...)...), nil
}

// resolve turns a Spec.Command into the absolute path of an executable.
func (r *Runner) resolve(command, pathEnv string) (string, error) {
	switch {
	case command == "":
		return "", errors.New("start: no command given; " + installHint)
	case strings.HasPrefix(command, "~/"):
		home, err := r.home()
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", command, err)
		}
		return checkExecutable(filepath.Join(home, command[2:]))
	case filepath.IsAbs(command):
		return checkExecutable(command)
	case strings.ContainsRune(command, '/'):
		return "", fmt.Errorf("command %q must be an absolute path, start with ~/, or be a bare name found on PATH", command)
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" || !filepath.IsAbs(dir) {
			// Relative PATH entries would depend on our working directory,
			// not the process's; exec.LookPath refuses them too.
			continue
		}
		p := filepath.Join(dir, command)
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH %q: %s: %w", command, pathEnv, installHint, exec.ErrNotFound)
}

func checkExecutable(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("command %s: %w; %s", path, err, installHint)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("command %s is not an executable file; %s", path, installHint)
	}
	return path, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0
}

func checkDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("working directory %q is not an absolute path", dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("working directory %s is not a directory", dir)
	}
	return nil
}

// mergeEnv returns base with extra's entries added, extra winning. The
// extra keys are sorted so the environment does not depend on map order.
func mergeEnv(base []string, extra map[string]string) []string {
	env := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, override := extra[k]; !override {
			env = append(env, kv)
		}
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}

// lookupEnv returns the last value of key in env, as the C library would.
func lookupEnv(env []string, key string) string {
	val := ""
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			val = v
		}
	}
	return val
}

// process is a started local program.
type process struct {
	cmd    *exec.Cmd
	name   string
	stdin  *onceCloser
	stdout *eofCloser
	stderr *ring
	log    *slog.Logger

	done chan struct{} // closed once the process has been reaped
	err  error         // Wait's result, set before done is closed

	mu     sync.Mutex
	exited bool // the process was reaped; its group id may be reused
}

func (p *process) Stdin() io.WriteCloser { return p.stdin }
func (p *process) Stdout() io.Reader     { return p.stdout }

// Stderr returns what the process has written to stderr so far (its last
// 64 KiB); read it after Wait for everything.
func (p *process) Stderr() io.Reader { return strings.NewReader(p.stderr.String()) }
func (p *process) Pid() int          { return p.cmd.Process.Pid }

// Wait blocks until the process exits. It may be called from several
// goroutines, and concurrently with Kill.
func (p *process) Wait() error {
	<-p.done
	return p.err
}

// Kill sends SIGKILL to the process's whole group. Killing a process that
// already exited is not an error.
func (p *process) Kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return nil
	}
	// The reaper marks the process exited under mu before reaping it, so
	// while we hold mu the group id still names our group.
	err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s (pid %d): %w", p.name, p.cmd.Process.Pid, err)
	}
	return nil
}

// wait reaps the process and records how it ended.
func (p *process) wait() {
	awaitExit(p.cmd.Process.Pid)
	p.mu.Lock()
	p.exited = true
	p.mu.Unlock()
	err := p.cmd.Wait()
	// Nobody reads stdin any more; release our end as Wait would have for a
	// StdinPipe. The caller's own Close stays harmless.
	p.stdin.Close()

	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		p.err = &ExitError{Name: p.name, Stderr: lastLines(p.stderr.String(), 10), err: exitErr}
	case err != nil && !errors.Is(err, exec.ErrWaitDelay):
		// ErrWaitDelay alone means a clean exit whose straggling child
		// kept stderr open; that is not the process's failure.
		p.err = fmt.Errorf("wait for %s: %w", p.name, err)
	}
	p.log.Debug("process exited", "err", p.err)
	close(p.done)
}

// ExitError reports a process that exited with a non-zero status or was
// killed by a signal, with the end of what it wrote to stderr.
type ExitError struct {
	Name   string // base name of the command, e.g. "claude"
	Stderr string // the last lines of stderr, trimmed
	err    *exec.ExitError
}

// ExitCode is the exit status, or -1 when a signal ended the process.
func (e *ExitError) ExitCode() int { return e.err.ExitCode() }

func (e *ExitError) Error() string {
	var msg string
	if ws, ok := e.err.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		msg = fmt.Sprintf("%s killed by signal %s", e.Name, ws.Signal())
	} else {
		msg = fmt.Sprintf("%s exited with status %d", e.Name, e.err.ExitCode())
	}
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Unwrap gives errors.As access to the *exec.ExitError.
func (e *ExitError) Unwrap() error { return e.err }

// lastLines returns at most n trailing non-empty lines of s, joined by "\n".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// eofCloser closes the read end of the stdout pipe once the reader has seen
// its end, so a finished process holds no descriptor.
type eofCloser struct {
	mu     sync.Mutex
	f      *os.File
	closed bool
}

func (r *eofCloser) Read(b []byte) (int, error) {
	n, err := r.f.Read(b)
	if err != nil {
		r.mu.Lock()
		if !r.closed {
			r.closed = true
			r.f.Close()
		}
		r.mu.Unlock()
		if errors.Is(err, os.ErrClosed) {
			err = io.EOF
		}
	}
	return n, err
}

// onceCloser is the write end of the stdin pipe. Close may be called any
// number of times, by the caller and by the reaper, and only the first
// closes the file; so closing stdin after the process exited is not an error.
type onceCloser struct {
	f    *os.File
	once sync.Once
	err  error
}

func (w *onceCloser) Write(b []byte) (int, error) { return w.f.Write(b) }

func (w *onceCloser) Close() error {
	w.once.Do(func() { w.err = w.f.Close() })
	return w.err
}

// ring keeps the last limit bytes written to it.
type ring struct {
	mu    sync.Mutex
	limit int
	buf   []byte
}

func (r *ring) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(b)
	if n >= r.limit {
		r.buf = append(r.buf[:0], b[n-r.limit:]...)
		return n, nil
	}
	if over := len(r.buf) + n - r.limit; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	r.buf = append(r.buf, b...)
	return n, nil
}

func (r *ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.buf)
}

// files reaches this machine's files.
type files struct {
	home func() (string, error)
}

func (f files) expand(path string) (string, error) {
	if path != "~" && !strings.HasPrefix(path, "~/") {
		return path, nil
	}
	home, err := f.home()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, path[1:]), nil
}

func (f files) Stat(ctx context.Context, path string) (fs.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := f.expand(path)
	if err != nil {
		return nil, err
	}
	return os.Stat(p)
}

func (f files) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := f.expand(path)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

func (f files) Remove(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := f.expand(path)
	if err != nil {
		return err
	}
	return os.Remove(p)
}

func (f files) WriteFile(ctx context.Context, path string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := f.expand(path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	// Create it private, then write: the data never sits in a file others
	// could open, and an existing file with a looser mode is tightened.
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := fh.Chmod(0o600); err != nil {
		fh.Close()
		return err
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

func (f files) Home(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return f.home()
}
