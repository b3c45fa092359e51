// Package sshdtest starts Debian's real OpenSSH server (/usr/sbin/sshd) on
// 127.0.0.1 with a throw-away host key, a fresh user key, and a known_hosts
// file and ssh_config that trust exactly that server. sshd runs as the
// current user.
//
// Sessions get a home of their own (Server.Home) instead of the current
// user's: HOME in every session and the SFTP start directory. A login shell
// there reads no ~/.profile or ~/.bashrc, so the developer's dotfiles neither
// change what the tests see nor cost seconds per remote command (a profile
// that runs `pyenv init` took 3.5 s for every command each test sends), and
// nothing a test does over SSH lands in the real home.
//
// Launch is the core, for any program (the benchmark harness uses it);
// Start and StartWith wrap it for tests, which skip only when sshd is not
// installed.
package sshdtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Paths of the Debian openssh-server binaries.
const (
	SSHD       = "/usr/sbin/sshd"
	SFTPServer = "/usr/lib/openssh/sftp-server"
)

// startTimeout bounds how long sshd may take to greet after it starts.
const startTimeout = 30 * time.Second

// Options change what Launch sets up.
type Options struct {
	// Alias is the server's Host alias in its ssh_config; the default is
	// "sshdtest-<port>".
	Alias string
	// JumpOnly makes a ProxyJump host: TCP forwarding is allowed, commands
	// and SFTP are not. Other servers refuse forwarding.
	JumpOnly bool
	// AllowTcpForwarding is sshd's setting of that name for a server that
	// is not JumpOnly ("yes", "remote", ...); the default "no" refuses
	// the remote port forwards that asking back needs.
	AllowTcpForwarding string
	// Via puts the server behind a jump host: its ssh_config alias reaches
	// it with ProxyJump through Via's alias, and its SSHConfig and
	// KnownHosts carry Via's entries too.
	Via *Server
}

// Server is one running sshd.
type Server struct {
	// Alias is the Host alias for this server in SSHConfig.
	Alias string
	Host  string
	Port  int
	User  string
	// KnownHosts is a known_hosts file trusting this server (and its jump).
	KnownHosts string
	// SSHConfig is an ssh_config file with a Host block for Alias (and
	// its jump's).
	SSHConfig string
	// KeyFile is the unencrypted private key the user logs in with.
	KeyFile string
	// HostKey is the server's host key.
	HostKey ssh.PublicKey
	// Dir holds the server's files.
	Dir string
	// Home is the remote user's home: $HOME in sessions, and where SFTP
	// starts (see the package doc). Empty, so no profile runs.
	Home string

	via     *Server
	tb      testing.TB // set by StartWith: Restart failures fail the test
	cfgFile string
	mu      sync.Mutex
	cmd     *exec.Cmd
	log     bytes.Buffer // every run's output, across restarts
	exited  chan struct{}
}

// Start starts an sshd with default options for a test.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith starts an sshd for a test, in a directory of its own; it is
// stopped when the test ends. The short suite runs no sshd: the test skips
// under -short. Where sshd is not installed it skips too, or fails when
// CI=true (CI installs it, so a missing one is a broken setup).
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("a real sshd runs in the full suite, not under -short")
	}
	if _, err := os.Stat(SSHD); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing in CI (install openssh-server): %v", SSHD, err)
		}
		t.Skipf("%s not installed", SSHD)
	}
	s, err := Launch(context.Background(), t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	s.tb = t
	t.Cleanup(s.Stop)
	return s
}

