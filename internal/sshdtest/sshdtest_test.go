package sshdtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The helper is checked with the OpenSSH client, independently of remote/.
func sshEcho(t *testing.T, s *Server, word string) (string, error) {
	t.Helper()
	client, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("no OpenSSH client to cross-check with")
	}
	out, err := exec.Command(client, "-F", s.SSHConfig, "-o", "BatchMode=yes", s.Alias, "echo", word).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestServerAcceptsItsClientConfig(t *testing.T) {
	s := Start(t)
	if out, err := sshEcho(t, s, "hello"); err != nil || out != "hello" {
		t.Fatalf("ssh %s: %q, %v\nsshd log:\n%s", s.Alias, out, err, s.Log())
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if out, err := sshEcho(t, s, "again"); err != nil || out != "again" {
		t.Fatalf("after Restart: %q, %v\nsshd log:\n%s", out, err, s.Log())
	}
	s.Stop()
	if _, err := sshEcho(t, s, "gone"); err == nil {
		t.Fatal("ssh worked after Stop")
	}
}

func TestJumpHost(t *testing.T) {
	jump := StartWith(t, Options{JumpOnly: true})
	target := StartWith(t, Options{Via: jump})
	if out, err := sshEcho(t, target, "via"); err != nil || out != "via" {
		t.Fatalf("ssh via jump: %q, %v\njump log:\n%s", out, err, jump.Log())
	}
	if n := jump.Forwards(target.Host, target.Port); n != 1 {
		t.Errorf("jump logged %d forwards to the target, want 1", n)
	}
	// The jump host itself runs no commands.
	if out, err := sshEcho(t, jump, "no"); err == nil {
		t.Errorf("jump host ran a command: %q", out)
	}
}

// Launch serves programs other than tests: several servers combine into one
// ssh_config, and each counts the connections it accepted, across restarts.
func TestLaunchCombinedConfig(t *testing.T) {
	if _, err := os.Stat(SSHD); err != nil {
		t.Skipf("%s not installed", SSHD)
	}
	dir := t.TempDir()
	var servers []*Server
	var config string
	for _, alias := range []string{"host-a", "host-b"} {
		s, err := Launch(context.Background(), filepath.Join(dir, alias), Options{Alias: alias})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		servers = append(servers, s)
		config += s.ConfigBlock()
	}
	combined := &Server{Alias: "host-b", SSHConfig: filepath.Join(dir, "ssh_config")}
	if err := os.WriteFile(combined.SSHConfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	a, b := servers[0], servers[1]
	if out, err := sshEcho(t, combined, "b"); err != nil || out != "b" {
		t.Fatalf("ssh host-b with the combined config: %q, %v\nsshd log:\n%s", out, err, b.Log())
	}
	if got := [2]int{a.Accepted(), b.Accepted()}; got != [2]int{0, 1} {
		t.Errorf("accepted connections (host-a, host-b) = %v, want [0 1]", got)
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if out, err := sshEcho(t, combined, "again"); err != nil || out != "again" {
		t.Fatalf("ssh host-b after Restart: %q, %v", out, err)
	}
	if n := b.Accepted(); n != 2 {
		t.Errorf("host-b accepted %d connections over two runs, want 2", n)
	}
}

func TestLaunchWithoutDirCreatesIt(t *testing.T) {
	if _, err := os.Stat(SSHD); err != nil {
		t.Skipf("%s not installed", SSHD)
	}
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := Launch(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, perm)
	}
}
