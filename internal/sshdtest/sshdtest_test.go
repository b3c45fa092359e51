package sshdtest

import (
	"os/exec"
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
	s.Restart()
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
