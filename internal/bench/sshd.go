package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Debian's OpenSSH server and its SFTP subsystem.
const (
	sshdPath = "/usr/sbin/sshd"
	sftpPath = "/usr/lib/openssh/sftp-server"
)

// sshHost is one Debian sshd on 127.0.0.1 with a throw-away host key and a
// user key, plus an ssh_config block and known_hosts entry that trust it.
// It mirrors internal/sshdtest, which needs a testing.TB.
type sshHost struct {
	Alias      string
	Port       int
	User       string
	Dir        string
	KeyFile    string
	KnownHosts string
	cfgFile    string
	logFile    string
	cmd        *exec.Cmd
	exited     chan struct{}
}

// startSSHD starts an sshd under dir. Its config is Debian's defaults plus
// what a private test host needs: key login only, this user only, loopback.
func startSSHD(ctx context.Context, dir, alias string) (*sshHost, error) {
	if _, err := os.Stat(sshdPath); err != nil {
		return nil, fmt.Errorf("%s is not installed (apt-get install openssh-server): %w", sshdPath, err)
	}
	// sshd refuses to start without its privilege separation directory.
	_ = os.MkdirAll("/run/sshd", 0o755)
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	h := &sshHost{Alias: alias, User: u.Username, Dir: dir,
		KeyFile: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts"),
		cfgFile: filepath.Join(dir, "sshd_config"), logFile: filepath.Join(dir, "sshd.log")}
	hostKeyFile := filepath.Join(dir, "ssh_host_ed25519_key")
	hostPub, err := writeKey(hostKeyFile)
	if err != nil {
		return nil, err
	}
	userPub, err := writeKey(h.KeyFile)
	if err != nil {
		return nil, err
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, ssh.MarshalAuthorizedKey(userPub), 0o600); err != nil {
		return nil, err
	}
	root := "no"
	if u.Uid == "0" {
		root = "prohibit-password"
	}
	for attempt := 0; attempt < 5; attempt++ {
		if h.Port, err = freePort(); err != nil {
			return nil, err
		}
		// LogLevel VERBOSE logs one "Accepted publickey" line per
		// connection: the independent count of connections opened.
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
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
Subsystem sftp %s
`, h.Port, hostKeyFile, authKeys, root, h.User, sftpPath)
		if err := os.WriteFile(h.cfgFile, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		if err = h.start(ctx); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	known := fmt.Sprintf("[127.0.0.1]:%d %s", h.Port, ssh.MarshalAuthorizedKey(hostPub))
	if err := os.WriteFile(h.KnownHosts, []byte(known), 0o600); err != nil {
		h.Stop()
		return nil, err
	}
	return h, nil
}

// ConfigBlock is this host's ssh_config block, for both the OpenSSH client
// and switchboard's resolver.
func (h *sshHost) ConfigBlock() string {
	return fmt.Sprintf(`Host %s
  HostName 127.0.0.1
  Port %d
  User %s
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR

`, h.Alias, h.Port, h.User, h.KeyFile, h.KnownHosts)
}

func (h *sshHost) start(ctx context.Context) error {
	log, err := os.OpenFile(h.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", h.cfgFile)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	h.cmd, h.exited = cmd, exited

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(h.Port))
	for {
		select {
		case <-exited:
			return errors.New("sshd exited at start: " + h.Log())
		case <-ctx.Done():
			h.Stop()
			return fmt.Errorf("sshd did not greet on %s: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if greets(addr) {
			return nil
		}
	}
}

// Accepted counts the connections sshd has authenticated so far.
func (h *sshHost) Accepted() int {
	return strings.Count(h.Log(), "Accepted publickey for ")
}

// Log is what sshd has logged so far.
func (h *sshHost) Log() string {
	b, _ := os.ReadFile(h.logFile)
	return string(b)
}

// Stop kills sshd and every process it started.
func (h *sshHost) Stop() {
	if h.cmd == nil {
		return
	}
	for _, pid := range append(descendants(h.cmd.Process.Pid), h.cmd.Process.Pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	<-h.exited
	h.cmd = nil
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

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

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
	return sp, os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o600)
}

// descendants lists the processes below pid, from /proc. sshd's connection
// handlers call setsid, so a process group would miss them.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := ppid(p); pp > 0 {
			children[pp] = append(children[pp], p)
		}
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

func ppid(pid int) int {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}
