// Package proctest is the test suite every proc.Runner must pass, so the
// broker can hold a local or a remote runner without knowing which.
//
// Beyond proc's doc comments, the suite pins down these behaviours:
//   - Start fails for a context that is already done.
//   - A missing command or working directory is an error (from Start, or
//     else from Wait) that names the command or the directory.
//   - Wait's error for a non-zero exit satisfies
//     errors.As(err, &interface{ ExitCode() int }) with the exit status.
//   - After Wait returns, Stderr yields what the process wrote to stderr.
//   - Closing Stdin after the process exited is not an error, so a caller
//     racing a fast process never sees a spurious failure.
//   - Files report a missing file with an error matching fs.ErrNotExist.
package proctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/proc"
)

// Harness gives the suite a runner and what it needs on the runner's host.
type Harness struct {
	// Runner is the runner under test.
	Runner proc.Runner
	// TempDir returns a new empty directory on the runner's host that the
	// test process can also create files in, removed when the test ends.
	TempDir func() string
	// ShellPath is the absolute path of a POSIX shell on the runner's host.
	ShellPath string
}

// hangGuard bounds how long the suite waits for something that should
// happen promptly; reaching it means the runner hangs, not that it is slow.
const hangGuard = 30 * time.Second

// Run runs the suite against h as subtests of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Runner == nil || h.TempDir == nil || h.ShellPath == "" {
		t.Fatal("proctest: Harness needs Runner, TempDir and ShellPath")
	}
	s := suite{h}
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"StartsInDir", s.startsInDir},
		{"PassesEnv", s.passesEnv},
		{"ArgsArriveExactly", s.argsArriveExactly},
		{"BareNameOnPath", s.bareNameOnPath},
		{"StdinRoundTrip", s.stdinRoundTrip},
		{"LargeStdinRoundTrip", s.largeStdinRoundTrip},
		{"StdoutAndStderrSeparate", s.stdoutAndStderrSeparate},
		{"ExitStatus", s.exitStatus},
		{"CloseStdinAfterExit", s.closeStdinAfterExit},
		{"CleanExit", s.cleanExit},
		{"KillStopsProcess", s.killStopsProcess},
		{"KillWhileWaiting", s.killWhileWaiting},
		{"MissingBinary", s.missingBinary},
		{"MissingDir", s.missingDir},
		{"DirIsAFile", s.dirIsAFile},
		{"CanceledContext", s.canceledContext},
		{"Where", s.where},
		{"FilesStatReadRemove", s.filesStatReadRemove},
		{"FilesMissing", s.filesMissing},
		{"FilesHome", s.filesHome},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct{ h Harness }

// run starts the shell with script and the given positional arguments in
// dir, closes stdin, and returns stdout, stderr and Wait's error.
func (s suite) run(t *testing.T, dir string, env map[string]string, script string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	p := s.start(t, proc.Spec{
		Dir:     dir,
		Command: s.h.ShellPath,
		Args:    append([]string{"-c", script, "sh"}, args...),
		Env:     env,
	})
	if err := p.Stdin().Close(); err != nil {
		t.Errorf("close stdin: %v", err)
	}
	return s.finish(t, p)
}

// start starts spec and makes sure the process is gone when the test ends.
func (s suite) start(t *testing.T, spec proc.Spec) proc.Process {
	t.Helper()
	p, err := s.h.Runner.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("Start(%+v): %v", spec, err)
	}
	t.Cleanup(func() {
		p.Kill()
		waitGuarded(t, p)
	})
	return p
}

// finish reads stdout to its end, waits, and then reads stderr.
func (s suite) finish(t *testing.T, p proc.Process) (stdout, stderr string, err error) {
	t.Helper()
	out := readAllGuarded(t, p.Stdout())
	err = waitGuarded(t, p)
	errOut, rerr := io.ReadAll(p.Stderr())
	if rerr != nil {
		t.Errorf("read stderr: %v", rerr)
	}
	return out, string(errOut), err
}

// readAllGuarded reads r to EOF, failing the test if that takes hangGuard.
func readAllGuarded(t *testing.T, r io.Reader) string {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Errorf("read stdout: %v", res.err)
		}
		return string(res.b)
	case <-time.After(hangGuard):
		t.Fatalf("stdout did not reach EOF within %v", hangGuard)
		return ""
	}
}

// waitGuarded calls Wait, failing the test if it has not returned within
// hangGuard.
func waitGuarded(t *testing.T, p proc.Process) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- p.Wait() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(hangGuard):
		t.Fatalf("Wait did not return within %v", hangGuard)
		return nil
	}
}