// Launch starts an sshd whose files live in dir (created if missing). The
// caller stops it with Stop.
func Launch(ctx context.Context, dir string, o Options) (*Server, error) {
	if _, err := os.Stat(SSHD); err != nil {
		return nil, fmt.Errorf("%s is not installed (apt-get install openssh-server): %w", SSHD, err)
	}
	// sshd refuses to start without its privilege separation directory,
	// which Debian creates only when the service starts. Only root can
	// create it, and only root's sshd needs it.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		return nil, fmt.Errorf("create /run/sshd: %w", err)
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", User: u.Username, Dir: dir, via: o.Via,
		KeyFile: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts"),
		SSHConfig: filepath.Join(dir, "ssh_config"), cfgFile: filepath.Join(dir, "sshd_config"),
		Home: filepath.Join(dir, "home")}
	if err := os.MkdirAll(s.Home, 0o700); err != nil {
		return nil, err
	}

	hostKeyFile := filepath.Join(dir, "ssh_host_ed25519_key")
	if s.HostKey, err = writeKey(hostKeyFile); err != nil {
		return nil, err
	}
	userPub, err := writeKey(s.KeyFile)
	if err != nil {
		return nil, err
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, ssh.MarshalAuthorizedKey(userPub), 0o600); err != nil {
		return nil, err
	}

	// LogLevel VERBOSE logs one "Accepted publickey" line per connection
	// (see Accepted). DEBUG1 logs the forwards a jump host opens, but it
	// also sends debug lines into sessions' stderr, so only the jump host
	// (no sessions) has it.
	forwarding, subsystem, force, logLevel := "no", "Subsystem sftp "+SFTPServer+" -d "+s.Home, "", "VERBOSE"
	if o.JumpOnly {
		forwarding, subsystem, force, logLevel = "local", "", "ForceCommand /bin/false\nPermitTTY no", "DEBUG1"
	} else if o.AllowTcpForwarding != "" {
		forwarding = o.AllowTcpForwarding
	}
	root := "no"
	if u.Uid == "0" {
		root = "prohibit-password"
	}
	for attempt := 0; attempt < 5; attempt++ {
		if s.Port, err = freePort(); err != nil {
			return nil, err
		}
		conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile none
AuthorizedKeysFile %s
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin %s
AllowUsers %s
AllowTcpForwarding %s
AllowAgentForwarding no
X11Forwarding no
PrintMotd no
SetEnv HOME=%s
LogLevel %s
%s
%s
`, s.Port, hostKeyFile, authKeys, root, s.User, forwarding, s.Home, logLevel, subsystem, force)
		if err := os.WriteFile(s.cfgFile, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		// The usual failure is a port taken between freePort and sshd's
		// bind: try another one.
		if err = s.start(ctx); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}

	s.Alias = o.Alias
	if s.Alias == "" {
		s.Alias = "sshdtest-" + strconv.Itoa(s.Port)
	}
	if err := s.writeClientFiles(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// writeClientFiles writes KnownHosts and SSHConfig, which also trust and
// reach the jump host, if any.
func (s *Server) writeClientFiles() error {
	known := fmt.Sprintf("[%s]:%d %s", s.Host, s.Port, ssh.MarshalAuthorizedKey(s.HostKey))
	config := s.ConfigBlock()
	if s.via != nil {
		via, err := os.ReadFile(s.via.SSHConfig)
		if err != nil {
			return err
		}
		config += strings.ReplaceAll(string(via), s.via.KnownHosts, s.KnownHosts)
		viaKnown, err := os.ReadFile(s.via.KnownHosts)
		if err != nil {
			return err
		}
		known += string(viaKnown)
	}
	if err := os.WriteFile(s.KnownHosts, []byte(known), 0o600); err != nil {
		return err
	}
	return os.WriteFile(s.SSHConfig, []byte(config), 0o600)
}

// ConfigBlock is this server's own ssh_config Host block (without its
// jump host's), for both the OpenSSH client and switchboard's resolver.
// Blocks of several servers concatenate into one ssh_config whose
// UserKnownHostsFile entries each trust their own server.
func (s *Server) ConfigBlock() string {
	b := fmt.Sprintf(`Host %s
  HostName %s
  Port %d
  User %s
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
`, s.Alias, s.Host, s.Port, s.User, s.KeyFile, s.KnownHosts)
	if s.via != nil {
		b += "  ProxyJump " + s.via.Alias + "\n"
	}
	return b + "\n"
}

// start runs sshd and waits until it greets. It fails if sshd exits first
// (typically: the port was taken meanwhile) or does not greet in time.
func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command(SSHD, "-D", "-e", "-f", s.cfgFile)
	cmd.Stdout, cmd.Stderr = lockedWriter{s}, lockedWriter{s}
	// A process that escaped Stop (see signalAll) keeps sshd's output pipe
	// open; Wait must not wait for it for ever.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	for {
		select {
		case <-exited:
			return fmt.Errorf("sshd on port %d exited at start: %s", s.Port, s.Log())
		case <-ctx.Done():
			s.Stop()
			return fmt.Errorf("sshd did not greet on %s: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if greets(addr) {
			return nil
		}
	}
}

func greets(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

// Stop kills sshd and every process it started (connection handlers and
// the commands they run), as a host that goes down would. Clients see their
// connections end.
func (s *Server) Stop() { s.signalAll(syscall.SIGKILL, true) }

// Freeze stops (SIGSTOP) sshd and all its processes: connections stay open
// but nothing answers, as with a hung host or a dead network path. Stop or
// Restart end it.
func (s *Server) Freeze() { s.signalAll(syscall.SIGSTOP, false) }

// Restart stops the server and starts it again on the same port with the
// same host key. A server from Start or StartWith also fails its test when
// Restart fails.
func (s *Server) Restart() error {
	s.Stop()
	err := s.start(context.Background())
	if err != nil {
		err = fmt.Errorf("restart sshd on port %d: %w", s.Port, err)
		if s.tb != nil {
			s.tb.Helper()
			s.tb.Fatal(err)
		}
	}
	return err
}

func (s *Server) signalAll(sig syscall.Signal, wait bool) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	// Connection handlers call setsid, so a process group would miss them;
	// walk the process tree instead. The tree must hold still while it is
	// walked: a connection accepted, or a command forked, after the walk
	// would escape, and a process whose parent is killed first moves to
	// init, out of the walk. So everything is stopped first, walking again
	// until a walk finds no process that is not stopped yet, and only then
	// signalled: Stop's SIGKILL ends stopped processes too, and Freeze wants
	// them stopped anyway.
	stopped := map[int]bool{}
	for {
		more := false
		for _, pid := range append(descendants(cmd.Process.Pid), cmd.Process.Pid) {
			if !stopped[pid] {
				syscall.Kill(pid, syscall.SIGSTOP)
				stopped[pid], more = true, true
			}
		}
		if !more {
			break
		}
		for pid := range stopped {
			waitStopped(pid)
		}
	}
	for pid := range stopped {
		syscall.Kill(pid, sig)
	}
	if wait {
		<-exited
	}
}

// waitStopped waits, briefly, until pid is stopped or gone, so that it
// can fork no more.
func waitStopped(pid int) {
	for range 200 {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return // gone
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] == 'T' || b[i+2] == 't' || b[i+2] == 'Z' {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// Log is what sshd has logged so far, over all its runs.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Accepted counts the connections sshd has authenticated so far, over all
// its runs: an account of connections opened that is independent of the
// client's.
func (s *Server) Accepted() int {
	return strings.Count(s.Log(), "Accepted publickey for ")
}

// Forwards counts the TCP forwards (direct-tcpip channels, which ProxyJump
// uses) this server opened to host:port. Only a JumpOnly server logs them.
func (s *Server) Forwards(host string, port int) int {
	n := 0
	suffix := fmt.Sprintf("target %s port %d", host, port)
	for _, line := range strings.Split(s.Log(), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.Contains(line, "server_request_direct_tcpip:") && strings.HasSuffix(line, suffix) {
			n++
		}
	}
	return n
}

// lockedWriter appends sshd's output to the server's log.
type lockedWriter struct{ s *Server }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.log.Write(p)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// writeKey writes a new ed25519 private key to path and its public key to
// path.pub.
func writeKey(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o600); err != nil {
		return nil, err
	}
	return sp, nil
}
