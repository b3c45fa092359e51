package remote_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
	"github.com/switchboard-mcp/switchboard/proc"
	"github.com/switchboard-mcp/switchboard/remote"
)

// These tests run against Debian's real sshd, started by sshdtest.

func resolve(t *testing.T, s *sshdtest.Server, opts remote.Options) remote.Target {
	t.Helper()
	opts.SSH = s.Alias
	tg, err := remote.Resolve(s.SSHConfig, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func newPool(t *testing.T) *remote.Pool {
	p := remote.NewPool(nil)
	t.Cleanup(func() { p.Close() })
	return p
}

func runIt(t *testing.T, r proc.Runner, spec proc.Spec, stdin string) (string, error) {
	t.Helper()
	p, err := r.Start(t.Context(), spec)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(&out, p.Stdout()) })
	go io.Copy(io.Discard, p.Stderr())
	io.WriteString(p.Stdin(), stdin)
	p.Stdin().Close()
	err = p.Wait()
	wg.Wait()
	return out.String(), err
}

func TestSSHDRunInDirWithEnvAndStdin(t *testing.T) {
	s := sshdtest.Start(t)
	pool := newPool(t)
	r := pool.Runner(resolve(t, s, remote.Options{}))
	if r.Where() != s.Alias {
		t.Errorf("Where = %q, want %q", r.Where(), s.Alias)
	}
	dir := filepath.Join(t.TempDir(), "my 'project'")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	spec := proc.Spec{
		Dir:     dir,
		Command: "sh",
		Args:    []string{"-c", `echo "$$"; pwd; printf '%s|' "$SB_VAR" "$1"; cat`, "sh", "arg with 'quotes' $HOME ;"},
		Env:     map[string]string{"SB_VAR": "v a l'ue\n$(x)"},
	}
	p, err := r.Start(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, p.Stderr())
	io.WriteString(p.Stdin(), `{"type":"user"}`+"\n")
	p.Stdin().Close()
	out, _ := io.ReadAll(p.Stdout())
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	want := strconv.Itoa(p.Pid()) + "\n" + dir + "\n" + spec.Env["SB_VAR"] + "|" + spec.Args[3] + `|{"type":"user"}` + "\n"
	if string(out) != want || p.Pid() <= 0 {
		t.Errorf("stdout %q\nwant   %q (pid %d)", out, want, p.Pid())
	}

	// A second runner for the same host reuses the connection.
	if out, err := runIt(t, pool.Runner(resolve(t, s, remote.Options{})), proc.Spec{Dir: "/", Command: "true"}, ""); err != nil {
		t.Fatal(out, err)
	}
	if err := r.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if pool.Dials() != 1 {
		t.Errorf("dials = %d, want 1", pool.Dials())
	}
}

func TestSSHDMissingDirAndProgram(t *testing.T) {
	s := sshdtest.Start(t)
	r := newPool(t).Runner(resolve(t, s, remote.Options{}))
	for _, spec := range []proc.Spec{
		{Dir: "/no/such/dir", Command: "true"},
		{Dir: "/", Command: "no-such-claude-binary"},
		{Dir: "/", Command: "~/.local/bin/no-such-claude"},
	} {
		_, err := r.Start(t.Context(), spec)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), s.Alias) {
			t.Errorf("Start(%+v) = %v, want not-exist naming %s", spec, err, s.Alias)
		}
	}
}

