package local_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/fakeclaude/fakeclaudebin"
	"github.com/switchboard-mcp/switchboard/internal/poll"
	"github.com/switchboard-mcp/switchboard/local"
	"github.com/switchboard-mcp/switchboard/proc"
	"github.com/switchboard-mcp/switchboard/proc/proctest"
)

func shell(t *testing.T) string {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no POSIX shell on PATH")
	}
	sh, err = filepath.Abs(sh)
	if err != nil {
		t.Fatal(err)
	}
	return sh
}

func TestRunner(t *testing.T) {
	proctest.Run(t, proctest.Harness{
		Runner:    local.New(local.Options{}),
		TempDir:   t.TempDir,
		ShellPath: shell(t),
	})
}

// start starts spec on r and kills the process when the test ends.
func start(t *testing.T, r *local.Runner, spec proc.Spec) proc.Process {
	t.Helper()
	p, err := r.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Kill(); p.Wait() })
	return p
}

func TestMissingBinaryErrorSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	pathEnv := strings.Join([]string{filepath.Join(dir, "bin1"), filepath.Join(dir, "bin2")}, string(filepath.ListSeparator))
	r := local.New(local.Options{Env: []string{"PATH=" + pathEnv, "HOME=" + dir}})
	tests := []struct {
		command string
		want    []string
	}{
		{"claude", []string{"claude", pathEnv, "npm i -g @anthropic-ai/claude-code", "claudePath"}},
		{"/opt/nowhere/claude", []string{"/opt/nowhere/claude", "npm i -g @anthropic-ai/claude-code"}},
		{"~/.local/bin/claude", []string{filepath.Join(dir, ".local/bin/claude"), "claudePath"}},
		{"bin/claude", []string{"bin/claude", "absolute"}},
		{"", []string{"claudePath"}},
	}
	for _, tc := range tests {
		t.Run(tc.command, func(t *testing.T) {
			_, err := r.Start(context.Background(), proc.Spec{Dir: dir, Command: tc.command})
			if err == nil {
				t.Fatal("Start succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCommandResolution(t *testing.T) {
	home := t.TempDir()
	bin := filepath.Join(home, "bin")
	if err := os.Mkdir(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	script := "#!" + shell(t) + "\necho \"$0\"\n"
	if err := os.WriteFile(filepath.Join(bin, "fakeclaude"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	// Not executable: lookup must pass over it to the next PATH entry.
	other := filepath.Join(home, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "fakeclaude"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(bin, "fakeclaude")

	tests := []struct {
		name    string
		env     []string
		specEnv map[string]string
		command string
	}{
		{"home relative", []string{"HOME=" + home, "PATH=/nonexistent"}, nil, "~/bin/fakeclaude"},
		{"absolute", []string{"PATH=/nonexistent"}, nil, want},
		{"bare name on base PATH", []string{"PATH=" + other + ":" + bin}, nil, "fakeclaude"},
		// The process's PATH is what a lookup must search, so a Spec.Env
		// PATH wins over the runner's.
		{"bare name on spec PATH", []string{"PATH=/nonexistent"}, map[string]string{"PATH": bin}, "fakeclaude"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := local.New(local.Options{Env: tc.env})
			p := start(t, r, proc.Spec{Dir: home, Command: tc.command, Env: tc.specEnv})
			p.Stdin().Close()
			out, err := io.ReadAll(p.Stdout())
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Wait(); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("ran %q, want %q", got, want)
			}
		})
	}
}

func TestWaitErrorCarriesStderr(t *testing.T) {
	dir := t.TempDir()
	claude := filepath.Join(dir, "claude")
	script := "#!" + shell(t) + "\n" +
		"i=0; while [ $i -lt 50 ]; do echo \"noise $i\" >&2; i=$((i+1)); done\n" +
		"echo 'Error: Session ID 42 is already in use.' >&2\nexit 1\n"
	if err := os.WriteFile(claude, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	p := start(t, local.New(local.Options{}), proc.Spec{Dir: dir, Command: claude})
	err := p.Wait()
	want := "claude exited with status 1: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Wait = %v, want it to start with %q", err, want)
	}
	if !strings.HasSuffix(err.Error(), "Error: Session ID 42 is already in use.") {
		t.Errorf("Wait = %q, want it to end with the last stderr line", err)
	}
	if strings.Contains(err.Error(), "noise 0\n") {
		t.Errorf("Wait = %q, want only the last lines of stderr", err)
	}
	var exitErr *local.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("errors.As(*local.ExitError) = %v, want exit code 1", exitErr)
	}
}

func TestStderrIsBounded(t *testing.T) {
	// 1 MiB of stderr that nobody reads must neither block the process
	// nor be kept whole.
	out, _ := runScript(t, `head -c 1048576 /dev/zero | tr '\0' x >&2; echo last >&2`)
	if out != "" {
		t.Errorf("stdout = %q, want empty", out)
	}
}

func runScript(t *testing.T, script string) (stdout string, p proc.Process) {
	t.Helper()
	p = start(t, local.New(local.Options{}), proc.Spec{Dir: t.TempDir(), Command: shell(t), Args: []string{"-c", script}})
	p.Stdin().Close()
	b, err := io.ReadAll(p.Stdout())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	errOut, _ := io.ReadAll(p.Stderr())
	if len(errOut) > 64<<10 {
		t.Errorf("kept %d bytes of stderr, want at most 64 KiB", len(errOut))
	}
	if !strings.HasSuffix(string(errOut), "last\n") {
		t.Errorf("stderr ends %q, want the newest output kept", tail(string(errOut)))
	}
	return string(b), p
}

func tail(s string) string {
	if len(s) > 20 {
		return s[len(s)-20:]
	}
	return s
}

func TestKillTakesTheProcessGroup(t *testing.T) {
	p := start(t, local.New(local.Options{}), proc.Spec{
		Dir:     t.TempDir(),
		Command: shell(t),
		// The grandchild sleep closes its stdout so stdout's EOF would not
		// reveal whether it survived; its pid does.
		Args: []string{"-c", `sleep 1000 >/dev/null 2>&1 & echo $!; wait`},
	})
	line := make([]byte, 32)
	n, err := p.Stdout().Read(line)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatalf("child pid %q: %v", line[:n], err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	var exitErr *local.ExitError
	if err := p.Wait(); !errors.As(err, &exitErr) || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Wait = %v, want a killed-by-signal error", err)
	}
	// The orphaned sleep is reparented to init, which may be slow to reap
	// it (or, in a container, never); poll until it is gone or a zombie.
	deadline := time.Now().Add(30 * time.Second)
	for alive(child) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still alive after Kill", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFilesExpandHome(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "note"), []byte("hi"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := local.New(local.Options{Env: []string{"HOME=" + home}}).Files()
	ctx := context.Background()
	if got, err := files.Home(ctx); err != nil || got != home {
		t.Errorf("Home() = %q, %v; want %q", got, err, home)
	}
	if b, err := files.ReadFile(ctx, "~/note"); err != nil || string(b) != "hi" {
		t.Errorf("ReadFile(~/note) = %q, %v; want hi", b, err)
	}
	if err := files.Remove(ctx, "~/note"); err != nil {
		t.Fatalf("Remove(~/note): %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "note")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file still there after Remove: %v", err)
	}
}

func TestWhere(t *testing.T) {
	if got := local.New(local.Options{}).Where(); got != "local" {
		t.Errorf("Where() = %q, want local", got)
	}
}

// alive reports whether pid names a running (not zombie) process.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		// No /proc (not Linux): trust the signal; a gone pid has no file.
		_, noProc := os.Stat("/proc/self")
		return noProc != nil
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// TestNiceIsEveryThreadsFromTheStart: a process started with Spec.Nice runs
// every one of its threads, the ones its program makes after it starts
// included, that much lower than the runner, and the runner's own threads
// keep their priority.
func TestNiceIsEveryThreadsFromTheStart(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("niceness per thread is Linux's")
	}
	self := os.Getpid()
	base := proctest.ThreadNices(t, self)[self]
	bin := fakeclaudebin.Build(t)
	r := local.New(local.Options{Env: append(os.Environ(), "CLAUDE_CONFIG_DIR="+t.TempDir())})
	tests := []struct{ nice, want int }{
		{0, base},
		{5, min(base+5, 19)},
		{19, 19},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.nice), func(t *testing.T) {
			p := start(t, r, proc.Spec{Dir: t.TempDir(), Command: bin, Nice: tc.nice,
				Args: []string{"-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"}})
			// The fake is a Go program: its runtime starts more threads
			// (sysmon, GC workers) once it runs.
			poll.Until(t, "the started program to have 3 threads", func() bool {
				return len(proctest.ThreadNices(t, p.Pid())) >= 3
			})
			for tid, nice := range proctest.ThreadNices(t, p.Pid()) {
				if nice != tc.want {
					t.Errorf("thread %d of the started process has niceness %d, want %d", tid, nice, tc.want)
				}
			}
			for tid, nice := range proctest.ThreadNices(t, self) {
				if nice != base {
					t.Errorf("thread %d of the runner's process has niceness %d, want %d: only the started process is lowered", tid, nice, base)
				}
			}
			// Its command line is the program's own, as reap.go matches it.
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid()))
			if err != nil {
				t.Fatal(err)
			}
			if argv0, _, _ := strings.Cut(string(cmdline), "\x00"); argv0 != bin {
				t.Errorf("the started process runs %q, want %q", argv0, bin)
			}
		})
	}
}

