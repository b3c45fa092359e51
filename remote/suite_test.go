package remote

import (
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
	"github.com/switchboard-mcp/switchboard/proc/proctest"
)

// The shared runner suite, the one local.Runner passes, against the
// in-process SSH server and against Debian's real sshd.
func TestRunnerSuite(t *testing.T) {
	t.Run("in-process", func(t *testing.T) {
		srv := newTestServer(t)
		pool := NewPool(nil)
		t.Cleanup(func() { pool.Close() })
		proctest.Run(t, proctest.Harness{Runner: pool.Runner(srv.target(t)), TempDir: t.TempDir, ShellPath: "/bin/sh"})
	})
	t.Run("real-sshd", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short: the real sshd runs in the full test run")
		}
		srv := sshdtest.Start(t)
		target, err := Resolve(srv.SSHConfig, Options{SSH: srv.Alias})
		if err != nil {
			t.Fatal(err)
		}
		pool := NewPool(nil)
		t.Cleanup(func() { pool.Close() })
		proctest.Run(t, proctest.Harness{Runner: pool.Runner(target), TempDir: t.TempDir, ShellPath: "/bin/sh"})
	})
}
