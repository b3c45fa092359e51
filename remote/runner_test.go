package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/switchboard-mcp/switchboard/proc"
)

func TestMain(m *testing.M) {
	// Tests choose their keys; a developer's agent must not change results.
	os.Unsetenv("SSH_AUTH_SOCK")
	os.Exit(m.Run())
}

func newTestPool(t testing.TB) *Pool {
	p := NewPool(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { p.Close() })
	return p
}

// run starts spec, feeds it stdin, and returns its stdout and Wait error.
func run(t testing.TB, r proc.Runner, spec proc.Spec, stdin string) (string, error) {
	t.Helper()
	p, err := r.Start(t.Context(), spec)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(&out, p.Stdout()) })
	go io.Copy(io.Discard, p.Stderr())
	if _, err := io.WriteString(p.Stdin(), stdin); err != nil {
		t.Errorf("write stdin: %v", err)
	}
	p.Stdin().Close()
	err = p.Wait()
	wg.Wait()
	return out.String(), err
}

func TestRunnerArgsReachProgramExactly(t *testing.T) {
	srv := newTestServer(t)
	r := newTestPool(t).Runner(srv.target(t))
	args := []string{
		"plain", "two words", "it's", `"double"`, "$HOME", "$(id)", "`id`", "a;b", "a && b",
		"line1\nline2", `back\slash`, "*", "~", "-n", "", "trailing ", "'", "tab\there", "ünïcode",
	}
	out, err := run(t, r, proc.Spec{Dir: srv.home, Command: "printf", Args: append([]string{`%s\0`}, args...)}, "")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
	if len(got) != len(args) {
		t.Fatalf("got %d args %q, want %d", len(got), got, len(args))
	}
	for i := range args {
		if got[i] != args[i] {
			t.Errorf("arg %d: got %q, want %q", i, got[i], args[i])
		}
	}
}

func TestRunnerDirEnvStdin(t *testing.T) {
	srv := newTestServer(t)
	r := newTestPool(t).Runner(srv.target(t))
	dir := filepath.Join(srv.home, "a dir with 'quotes' and $x")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SB_ONE": "it's $HOME; `x`\nnext", "SB_TWO": ""}
	script := `pwd; printf '%s|' "$SB_ONE" "${SB_TWO-unset}"; cat`
	out, err := run(t, r, proc.Spec{Dir: dir, Command: "sh", Args: []string{"-c", script}, Env: env}, "from stdin\n")
	if err != nil {
		t.Fatal(err)
	}
	want := dir + "\n" + env["SB_ONE"] + "||from stdin\n"
	if out != want {
		t.Errorf("got %q\nwant %q", out, want)
	}
}

