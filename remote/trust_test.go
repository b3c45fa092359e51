package remote_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
	"github.com/switchboard-mcp/switchboard/proc"
	"github.com/switchboard-mcp/switchboard/remote"
)

// After a team with accept-new connected to a host, a team whose
// known_hosts holds another key, or revokes the host's key, is refused on
// the same host through the same pool: the shared connection must not
// bypass its policy.
func TestPoolNeverSharesAcrossTrustPolicies(t *testing.T) {
	s := sshdtest.Start(t)
	other := sshdtest.Start(t)
	real, err := os.ReadFile(s.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	otherLines, err := os.ReadFile(other.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Another server's key under this server's host and port.
	wrong := write("wrong", strings.Replace(string(otherLines), fmt.Sprintf(":%d]", other.Port), fmt.Sprintf(":%d]", s.Port), 1))
	revoked := write("revoked", "@revoked "+string(real))
	lenient := filepath.Join(dir, "accept-new")

	pool := newPool(t)
	a := resolve(t, s, remote.Options{})
	a.StrictHostKeyChecking, a.KnownHostsFiles = remote.StrictAcceptNew, []string{lenient}
	if out, err := runIt(t, pool.Runner(a), proc.Spec{Dir: "/", Command: "echo", Args: []string{"ok"}}, ""); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("accept-new team: %q %v", out, err)
	}
	for name, file := range map[string]string{"different key": wrong, "revoked key": revoked} {
		t.Run(name, func(t *testing.T) {
			b := resolve(t, s, remote.Options{})
			b.StrictHostKeyChecking, b.KnownHostsFiles = remote.StrictYes, []string{file}
			out, err := runIt(t, pool.Runner(b), proc.Spec{Dir: "/", Command: "echo", Args: []string{"ok"}}, "")
			var hk *remote.HostKeyError
			if !errors.As(err, &hk) {
				t.Fatalf("team trusting only %s ran over the shared connection: %q, err %v; want a host key refusal", file, out, err)
			}
		})
	}
}