// TestNicedProcessDiesWithTheRunner: a process started with Spec.Nice (by
// way of nice(1), which executes it in place) still dies when the runner's
// process is killed (Pdeathsig), not before.
func TestNicedProcessDiesWithTheRunner(t *testing.T) {
	if os.Getenv("LOCAL_TEST_RUNNER_PROCESS") == "1" {
		// The runner's process: start a niced sleep, say its pid, and stay
		// until killed (stdin stays open).
		p, err := local.New(local.Options{}).Start(context.Background(), proc.Spec{
			Dir: os.TempDir(), Command: shell(t), Args: []string{"-c", "exec sleep 1000"}, Nice: 5})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(p.Pid())
		io.Copy(io.Discard, os.Stdin)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux's")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNicedProcessDiesWithTheRunner$")
	cmd.Env = append(os.Environ(), "LOCAL_TEST_RUNNER_PROCESS=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var child int
	if _, err := fmt.Fscan(out, &child); err != nil {
		t.Fatalf("read the niced process's pid from the runner's process: %v", err)
	}
	if !alive(child) {
		t.Fatalf("niced pid %d is gone while the runner's process runs", child)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	poll.Until(t, fmt.Sprintf("niced pid %d to die with the runner's process", child), func() bool { return !alive(child) })
}

// TestNicedProcessEndingKillsNoOther: a niced process ending takes no other
// child with it. (Forking it from a lowered thread that then ended, as the
// first version did, made the kernel send Pdeathsig to every child that
// thread had forked: a process started earlier at niceness 0, before a
// config change, say, died with it.)
func TestNicedProcessEndingKillsNoOther(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("niceness per thread and Pdeathsig are Linux's")
	}
	r := local.New(local.Options{})
	sleep := func(nice int) proc.Spec {
		return proc.Spec{Dir: t.TempDir(), Command: shell(t), Args: []string{"-c", "exec sleep 1000"}, Nice: nice}
	}
	var plain []proc.Process
	for range 8 {
		plain = append(plain, start(t, r, sleep(0)))
	}
	for i := range 40 {
		p := start(t, r, sleep(5))
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		p.Wait()
		for _, q := range plain {
			if !alive(q.Pid()) {
				t.Fatalf("after %d niced processes ended, process %d (niceness 0) was killed with them", i+1, q.Pid())
			}
		}
	}
}
