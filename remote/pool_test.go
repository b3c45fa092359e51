package remote

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/switchboard-mcp/switchboard/proc"
)

func TestPoolSharesOneConnectionPerHost(t *testing.T) {
	srv := newTestServer(t)
	pool := newTestPool(t)
	tg := srv.target(t)
	other := tg
	other.Alias = "same-host-other-name"
	runners := []*Runner{pool.Runner(tg), pool.Runner(tg), pool.Runner(other)}

	var wg sync.WaitGroup
	for i := range 6 {
		r := runners[i%len(runners)]
		wg.Go(func() {
			out, err := run(t, r, proc.Spec{Dir: "/", Command: "echo", Args: []string{"hi"}}, "")
			if err != nil || out != "hi\n" {
				t.Errorf("run: %q, %v", out, err)
			}
		})
	}
	wg.Go(func() {
		if _, err := runners[0].Files().Home(t.Context()); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if d, a := pool.Dials(), srv.accepted.Load(); d != 1 || a != 1 {
		t.Errorf("dials %d, server accepted %d; want 1 and 1", d, a)
	}
}

func TestPoolReconnectsAfterServerDropsConnection(t *testing.T) {
	srv := newTestServer(t)
	pool := newTestPool(t)
	r := pool.Runner(srv.target(t))
	if _, err := run(t, r, proc.Spec{Dir: "/", Command: "true"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.dropConns()
	// Whether or not the pool has noticed yet, the next use must work.
	if out, err := run(t, r, proc.Spec{Dir: "/", Command: "echo", Args: []string{"again"}}, ""); err != nil || out != "again\n" {
		t.Fatalf("after drop: %q, %v", out, err)
	}
	if got := pool.Dials(); got != 2 {
		t.Errorf("dials = %d, want 2", got)
	}
}

func TestPoolKeepaliveFailsHungConnection(t *testing.T) {
	srv := newTestServer(t)
	pool := newTestPool(t)
	tg := srv.target(t)
	tg.ServerAliveInterval = 50 * time.Millisecond
	tg.ServerAliveCountMax = 2
	r := pool.Runner(tg)
	p, err := r.Start(t.Context(), proc.Spec{Dir: "/", Command: "cat"})
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, p.Stdout())
	srv.stall.Store(true) // the host stops answering, the TCP connection stays up
	err = p.Wait()
	if !errors.Is(err, ErrConnectionLost) || !strings.Contains(err.Error(), "keepalive") {
		t.Fatalf("Wait = %v, want a lost connection blamed on keepalives", err)
	}
	srv.stall.Store(false)
	if out, err := run(t, r, proc.Spec{Dir: "/", Command: "echo", Args: []string{"back"}}, ""); err != nil || out != "back\n" {
		t.Fatalf("after reconnect: %q, %v", out, err)
	}
}

func TestPoolCloseFailsSessions(t *testing.T) {
	srv := newTestServer(t)
	pool := NewPool(nil)
	r := pool.Runner(srv.target(t))
	p, err := r.Start(t.Context(), proc.Spec{Dir: "/", Command: "cat"})
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	if err := p.Wait(); err == nil {
		t.Error("Wait after Pool.Close returned nil")
	}
	if _, err := r.Start(t.Context(), proc.Spec{Dir: "/", Command: "true"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
}

func TestHostKeyUnknownRefused(t *testing.T) {
	srv := newTestServer(t)
	tg := srv.target(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	tg.KnownHostsFiles = []string{kh}
	err := newTestPool(t).Runner(tg).Ping(t.Context())
	var hk *HostKeyError
	if !errors.As(err, &hk) || hk.Changed {
		t.Fatalf("Ping = %v, want an unknown-key HostKeyError", err)
	}
	fp := ssh.FingerprintSHA256(srv.hostKey.PublicKey())
	for _, want := range []string{fp, "ssh-ed25519", kh, fmt.Sprintf("ssh-keyscan -p %d 127.0.0.1 >> %s", srv.port, kh)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if _, err := os.Stat(kh); !os.IsNotExist(err) {
		t.Errorf("refusing wrote %s: %v", kh, err)
	}
}

func TestHostKeyAcceptNew(t *testing.T) {
	for _, hashed := range []bool{false, true} {
		t.Run(fmt.Sprintf("hashed=%v", hashed), func(t *testing.T) {
			srv := newTestServer(t)
			tg := srv.target(t)
			dir := filepath.Join(t.TempDir(), "new", ".ssh")
			kh := filepath.Join(dir, "known_hosts")
			tg.KnownHostsFiles = []string{kh}
			tg.StrictHostKeyChecking = StrictAcceptNew
			tg.HashKnownHosts = hashed
			if err := newTestPool(t).Runner(tg).Ping(t.Context()); err != nil {
				t.Fatal(err)
			}
			for path, mode := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, kh: 0o600} {
				if fi, err := os.Stat(path); err != nil || fi.Mode() != mode {
					t.Errorf("%s: %v %v, want mode %v", path, fi.Mode(), err, mode)
				}
			}
			b, _ := os.ReadFile(kh)
			if hashed == strings.Contains(string(b), "127.0.0.1") || !strings.HasPrefix(string(b), "|1|") == hashed {
				t.Errorf("known_hosts (hashed=%v): %q", hashed, b)
			}
			// The recorded key now passes strict checking.
			tg.StrictHostKeyChecking = StrictYes
			if err := newTestPool(t).Runner(tg).Ping(t.Context()); err != nil {
				t.Fatalf("second dial: %v", err)
			}
			check, err := knownhosts.New(kh)
			if err != nil {
				t.Fatal(err)
			}
			if err := check(tg.Addr(), zeroAddr, srv.hostKey.PublicKey()); err != nil {
				t.Errorf("recorded key does not check: %v", err)
			}
		})
	}
}

func TestHostKeyChangedRefusedEvenWithAcceptNew(t *testing.T) {
	srv := newTestServer(t)
	tg := srv.target(t)
	old := newSigner(t).PublicKey()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	content := "# comment\n" + knownhosts.Line([]string{tg.Addr()}, old) + "\n"
	if err := os.WriteFile(kh, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	tg.KnownHostsFiles = []string{kh}
	for _, mode := range []string{StrictYes, StrictAcceptNew, StrictNo} {
		tg.StrictHostKeyChecking = mode
		err := newTestPool(t).Runner(tg).Ping(t.Context())
		var hk *HostKeyError
		if !errors.As(err, &hk) || !hk.Changed || hk.Line != 2 {
			t.Fatalf("%s: Ping = %v, want a changed-key HostKeyError at line 2", mode, err)
		}
		for _, want := range []string{"CHANGED", ssh.FingerprintSHA256(old), ssh.FingerprintSHA256(srv.hostKey.PublicKey()), kh + ":2"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not contain %q", mode, err, want)
			}
		}
	}
	if b, _ := os.ReadFile(kh); string(b) != content {
		t.Errorf("known_hosts changed to %q", b)
	}
}

func TestHostKeyStrictNoAcceptsUnknown(t *testing.T) {
	srv := newTestServer(t)
	tg := srv.target(t)
	tg.KnownHostsFiles = []string{filepath.Join(t.TempDir(), "known_hosts")}
	tg.StrictHostKeyChecking = StrictNo
	if err := newTestPool(t).Runner(tg).Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestAuthEncryptedKeyNotInAgent(t *testing.T) {
	srv := newTestServer(t)
	tg := srv.target(t)
	enc := encryptedKey(t)
	tg.IdentityFiles = []string{enc}
	err := newTestPool(t).Runner(tg).Ping(t.Context())
	want := enc + " is encrypted; add it to ssh-agent with: ssh-add " + enc
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Ping = %v, want it to say %q", err, want)
	}
}

func TestAuthWrongKeyNamesWhatWasTried(t *testing.T) {
	srv := newTestServer(t)
	tg := srv.target(t)
	other, _ := writeUserKey(t, filepath.Join(t.TempDir(), "id_other"))
	tg.IdentityFiles = []string{other}
	err := newTestPool(t).Runner(tg).Ping(t.Context())
	if err == nil || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("Ping = %v, want an auth failure naming %s", err, other)
	}
}

func TestAuthAgentFirst(t *testing.T) {
	srv := newTestServer(t)
	tg := srv.target(t)
	// The agent holds the server's user key; the identity file is encrypted
	// and not in the agent, yet the agent's key gets us in.
	raw, err := os.ReadFile(srv.userKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { agent.ServeAgent(keyring, c); c.Close() })
		}
	})
	t.Setenv("SSH_AUTH_SOCK", sock)
	enc := encryptedKey(t)
	tg.IdentityFiles = []string{enc}
	if err := newTestPool(t).Runner(tg).Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	// IdentitiesOnly hides agent keys that match no identity file.
	tg.IdentitiesOnly = true
	if err := newTestPool(t).Runner(tg).Ping(t.Context()); err == nil {
		t.Fatal("IdentitiesOnly still used the agent's other key")
	}
}

func TestProxyJumpInProcess(t *testing.T) {
	jump := newTestServer(t)
	target := newTestServer(t)
	tg := target.target(t)
	tg.ProxyJump = []Target{jump.target(t)}
	pool := newTestPool(t)
	out, err := run(t, pool.Runner(tg), proc.Spec{Dir: "/", Command: "echo", Args: []string{"via jump"}}, "")
	if err != nil || out != "via jump\n" {
		t.Fatalf("run through jump: %q, %v", out, err)
	}
	if f, a := jump.forwards.Load(), target.accepted.Load(); f != 1 || a != 1 {
		t.Errorf("jump forwarded %d connections, target accepted %d; want 1 and 1", f, a)
	}
	// A jump host with an unknown key is refused like any host.
	bad := jump.target(t)
	bad.KnownHostsFiles = []string{filepath.Join(t.TempDir(), "empty")}
	tg.ProxyJump = []Target{bad}
	var hk *HostKeyError
	if err := newTestPool(t).Runner(tg).Ping(t.Context()); !errors.As(err, &hk) || !strings.Contains(err.Error(), "jump host") {
		t.Errorf("Ping via untrusted jump = %v", err)
	}
}
