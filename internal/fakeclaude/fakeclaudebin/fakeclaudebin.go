// Package fakeclaudebin builds the fake Claude Code (internal/fakeclaude)
// for tests in any package of the module.
package fakeclaudebin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

const pkg = "github.com/switchboard-mcp/switchboard/internal/fakeclaude"

var (
	once     sync.Once
	binary   []byte
	errBuild error
)

// Build returns the path of a fake `claude` executable in a directory of its
// own under t.TempDir(), so the directory can also go first on a PATH. The
// fake is compiled once per test binary and copied for each caller.
func Build(t testing.TB) string {
	t.Helper()
	once.Do(func() { binary, errBuild = build() })
	if errBuild != nil {
		t.Fatalf("build fake claude: %v", errBuild)
	}
	path := filepath.Join(t.TempDir(), "claude")
	// A child forked while the file is open for writing would inherit the
	// descriptor until it execs, and exec of the fake would then fail with
	// "text file busy"; holding ForkLock keeps forks out meanwhile.
	syscall.ForkLock.RLock()
	err := os.WriteFile(path, binary, 0o700)
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatalf("write fake claude: %v", err)
	}
	return path
}

// build compiles the fake into a scratch directory and returns its bytes,
// keeping nothing on disk that would outlive the test binary.
func build() ([]byte, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir, err := os.MkdirTemp("", "fakeclaude")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "claude")
	cmd := exec.Command(goTool, "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return os.ReadFile(out)
}