func TestRunnerCommandFromHomeAndLoginPath(t *testing.T) {
	srv := newTestServer(t)
	r := newTestPool(t).Runner(srv.target(t))
	for _, d := range []string{"bin", "login bin"} {
		if err := os.Mkdir(filepath.Join(srv.home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeScript(t, filepath.Join(srv.home, "bin", "tool"), "echo home-tool \"$@\"")
	writeScript(t, filepath.Join(srv.home, "login bin", "logintool"), "echo login-tool \"$@\"")
	// Only a login shell reads .profile; its chatter must not reach stdout.
	profile := "echo profile-noise\nPATH=\"$HOME/login bin:$PATH\"\n"
	if err := os.WriteFile(filepath.Join(srv.home, ".profile"), []byte(profile), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ command, want string }{
		{"~/bin/tool", "home-tool x y\n"},
		{filepath.Join(srv.home, "bin", "tool"), "home-tool x y\n"},
		{"logintool", "login-tool x y\n"},
	} {
		out, err := run(t, r, proc.Spec{Dir: "/", Command: tc.command, Args: []string{"x", "y"}}, "")
		if err != nil {
			t.Errorf("%s: %v", tc.command, err)
		} else if out != tc.want {
			t.Errorf("%s: stdout %q, want %q", tc.command, out, tc.want)
		}
	}
}

func writeScript(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
}

func TestRunnerMissingDirOrProgram(t *testing.T) {
	srv := newTestServer(t)
	tg := srv.target(t)
	tg.Alias = "box"
	r := newTestPool(t).Runner(tg)
	writeScript(t, filepath.Join(srv.home, "notexec"), "true")
	os.Chmod(filepath.Join(srv.home, "notexec"), 0o600)
	for _, tc := range []struct {
		name string
		spec proc.Spec
		want []string
	}{
		{"dir", proc.Spec{Dir: "/nonexistent/dir x", Command: "true"}, []string{"box", "/nonexistent/dir x"}},
		{"bare", proc.Spec{Dir: "/", Command: "no-such-claude"}, []string{"box", "no-such-claude"}},
		{"absolute", proc.Spec{Dir: "/", Command: "/opt/none/claude"}, []string{"box", "/opt/none/claude"}},
		{"home", proc.Spec{Dir: "/", Command: "~/.local/bin/claude"}, []string{"box", "~/.local/bin/claude"}},
		{"not executable", proc.Spec{Dir: "/", Command: filepath.Join(srv.home, "notexec")}, []string{"box", "notexec"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := r.Start(t.Context(), tc.spec)
			if err == nil {
				p.Kill()
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v is not fs.ErrNotExist", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestRunnerExitStatusAndStderr(t *testing.T) {
	srv := newTestServer(t)
	r := newTestPool(t).Runner(srv.target(t))
	// 1 MiB of stderr nobody reads must not block the program.
	script := `head -c 1048576 /dev/zero | tr '\0' x >&2; echo; echo "it broke" >&2; exit 3`
	p, err := r.Start(t.Context(), proc.Spec{Dir: "/", Command: "sh", Args: []string{"-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	p.Stdin().Close()
	go io.Copy(io.Discard, p.Stdout())
	err = p.Wait()
	if err == nil || !strings.Contains(err.Error(), "status 3") || !strings.Contains(err.Error(), "it broke") {
		t.Fatalf("Wait = %v, want status 3 and the stderr tail", err)
	}
	var exit *ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !exit.Started {
		t.Errorf("Wait = %#v, want an *ExitError with ExitCode 3 for a started program", err)
	}
	b, _ := io.ReadAll(p.Stderr())
	if !bytes.HasSuffix(b, []byte("it broke\n")) || len(b) > stderrMax {
		t.Errorf("stderr: %d bytes ending %q", len(b), b[max(0, len(b)-20):])
	}
}

func TestRunnerExitOnSignal(t *testing.T) {
	srv := newTestServer(t)
	r := newTestPool(t).Runner(srv.target(t))
	_, err := run(t, r, proc.Spec{Dir: "/", Command: "sh", Args: []string{"-c", "kill -TERM $$"}}, "")
	var exit *ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != -1 || !strings.Contains(err.Error(), "signal TERM") {
		t.Errorf("Wait = %v, want an *ExitError on signal TERM with ExitCode -1", err)
	}
}

// Closing stdin of a program that has already exited loses nothing, so it
// is not an error (as with a local pipe), though the channel is gone.
func TestRunnerCloseStdinAfterExit(t *testing.T) {
	srv := newTestServer(t)
	r := newTestPool(t).Runner(srv.target(t))
	p, err := r.Start(t.Context(), proc.Spec{Dir: "/", Command: "true"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := p.Stdin().Close(); err != nil {
		t.Errorf("close stdin after exit: %v", err)
	}
}

func TestRunnerPidAndKill(t *testing.T) {
	srv := newTestServer(t)
	r := newTestPool(t).Runner(srv.target(t))
	p, err := r.Start(t.Context(), proc.Spec{Dir: "/", Command: "sh", Args: []string{"-c", "echo $$; exec sleep 1000"}})
	if err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 32)
	n, _ := p.Stdout().Read(line)
	if got := strings.TrimSpace(string(line[:n])); got != strconv.Itoa(p.Pid()) || p.Pid() <= 0 {
		t.Errorf("program says pid %q, Pid() = %d", got, p.Pid())
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err == nil {
		t.Error("Wait after Kill returned nil")
	}
	// The test server runs programs on this machine, so the pid is checkable.
	waitFor(t, "killed process to go", func() bool {
		return syscall.Kill(p.Pid(), 0) == syscall.ESRCH
	})
}

func TestRunnerStartHonoursContext(t *testing.T) {
	srv := newTestServer(t)
	r := newTestPool(t).Runner(srv.target(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Start(ctx, proc.Spec{Dir: "/", Command: "true"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with cancelled ctx = %v", err)
	}
}

func TestRunnerBadSpec(t *testing.T) {
	r := newTestPool(t).Runner(Target{HostName: "127.0.0.1", Port: 1, User: "x", KnownHostsFiles: []string{"/dev/null"}})
	for _, spec := range []proc.Spec{
		{Dir: "relative", Command: "claude"},
		{Dir: "/", Command: ""},
		{Dir: "/", Command: "claude", Env: map[string]string{"A=B": "x"}},
		{Dir: "/", Command: "claude", Args: []string{"nul\x00byte"}},
	} {
		if _, err := r.Start(t.Context(), spec); err == nil {
			t.Errorf("Start(%+v) succeeded", spec)
		}
	}
	if r.pool.Dials() != 0 {
		t.Errorf("bad specs dialled %d times", r.pool.Dials())
	}
}
