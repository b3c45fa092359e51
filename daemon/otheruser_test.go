package daemon

import (
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"testing"
)

// otherUserName is the unprivileged account the access tests act as.
const otherUserName = "sbother"

// otherUser returns the uid and gid of a second Unix user, creating it when
// missing. Only root can create it or act as it, so the test is skipped
// otherwise.
func otherUser(t *testing.T) (uid, gid uint32) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("acting as a second Unix user needs root")
	}
	u, err := user.Lookup(otherUserName)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", otherUserName).CombinedOutput()
		if err != nil {
			t.Fatalf("useradd %s: %v\n%s", otherUserName, err, out)
		}
		if u, err = user.Lookup(otherUserName); err != nil {
			t.Fatal(err)
		}
	}
	id, _ := strconv.Atoi(u.Uid)
	g, _ := strconv.Atoi(u.Gid)
	return uint32(id), uint32(g)
}

// asOther returns a command that runs as the second user.
func asOther(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	uid, gid := otherUser(t)
	cmd := exec.Command(name, args...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	return cmd
}