func (s suite) startsInDir(t *testing.T) {
	// A space and a quote in the path catch runners that build a shell
	// command line without quoting.
	dir := filepath.Join(s.h.TempDir(), "work dir's $x")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, _, err := s.run(t, dir, nil, `pwd -P`)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSuffix(out, "\n"); got != want {
		t.Errorf("pwd = %q, want %q", got, want)
	}
}

func (s suite) passesEnv(t *testing.T) {
	env := map[string]string{
		"PROCTEST_PLAIN":  "value",
		"PROCTEST_TRICKY": `a b 'c' "d" $HOME ; $(false) \n ü`,
		"PROCTEST_EMPTY":  "",
		// Spec.Env wins over the host's environment.
		"HOME": s.h.TempDir(),
	}
	out, _, err := s.run(t, s.h.TempDir(), env,
		`printf '%s\0' "$PROCTEST_PLAIN" "$PROCTEST_TRICKY" "${PROCTEST_EMPTY-unset}" "$HOME"`)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
	want := []string{env["PROCTEST_PLAIN"], env["PROCTEST_TRICKY"], "", env["HOME"]}
	if !slices.Equal(got, want) {
		t.Errorf("environment seen by the process = %q, want %q", got, want)
	}
}

func (s suite) argsArriveExactly(t *testing.T) {
	args := []string{
		"plain",
		"two words",
		"",
		`single ' quote`,
		`double " quote`,
		`$HOME ${HOME} $(echo no) ` + "`echo no`",
		"semi; colon && and || or | pipe > redirect < in & bg",
		"new\nline\r\ncrlf",
		"tab\there",
		`back\slash\\`,
		"glob * ? [a-z] ~ ~/x",
		"-dash --flag=value",
		"unicode: héllo wörld 日本語 🚀",
		"#comment",
		"'",
		`"`,
		`\`,
	}
	out, _, err := s.run(t, s.h.TempDir(), nil, `printf '%s\0' "$@"`, args...)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
	if !slices.Equal(got, args) {
		t.Errorf("args arrived as\n%q\nwant\n%q", got, args)
	}
}

func (s suite) bareNameOnPath(t *testing.T) {
	// The shell's base name, found through the host's PATH.
	p := s.start(t, proc.Spec{
		Dir:     s.h.TempDir(),
		Command: path.Base(s.h.ShellPath),
		Args:    []string{"-c", "echo found"},
	})
	p.Stdin().Close()
	out, _, err := s.finish(t, p)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if out != "found\n" {
		t.Errorf("stdout = %q, want %q", out, "found\n")
	}
}

func (s suite) stdinRoundTrip(t *testing.T) {
	p := s.start(t, proc.Spec{Dir: s.h.TempDir(), Command: s.h.ShellPath, Args: []string{"-c", "cat"}})
	lines := []string{`{"type":"user","message":{"content":"hi $(x) ; 'q'"}}`, "second line ü"}
	r := &lineReader{r: p.Stdout()}
	// One line at a time, reading each echo before writing the next: the
	// way the broker talks to Claude Code, turn by turn.
	for _, line := range lines {
		if _, err := io.WriteString(p.Stdin(), line+"\n"); err != nil {
			t.Fatalf("write stdin: %v", err)
		}
		got, err := r.readLine(t)
		if err != nil {
			t.Fatalf("read stdout: %v", err)
		}
		if got != line {
			t.Errorf("echoed %q, want %q", got, line)
		}
	}
	if err := p.Stdin().Close(); err != nil {
		t.Fatalf("close stdin: %v", err)
	}
	if rest := readAllGuarded(t, r.rest()); rest != "" {
		t.Errorf("stdout after the last line = %q, want nothing", rest)
	}
	if err := waitGuarded(t, p); err != nil {
		t.Errorf("Wait after closing stdin: %v", err)
	}
}

func (s suite) largeStdinRoundTrip(t *testing.T) {
	// More than any pipe buffers, written while reading, so a runner that
	// serialises the two streams deadlocks here.
	p := s.start(t, proc.Spec{Dir: s.h.TempDir(), Command: s.h.ShellPath, Args: []string{"-c", "cat"}})
	data := bytes.Repeat([]byte("0123456789abcdef\n"), 1<<16) // 1.06 MiB
	werr := make(chan error, 1)
	go func() {
		_, err := p.Stdin().Write(data)
		if cerr := p.Stdin().Close(); err == nil {
			err = cerr
		}
		werr <- err
	}()
	out, _, err := s.finish(t, p)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write stdin: %v", err)
	}
	if out != string(data) {
		t.Errorf("got %d bytes back, want the %d written", len(out), len(data))
	}
}

func (s suite) stdoutAndStderrSeparate(t *testing.T) {
	out, errOut, err := s.run(t, s.h.TempDir(), nil, `echo to-stdout; echo to-stderr >&2; echo more-stdout`)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if out != "to-stdout\nmore-stdout\n" {
		t.Errorf("stdout = %q, want %q", out, "to-stdout\nmore-stdout\n")
	}
	if !strings.Contains(errOut, "to-stderr") || strings.Contains(errOut, "stdout") {
		t.Errorf("stderr = %q, want it to hold to-stderr and nothing from stdout", errOut)
	}
}

func (s suite) exitStatus(t *testing.T) {
	for _, code := range []int{1, 3, 127} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			_, errOut, err := s.run(t, s.h.TempDir(), nil, fmt.Sprintf("echo failing >&2; exit %d", code))
			var coder interface{ ExitCode() int }
			if !errors.As(err, &coder) {
				t.Fatalf("Wait = %v (%T), want an error with ExitCode()", err, err)
			}
			if coder.ExitCode() != code {
				t.Errorf("ExitCode() = %d, want %d (error: %v)", coder.ExitCode(), code, err)
			}
			if !strings.Contains(errOut, "failing") {
				t.Errorf("stderr = %q, want it to hold what the process wrote", errOut)
			}
		})
	}
}

func (s suite) closeStdinAfterExit(t *testing.T) {
	// The race in ExitStatus made deterministic: the process is reaped
	// before the caller closes stdin, and both orders must look the same.
	p := s.start(t, proc.Spec{Dir: s.h.TempDir(), Command: s.h.ShellPath, Args: []string{"-c", "exit 3"}})
	readAllGuarded(t, p.Stdout())
	_ = waitGuarded(t, p)
	if err := p.Stdin().Close(); err != nil {
		t.Errorf("close stdin after the process exited: %v", err)
	}
	if err := p.Stdin().Close(); err != nil {
		t.Errorf("close stdin a second time: %v", err)
	}
}

func (s suite) cleanExit(t *testing.T) {
	out, errOut, err := s.run(t, s.h.TempDir(), nil, `echo done`)
	if err != nil {
		t.Errorf("Wait = %v, want nil for exit status 0", err)
	}
	if out != "done\n" || errOut != "" {
		t.Errorf("stdout, stderr = %q, %q; want %q, empty", out, errOut, "done\n")
	}
}

func (s suite) killStopsProcess(t *testing.T) {
	// cat with an open stdin and a sleep that holds stdout: both would run
	// forever, so only Kill ends them.
	p := s.start(t, proc.Spec{
		Dir:     s.h.TempDir(),
		Command: s.h.ShellPath,
		Args:    []string{"-c", `echo ready; sleep 1000 & cat; wait`},
	})
	r := &lineReader{r: p.Stdout()}
	if line, err := r.readLine(t); err != nil || line != "ready" {
		t.Fatalf("first line = %q, %v; want ready", line, err)
	}
	if pid := p.Pid(); pid < 0 {
		t.Errorf("Pid() = %d, want > 0 or 0 for unknown", pid)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if err := waitGuarded(t, p); err == nil {
		t.Error("Wait after Kill = nil, want an error")
	}
	// The sleep was in the same process group, so stdout reaches EOF.
	readAllGuarded(t, r.rest())
	if err := p.Kill(); err != nil {
		t.Errorf("second Kill: %v, want nil for a process that is gone", err)
	}
}

func (s suite) killWhileWaiting(t *testing.T) {
	p := s.start(t, proc.Spec{Dir: s.h.TempDir(), Command: s.h.ShellPath, Args: []string{"-c", "exec cat"}})
	waited := make(chan error, 1)
	go func() { waited <- p.Wait() }()
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	select {
	case err := <-waited:
		if err == nil {
			t.Error("Wait after Kill = nil, want an error")
		}
	case <-time.After(hangGuard):
		t.Fatalf("Wait did not return within %v of Kill", hangGuard)
	}
}

// startFailure starts spec and returns the error from Start or, if Start
// succeeded, from Wait: runners may only learn of a problem once the
// process has run.
func (s suite) startFailure(t *testing.T, spec proc.Spec) error {
	t.Helper()
	p, err := s.h.Runner.Start(context.Background(), spec)
	if err != nil {
		return err
	}
	p.Stdin().Close()
	readAllGuarded(t, p.Stdout())
	err = waitGuarded(t, p)
	if err == nil {
		t.Fatalf("Start(%+v) and Wait succeeded, want an error", spec)
	}
	return err
}

func (s suite) missingBinary(t *testing.T) {
	dir := s.h.TempDir()
	for _, command := range []string{
		"switchboard-proctest-no-such-program",
		filepath.Join(dir, "no-such-claude"),
	} {
		err := s.startFailure(t, proc.Spec{Dir: dir, Command: command, Args: []string{"-p"}})
		if !strings.Contains(err.Error(), command) {
			t.Errorf("error %q does not name the command %q", err, command)
		}
	}
}

func (s suite) missingDir(t *testing.T) {
	dir := filepath.Join(s.h.TempDir(), "no-such-dir")
	err := s.startFailure(t, proc.Spec{Dir: dir, Command: s.h.ShellPath, Args: []string{"-c", "true"}})
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the directory %q", err, dir)
	}
}

func (s suite) dirIsAFile(t *testing.T) {
	file := filepath.Join(s.h.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.startFailure(t, proc.Spec{Dir: file, Command: s.h.ShellPath, Args: []string{"-c", "true"}})
	if !strings.Contains(err.Error(), file) {
		t.Errorf("error %q does not name the directory %q", err, file)
	}
}

func (s suite) canceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p, err := s.h.Runner.Start(ctx, proc.Spec{Dir: s.h.TempDir(), Command: s.h.ShellPath, Args: []string{"-c", "true"}})
	if err == nil {
		p.Kill()
		p.Wait()
		t.Fatal("Start with a canceled context succeeded, want an error")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Start error = %v, want one matching context.Canceled", err)
	}
}

func (s suite) where(t *testing.T) {
	if s.h.Runner.Where() == "" {
		t.Error("Where() is empty, want a host name for people")
	}
}

func (s suite) filesStatReadRemove(t *testing.T) {
	ctx := context.Background()
	files := s.h.Runner.Files()
	name := filepath.Join(s.h.TempDir(), "session file ü.jsonl")
	content := []byte("{\"type\":\"user\"}\nline two\n")
	if err := os.WriteFile(name, content, 0o600); err != nil {
		t.Fatal(err)
	}

	fi, err := files.Stat(ctx, name)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if fi.Size() != int64(len(content)) || fi.IsDir() || fi.Name() != filepath.Base(name) {
		t.Errorf("Stat = name %q size %d dir %v; want %q, %d, false", fi.Name(), fi.Size(), fi.IsDir(), filepath.Base(name), len(content))
	}

	got, err := files.ReadFile(ctx, name)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("ReadFile = %q, want %q", got, content)
	}

	if err := files.Remove(ctx, name); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Stat(name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Remove, os.Stat = %v, want the file gone", err)
	}
	if _, err := files.Stat(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat after Remove = %v, want fs.ErrNotExist", err)
	}

	dirInfo, err := files.Stat(ctx, filepath.Dir(name))
	if err != nil || !dirInfo.IsDir() {
		t.Errorf("Stat of the directory = %v, %v; want a directory", dirInfo, err)
	}
}

func (s suite) filesMissing(t *testing.T) {
	ctx := context.Background()
	files := s.h.Runner.Files()
	name := filepath.Join(s.h.TempDir(), "missing.jsonl")
	if _, err := files.Stat(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := files.ReadFile(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want fs.ErrNotExist", err)
	}
	if err := files.Remove(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove(missing) = %v, want fs.ErrNotExist", err)
	}
}

func (s suite) filesHome(t *testing.T) {
	home, err := s.h.Runner.Files().Home(context.Background())
	if err != nil {
		t.Fatalf("Home: %v", err)
	}
	if !path.IsAbs(home) {
		t.Errorf("Home() = %q, want an absolute path", home)
	}
}

// lineReader reads newline-terminated lines without reading past them
// into a buffer the caller cannot reach, so rest() continues exactly after.
type lineReader struct {
	r   io.Reader
	buf []byte
}

func (l *lineReader) readLine(t *testing.T) (string, error) {
	t.Helper()
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		for {
			if i := bytes.IndexByte(l.buf, '\n'); i >= 0 {
				line := string(l.buf[:i])
				l.buf = l.buf[i+1:]
				ch <- result{line, nil}
				return
			}
			chunk := make([]byte, 4096)
			n, err := l.r.Read(chunk)
			l.buf = append(l.buf, chunk[:n]...)
			if err != nil {
				ch <- result{string(l.buf), err}
				return
			}
		}
	}()
	select {
	case res := <-ch:
		return res.line, res.err
	case <-time.After(hangGuard):
		t.Fatalf("no line on stdout within %v", hangGuard)
		return "", nil
	}
}

func (l *lineReader) rest() io.Reader {
	return io.MultiReader(bytes.NewReader(l.buf), l.r)
}
