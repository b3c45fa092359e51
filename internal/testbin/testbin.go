// Package testbin builds a command of this module for tests that run it as
// a process (the switchboard daemon, the fake claude).
//
// `go build -o FILE` links anew unless FILE already holds the executable it
// would write; a link into a fresh temp dir therefore costs every test run
// seconds of CPU (a -race switchboard: about 5 s) although nothing changed.
// So the executable is kept between runs in the user's cache directory, one
// per checkout, package and flag set, and `go build` itself decides whether
// it is up to date: a changed source or flag still rebuilds it.
package testbin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// Build builds the package pkg (an import path of this module) with the go
// flags given and returns the executable's bytes. The caller writes them
// where its test wants them, so a later Build (of another test run, after an
// edit) never changes a file a test is running.
func Build(pkg string, flags ...string) ([]byte, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := cacheDir()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(strings.Join(append([]string{root, pkg, runtime.Version()}, flags...), "\x00")))
	out := filepath.Join(dir, hex.EncodeToString(sum[:8]))

	// Test binaries of one `go test ./...` build the same command at
	// once: one links, the others wait and find it up to date. The lock
	// also keeps a build from rewriting the file while another reads it.
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", out, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock %s: %w", out, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	// -buildvcs=false: the VCS stamp (revision, "modified") would change
	// the executable, and so relink it, on every commit or edit anywhere in
	// the checkout; no test reads it.
	cmd := exec.Command(goTool, append(append([]string{"build", "-buildvcs=false", "-o", out}, flags...), pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return os.ReadFile(out)
}

// cacheDir is the user's own directory for the executables: not /tmp,
// where another user could leave a file for the tests to run.
func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a cache directory for test executables (set HOME or XDG_CACHE_HOME): %w", err)
	}
	dir := filepath.Join(base, "switchboard-testbin")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	return dir, nil
}

// moduleRoot is the directory of this module's go.mod, found from the
// working directory (a test runs in its package's directory): checkouts of
// the module in two places keep two executables.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s: run the tests inside the switchboard module", dir)
		}
	}
}
