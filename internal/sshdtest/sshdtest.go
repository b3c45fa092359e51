// Package sshdtest starts Debian's real OpenSSH server (/usr/sbin/sshd) on
// 127.0.0.1 for integration tests, with a throw-away host key, a fresh user
// key, and a known_hosts file and ssh_config that trust exactly that server.
// sshd runs as the current user; tests skip only when sshd is not installed.
package sshdtest

import (
	"bufio"
	"bytes"
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

// Options change what Start sets up.
type Options struct {
	// JumpOnly makes a ProxyJump host: TCP forwarding is allowed, commands
	// and SFTP are not. Other servers refuse forwarding.
	JumpOnly bool
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
	// SSHConfig is an ssh_config file with a Host block for Alias.
	SSHConfig string
	// KeyFile is the unencrypted private key the user logs in with.
	KeyFile string
	// HostKey is the server's host key.
	HostKey ssh.PublicKey
	// Dir holds the server's files.
	Dir string

	t       testing.TB
	cfgFile string
	mu      sync.Mutex
	cmd     *exec.Cmd
	log     *bytes.Buffer
	exited  chan struct{}
}

// Start starts an sshd with default options.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith starts an sshd; it is stopped when the test ends.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	if _, err := os.Stat(SSHD); err != nil {
		t.Skipf("%s not installed", SSHD)
	}
	// sshd refuses to start without its privilege separation directory,
	// which Debian creates only when the service starts.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		t.Fatalf("create /run/sshd: %v", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &Server{Host: "127.0.0.1", User: u.Username, Dir: dir, t: t,
		KeyFile: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts"),
		SSHConfig: filepath.Join(dir, "ssh_config"), cfgFile: filepath.Join(dir, "sshd_config")}

	hostKeyFile := filepath.Join(dir, "ssh_host_ed25519_key")
	s.HostKey = writeKey(t, hostKeyFile)
	userPub := writeKey(t, s.KeyFile)
	authKeys := filepath.Join(dir, "authorized_keys")
	writeFile(t, authKeys, string(ssh.MarshalAuthorizedKey(userPub)))

	// DEBUG1 logs the forwards a jump host opens, but it also sends debug
	// lines into sessions' stderr, so only the jump host (no sessions) has it.
	forwarding, subsystem, force, logLevel := "no", "Subsystem sftp "+SFTPServer, "", "VERBOSE"
	if o.JumpOnly {
		forwarding, subsystem, force, logLevel = "local", "", "ForceCommand /bin/false\nPermitTTY no", "DEBUG1"
	}
	root := "no"
	if u.Uid == "0" {
		root = "prohibit-password"
	}

	var started bool
	for attempt := 0; attempt < 5 && !started; attempt++ {
		s.Port = freePort(t)
		s.Alias = "sshdtest-" + strconv.Itoa(s.Port)
		writeFile(t, s.cfgFile, fmt.Sprintf(`Port %d
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
LogLevel %s
%s
%s
`, s.Port, hostKeyFile, authKeys, root, s.User, forwarding, logLevel, subsystem, force))
		started = s.start()
	}
	if !started {
		t.Fatalf("sshd did not start: %s", s.Log())
	}
	t.Cleanup(s.Stop)

	known := fmt.Sprintf("[%s]:%d %s", s.Host, s.Port, ssh.MarshalAuthorizedKey(s.HostKey))
	block := fmt.Sprintf(`Host %s
  HostName %s
  Port %d
  User %s
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
`, s.Alias, s.Host, s.Port, s.User, s.KeyFile, s.KnownHosts)
	if o.Via != nil {
		block += "  ProxyJump " + o.Via.Alias + "\n\n"
		via, err := os.ReadFile(o.Via.SSHConfig)
		if err != nil {
			t.Fatal(err)
		}
		block += strings.ReplaceAll(string(via), o.Via.KnownHosts, s.KnownHosts)
		viaKnown, err := os.ReadFile(o.Via.KnownHosts)
		if err != nil {
			t.Fatal(err)
		}
		known += string(viaKnown)
	}
	writeFile(t, s.KnownHosts, known)
	writeFile(t, s.SSHConfig, block)
	return s
}

// start runs sshd and waits until it greets; false if it exited instead
// (typically: the port was taken meanwhile).
func (s *Server) start() bool {
	log := &bytes.Buffer{}
	cmd := exec.Command(SSHD, "-D", "-e", "-f", s.cfgFile)
	cmd.Stdout, cmd.Stderr = lockedWriter{&s.mu, log}, lockedWriter{&s.mu, log}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited, s.log = cmd, exited, log
	s.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if greets(net.JoinHostPort(s.Host, strconv.Itoa(s.Port))) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
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
// same host key.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if !s.start() {
		s.t.Fatalf("sshd did not restart on port %d: %s", s.Port, s.Log())
	}
}

func (s *Server) signalAll(sig syscall.Signal, wait bool) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	// Connection handlers call setsid, so a process group would miss them;
	// walk the process tree instead.
	for _, pid := range append(descendants(cmd.Process.Pid), cmd.Process.Pid) {
		syscall.Kill(pid, sig)
	}
	if wait {
		<-exited
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

// Log is what sshd has logged so far (LogLevel DEBUG1).
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
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

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(pem.EncodeToMemory(blk)))
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path+".pub", string(ssh.MarshalAuthorizedKey(sp)))
	return sp
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
