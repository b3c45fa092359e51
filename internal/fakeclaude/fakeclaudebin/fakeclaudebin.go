// Package fakeclaudebin builds the fake Claude Code (internal/fakeclaude)
// for tests in any package of the module.
package fakeclaudebin

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/testbin"
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

// build compiles the fake (see internal/testbin: a fake unchanged since
// the last test run is not linked again) and returns its bytes.
func build() ([]byte, error) {
	return testbin.Build(pkg)
}