func TestSSHDKill(t *testing.T) {
	s := sshdtest.Start(t)
	r := newPool(t).Runner(resolve(t, s, remote.Options{}))
	p, err := r.Start(t.Context(), proc.Spec{Dir: "/", Command: "sleep", Args: []string{"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err == nil {
		t.Error("Wait after Kill = nil")
	}
	// sshd runs on this machine, so the remote pid can be checked here.
	waitGone(t, p.Pid())
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSSHDFiles(t *testing.T) {
	s := sshdtest.Start(t)
	files := newPool(t).Runner(resolve(t, s, remote.Options{})).Files()
	if home, err := files.Home(t.Context()); err != nil || home != s.Home {
		t.Errorf("Home = %q, %v; want %q", home, err, s.Home)
	}
	path := filepath.Join(t.TempDir(), "session.jsonl")
	if err := os.WriteFile(path, []byte("line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, err := files.Stat(t.Context(), path); err != nil || fi.Size() != 5 {
		t.Fatalf("Stat = %v, %v", fi, err)
	}
	if b, err := files.ReadFile(t.Context(), path); err != nil || string(b) != "line\n" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	if err := files.Remove(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	if _, err := files.Stat(t.Context(), path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat after Remove = %v", err)
	}
}

func TestSSHDHostKeyRefused(t *testing.T) {
	s := sshdtest.Start(t)
	tg := resolve(t, s, remote.Options{})

	// Unknown: an empty known_hosts.
	tg.KnownHostsFiles = []string{filepath.Join(t.TempDir(), "known_hosts")}
	err := newPool(t).Runner(tg).Ping(t.Context())
	var hk *remote.HostKeyError
	if !errors.As(err, &hk) || hk.Changed || hk.Fingerprint != ssh.FingerprintSHA256(s.HostKey) {
		t.Fatalf("unknown key: %v", err)
	}

	// Changed: another key recorded for the address.
	_, priv, _ := ed25519Key(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(knownhosts.Line([]string{tg.Addr()}, priv)+"\n"), 0o600)
	tg.KnownHostsFiles = []string{kh}
	tg.StrictHostKeyChecking = remote.StrictAcceptNew
	err = newPool(t).Runner(tg).Ping(t.Context())
	if !errors.As(err, &hk) || !hk.Changed || !strings.Contains(err.Error(), kh+":1") {
		t.Fatalf("changed key: %v", err)
	}
}

func TestSSHDStopWhileRunningThenRestart(t *testing.T) {
	s := sshdtest.Start(t)
	pool := newPool(t)
	r := pool.Runner(resolve(t, s, remote.Options{
		ServerAliveInterval: 200 * time.Millisecond, ServerAliveCountMax: 2}))
	p, err := r.Start(t.Context(), proc.Spec{Dir: "/", Command: "cat"})
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := p.Wait(); !errors.Is(err, remote.ErrConnectionLost) {
		t.Fatalf("Wait after Stop = %v, want ErrConnectionLost", err)
	}
	if _, err := runIt(t, r, proc.Spec{Dir: "/", Command: "true"}, ""); err == nil {
		t.Fatal("Start worked while sshd was down")
	}
	s.Restart()
	if out, err := runIt(t, r, proc.Spec{Dir: "/", Command: "echo", Args: []string{"back"}}, ""); err != nil || out != "back\n" {
		t.Fatalf("after Restart: %q, %v", out, err)
	}
}

func TestSSHDHungHostNoticedByKeepalive(t *testing.T) {
	s := sshdtest.Start(t)
	r := newPool(t).Runner(resolve(t, s, remote.Options{
		ServerAliveInterval: 200 * time.Millisecond, ServerAliveCountMax: 2}))
	p, err := r.Start(t.Context(), proc.Spec{Dir: "/", Command: "cat"})
	if err != nil {
		t.Fatal(err)
	}
	s.Freeze() // TCP stays up, nothing answers: only keepalives can tell
	err = p.Wait()
	if !errors.Is(err, remote.ErrConnectionLost) || !strings.Contains(err.Error(), "keepalive") {
		t.Fatalf("Wait on a hung host = %v, want a keepalive failure", err)
	}
	s.Restart()
	if out, err := runIt(t, r, proc.Spec{Dir: "/", Command: "echo", Args: []string{"back"}}, ""); err != nil || out != "back\n" {
		t.Fatalf("after Restart: %q, %v", out, err)
	}
}

func TestSSHDProxyJump(t *testing.T) {
	jump := sshdtest.StartWith(t, sshdtest.Options{JumpOnly: true})
	target := sshdtest.StartWith(t, sshdtest.Options{Via: jump})
	tg := resolve(t, target, remote.Options{})
	if len(tg.ProxyJump) != 1 || tg.ProxyJump[0].Port != jump.Port {
		t.Fatalf("resolved jump chain %+v", tg.ProxyJump)
	}
	pool := newPool(t)
	if out, err := runIt(t, pool.Runner(tg), proc.Spec{Dir: "/", Command: "echo", Args: []string{"through"}}, ""); err != nil || out != "through\n" {
		t.Fatalf("run via jump: %q, %v\njump log:\n%s", out, err, jump.Log())
	}
	if n := jump.Forwards(target.Host, target.Port); n != 1 {
		t.Errorf("jump host forwarded %d connections to the target, want 1", n)
	}

	// A jump host that refuses forwarding makes the same target unreachable,
	// so the connection above really went through the jump.
	noFwd := sshdtest.Start(t)
	tg.ProxyJump = []remote.Target{resolve(t, noFwd, remote.Options{})}
	if err := newPool(t).Runner(tg).Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "jump host") {
		t.Errorf("via a non-forwarding jump: %v", err)
	}
}

func ed25519Key(t *testing.T) (ssh.Signer, ssh.PublicKey, error) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.PublicKey(), nil
}
