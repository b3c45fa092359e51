package remote

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/switchboard-mcp/switchboard/internal/poll"
)

// testServer is an in-process SSH server on 127.0.0.1: exec runs the command
// with /bin/sh -c on this machine (as sshd would, with HOME set to a temp
// dir), the sftp subsystem is pkg/sftp's server, and direct-tcpip channels
// make it usable as a ProxyJump hop.
type testServer struct {
	t        testing.TB
	ln       net.Listener
	port     int
	hostKey  ssh.Signer
	home     string
	userKey  string // private key file the client uses
	accepted atomic.Int64
	forwards atomic.Int64
	stall    atomic.Bool // stop answering global requests (keepalives)

	mu     sync.Mutex
	conns  []net.Conn
	procs  map[*exec.Cmd]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	dir := t.TempDir()
	s := &testServer{t: t, home: filepath.Join(dir, "home"), procs: map[*exec.Cmd]struct{}{}}
	if err := os.Mkdir(s.home, 0o700); err != nil {
		t.Fatal(err)
	}
	s.hostKey = newSigner(t)
	var userPub ssh.PublicKey
	s.userKey, userPub = writeUserKey(t, filepath.Join(dir, "id_ed25519"))

	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if string(k.Marshal()) == string(userPub.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(s.hostKey)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				nc.Close()
				return
			}
			s.conns = append(s.conns, nc)
			s.wg.Add(1)
			s.mu.Unlock()
			go func() {
				defer s.wg.Done()
				s.serveConn(nc, cfg)
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

// writeUserKey writes a fresh ed25519 key and its .pub file.
func writeUserKey(t testing.TB, path string) (string, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, sp
}

// encryptedKey copies testdata/id_enc, an ed25519 key encrypted with the
// passphrase "secret" (ssh-keygen -t ed25519 -N secret), and its .pub file
// into a temp dir and returns the key's path. A stored key rather than a
// fresh one: encrypting takes bcrypt_pbkdf's 16 rounds, over half a second
// of CPU under -race, and no test decrypts it.
func encryptedKey(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "id_enc")
	for _, suffix := range []string{"", ".pub"} {
		b, err := os.ReadFile(filepath.Join("testdata", "id_enc"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// target returns a Target for the server whose known_hosts trusts its key.
func (s *testServer) target(t testing.TB) Target {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", s.port, ssh.MarshalAuthorizedKey(s.hostKey.PublicKey()))
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := Target{
		HostName:              "127.0.0.1",
		Port:                  s.port,
		User:                  "tester",
		IdentityFiles:         []string{s.userKey},
		KnownHostsFiles:       []string{kh},
		StrictHostKeyChecking: StrictYes,
	}
	applyDefaults(&tg)
	return tg
}

// dropConns closes every server-side connection, as a host going away would.
func (s *testServer) dropConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func (s *testServer) close() {
	s.mu.Lock()
	s.closed = true
	for cmd := range s.procs {
		killGroup(cmd)
	}
	s.mu.Unlock()
	s.ln.Close()
	s.dropConns()
	s.wg.Wait()
}

func (s *testServer) serveConn(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for r := range reqs {
			if s.stall.Load() {
				continue // a hung host: the client waits for a reply forever
			}
			if r.WantReply {
				r.Reply(false, nil) // what OpenSSH answers to keepalive@openssh.com
			}
		}
	}()
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			ch, creqs, err := nch.Accept()
			if err != nil {
				continue
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serveSession(ch, creqs)
			}()
		case "direct-tcpip":
			s.forward(nch)
		default:
			nch.Reject(ssh.UnknownChannelType, "unsupported")
		}
	}
}

func (s *testServer) forward(nch ssh.NewChannel) {
	var p struct {
		Host       string
		Port       uint32
		OriginHost string
		OriginPort uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	tc, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		tc.Close()
		return
	}
	s.forwards.Add(1)
	go ssh.DiscardRequests(reqs)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		io.Copy(tc, ch)
		tc.(*net.TCPConn).CloseWrite()
	}()
	go func() {
		defer s.wg.Done()
		io.Copy(ch, tc)
		ch.Close()
		tc.Close()
	}()
}

func (s *testServer) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var env []string
	var cmd *exec.Cmd
	exited := make(chan struct{})
	for {
		select {
		case r, ok := <-reqs:
			if !ok {
				if cmd != nil { // the client closed the channel: hang up
					killGroup(cmd)
					<-exited
				}
				return
			}
			switch r.Type {
			case "env":
				var kv struct{ K, V string }
				ssh.Unmarshal(r.Payload, &kv)
				env = append(env, kv.K+"="+kv.V)
				r.Reply(true, nil)
			case "exec":
				var p struct{ Command string }
				if err := ssh.Unmarshal(r.Payload, &p); err != nil || cmd != nil {
					r.Reply(false, nil)
					continue
				}
				cmd = exec.Command("/bin/sh", "-c", p.Command)
				// Like sshd, give each session its own session and process
				// group, so killing the group reaches everything it started.
				cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
				cmd.Dir = s.home
				cmd.Env = append(append(os.Environ(), "HOME="+s.home, "SHELL=/bin/sh", "USER=tester"), env...)
				if err := s.run(cmd, ch, exited); err != nil {
					r.Reply(false, nil)
					return
				}
				r.Reply(true, nil)
			case "subsystem":
				var p struct{ Name string }
				ssh.Unmarshal(r.Payload, &p)
				if p.Name != "sftp" {
					r.Reply(false, nil)
					continue
				}
				r.Reply(true, nil)
				srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(s.home))
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				srv.Serve()
				srv.Close()
				return
			case "signal":
				var p struct{ Name string }
				ssh.Unmarshal(r.Payload, &p)
				if cmd != nil && p.Name == string(ssh.SIGKILL) {
					killGroup(cmd)
				}
				if r.WantReply {
					r.Reply(true, nil)
				}
			default:
				if r.WantReply {
					r.Reply(false, nil)
				}
			}
		case <-exited:
			go ssh.DiscardRequests(reqs)
			return
		}
	}
}

// run starts cmd wired to the channel and reports its exit on the channel.
func (s *testServer) run(cmd *exec.Cmd, ch ssh.Channel, exited chan struct{}) error {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("closed")
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return err
	}
	s.procs[cmd] = struct{}{}
	s.wg.Add(2)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		io.Copy(stdin, ch)
		stdin.Close()
	}()
	go func() {
		defer s.wg.Done()
		err := cmd.Wait()
		s.mu.Lock()
		delete(s.procs, cmd)
		s.mu.Unlock()
		var ee *exec.ExitError
		switch {
		case err == nil:
			ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, 0))
		case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled():
			sig := ee.Sys().(syscall.WaitStatus).Signal()
			name := map[syscall.Signal]string{syscall.SIGKILL: "KILL", syscall.SIGTERM: "TERM"}[sig]
			ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
				Signal     string
				CoreDumped bool
				Msg, Lang  string
			}{Signal: name}))
		case errors.As(err, &ee):
			ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(ee.ExitCode())))
		}
		ch.CloseWrite()
		ch.Close()
		close(exited)
	}()
	return nil
}

// killGroup kills a session's process group, as sshd's signal request does
// (killpg), so no child left holding stdout keeps the session open.
func killGroup(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// waitFor polls cond until it holds or a generous deadline passes.
// waitFor polls cond until it holds (see internal/poll).
var waitFor = poll.Until
