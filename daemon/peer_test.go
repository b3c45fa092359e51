package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helperEnv makes the test binary, run again, act as a helper process of
// another user (see TestPeerHelper).
const helperEnv = "SB_PEER_HELPER"

// TestPeerHelper is not a test: run with SB_PEER_HELPER=listen:SOCKET it
// serves a socket until stdin closes; with dial:SOCKET it says hello and
// initialize to a daemon and prints what it answers until it hangs up.
func TestPeerHelper(t *testing.T) {
	mode, socket, ok := strings.Cut(os.Getenv(helperEnv), ":")
	if !ok {
		t.Skip("a helper process, run by other tests")
	}
	switch mode {
	case "listen":
		ln, err := net.Listen("unix", socket)
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		os.Chmod(socket, 0o777)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go io.Copy(io.Discard, c)
			}
		}()
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
	case "dial":
		c, err := net.Dial("unix", socket)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(1)
		}
		fmt.Fprintf(c, "{\"caller\":\"web\"}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"x\",\"version\":\"1\"}}}\n")
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err := io.ReadAll(c)
		fmt.Printf("answer: %s\nend: %v\n", got, err)
	}
	os.Exit(0)
}

// helperBinary copies the test binary where the other user can run it.
func helperBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "sbh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helper.test")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// A socket served by another user's process is refused by the client
// before it says anything, even where that user could not have put it
// (the directory is this user's and private now).
func TestConnectRefusesSocketOfAnotherUser(t *testing.T) {
	uid, gid := otherUser(t)
	bin := helperBinary(t)
	dir := shortDir(t)
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(run, int(uid), int(gid))
	socket := filepath.Join(run, "broker.sock")
	os.Chmod(dir, 0o755)

	cmd := asOther(t, bin, "-test.run=^TestPeerHelper$")
	cmd.Env = append(os.Environ(), helperEnv+"=listen:"+socket)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("helper as %s: %q", otherUserName, line)
	}
	// Directory owned by the other user: refused on that ground first.
	_, err := Connect(context.Background(), ConnectOptions{Socket: socket, Caller: "web"})
	if err == nil || !strings.Contains(err.Error(), "belongs to uid") {
		t.Fatalf("Connect through a directory of uid %d = %v, want a refusal", uid, err)
	}
	// Now the directory is this user's, but the socket is still served
	// by the other user's process.
	if err := os.Chown(run, os.Geteuid(), os.Getegid()); err != nil {
		t.Fatal(err)
	}
	_, err = Connect(context.Background(), ConnectOptions{Socket: socket, Caller: "web",
		Start: func(context.Context) (<-chan error, error) { return nil, errors.New("must not start a daemon") }})
	var fe *ForeignPeerError
	if !errors.As(err, &fe) || fe.UID != int(uid) {
		t.Fatalf("Connect to a socket of uid %d = %v, want a ForeignPeerError", uid, err)
	}
	if Running(context.Background(), socket) {
		t.Error("Running says a daemon of ours answers on the other user's socket")
	}
}

// A socket directory others can write is refused at Serve and Connect,
// with the fix.
func TestSocketDirWritableByOthersRefused(t *testing.T) {
	dir := shortDir(t)
	socket := filepath.Join(dir, "run", "broker.sock")
	lock, err := Acquire(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	run := filepath.Dir(socket)
	for _, mode := range []os.FileMode{0o777, 0o770, 0o1777} {
		if err := os.Chmod(run, mode); err != nil {
			t.Fatal(err)
		}
		want := "chmod 700 " + run
		err := Serve(context.Background(), Options{Lock: lock, Broker: newBroker(t, t.TempDir())})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Serve in a %o directory = %v, want a refusal with %q", mode, err, want)
		}
		_, err = Connect(context.Background(), ConnectOptions{Socket: socket})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Connect in a %o directory = %v, want a refusal with %q", mode, err, want)
		}
	}
}

// The daemon itself refuses a client of another user, even when the
// socket's modes would let one in.
func TestDaemonRefusesClientOfAnotherUser(t *testing.T) {
	otherUser(t)
	bin := helperBinary(t)
	dir := shortDir(t)
	socket := filepath.Join(dir, "run", "broker.sock")
	serve(t, socket, "")
	// Open the door as a careless user might, after the daemon started.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(socket), 0o755)
	os.Chmod(socket, 0o777)

	cmd := asOther(t, bin, "-test.run=^TestPeerHelper$")
	cmd.Env = append(os.Environ(), helperEnv+"=dial:"+socket)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "serverInfo") || !strings.HasPrefix(string(out), "answer: \nend: ") {
		t.Errorf("a client of another user got: %s; want the connection closed unanswered", out)
	}
}
