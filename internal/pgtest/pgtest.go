// Package pgtest starts a throw-away PostgreSQL cluster (Debian's
// postgresql package, /usr/lib/postgresql/<version>/bin) for tests: initdb
// into a temporary directory, postgres listening only on a Unix socket in
// that directory, trust authentication. One cluster serves a whole test
// binary (wrap TestMain with Main); each test gets a fresh database.
//
// When the tests run as root the cluster runs as the "postgres" user, since
// postgres refuses to run as root.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDirs are where the server binaries are looked for, newest first.
var BinDirs = []string{
	"/usr/lib/postgresql/17/bin",
	"/usr/lib/postgresql/16/bin",
	"/usr/lib/postgresql/15/bin",
}

// startTimeout bounds how long the server may take to accept connections.
const startTimeout = 60 * time.Second

// Cluster is one running postgres server.
type Cluster struct {
	// Dir holds the data directory ("data") and the socket.
	Dir string
	// SocketDir is the directory of the server's Unix socket.
	SocketDir string
	// User is the database superuser.
	User string

	bin  string
	cmd  *exec.Cmd
	cred *syscall.Credential
	done chan struct{}
	log  *bytes.Buffer
	seq  atomic.Int64
}

var (
	mu      sync.Mutex
	shared  *Cluster
	sharedE error
	inMain  bool
)

// Main runs the tests of a package with one shared cluster, started on first
// use, and stops it afterwards. Use it as:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		shared = nil
	}
	return code
}

// BinDir returns the directory holding initdb and postgres, or an error
// saying how to install them.
func BinDir() (string, error) {
	for _, d := range BinDirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries not found in " + strings.Join(BinDirs, ", ") +
		"; install them with `apt-get install postgresql`")
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// skipOrFail skips the test when the server is missing, except in CI
// (CI=true), where a missing part must fail the run rather than hide it.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("pgtest: %v", err)
	}
	t.Skipf("pgtest: %v", err)
}

// DSN returns the postgres:// URL of a new, empty database on the shared
// cluster (or, outside Main, on a cluster of this test's own), dropped when
// the test ends. Under -short it skips the test.
func DSN(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("PostgreSQL store tests skipped under -short")
	}
	bin, err := BinDir()
	if err != nil {
		skipOrFail(t, err)
	}
	c, err := cluster(t, bin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return c.URL(name)
}

func cluster(t testing.TB, bin string) (*Cluster, error) {
	mu.Lock()
	defer mu.Unlock()
	if !inMain {
		c, err := Start(bin)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() {
			if err := c.Stop(); err != nil {
				t.Errorf("pgtest: %v", err)
			}
		})
		return c, nil
	}
	if shared == nil && sharedE == nil {
		shared, sharedE = Start(bin)
	}
	return shared, sharedE
}

// URL is the DSN of database name on the cluster.
func (c *Cluster) URL(name string) string {
	q := url.Values{"host": {c.SocketDir}, "user": {c.User}, "sslmode": {"disable"}}
	return "postgres:///" + name + "?" + q.Encode()
}

func (c *Cluster) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// Start creates and starts a cluster in a new temporary directory. The
// server is a child of this process that dies with it, so a killed test
// binary leaves no server behind (only its directory in $TMPDIR).
func Start(bin string) (c *Cluster, err error) {
	// Not t.TempDir: its parent directory is private to the test's user,
	// and the server may run as another one.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir, SocketDir: dir, User: "postgres", bin: bin, log: &bytes.Buffer{}, done: make(chan struct{})}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and no postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := c.command(filepath.Join(bin, "initdb"), "-D", data, "-U", c.User,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// No TCP at all; durability settings off, as nothing here must survive
	// a crash of the machine.
	c.cmd = c.command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=", "-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	c.cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return c, nil
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("postgres exited at start: %s", c.log)
		case <-ctx.Done():
			return nil, fmt.Errorf("postgres did not accept connections within %s: %v\n%s", startTimeout, err, c.log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

// Stop shuts the server down (fast mode: sessions are cut) and removes its
// directory.
func (c *Cluster) Stop() error {
	var err error
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
			err = errors.New("postgres did not stop within 30s; killed")
		}
	}
	if rerr := os.RemoveAll(c.Dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}
