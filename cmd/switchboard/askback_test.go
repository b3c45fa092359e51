package main

import (
	"fmt"
	"os"
	"regexp"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
)

// TestDoctorSaysWhetherRemoteTeamsCanAskBack: a remote team whose sshd
// refuses forwarding still passes, with a warning that says why its Claude
// cannot ask other teams; one whose sshd allows it says so.
func TestDoctorSaysWhetherRemoteTeamsCanAskBack(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: sshd runs in the full test run")
	}
	w := newWorld(t, "web")
	closed := sshdtest.StartWith(t, sshdtest.Options{AllowTcpForwarding: "no"})
	open := sshdtest.StartWith(t, sshdtest.Options{AllowTcpForwarding: "remote"})
	sshConfig := w.root + "/ssh_config"
	var cfg []byte
	for _, s := range []*sshdtest.Server{closed, open} {
		b, err := os.ReadFile(s.SSHConfig)
		if err != nil {
			t.Fatal(err)
		}
		cfg = append(cfg, b...)
	}
	mustWrite(t, sshConfig, string(cfg), 0o600)
	y, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`(?m)^teams:\n`).ReplaceAllString(string(y), fmt.Sprintf("  sshConfig: %s\nteams:\n", sshConfig))
	for name, s := range map[string]*sshdtest.Server{"api": closed, "db": open} {
		text += fmt.Sprintf("  %s:\n    path: %s\n    ssh: %s\n    claudePath: %s\n", name, w.teamDir("web"), s.Alias, w.claude)
	}
	mustWrite(t, w.config, text, 0o600)

	r := w.run("", "doctor")
	for _, pattern := range []string{
		`api\s+ask back\s+WARN: unavailable: .*AllowTcpForwarding.*the team still answers\s+set AllowTcpForwarding remote`,
		`db\s+ask back\s+ok: switchboard's tools reach ` + regexp.QuoteMeta(open.Alias),
	} {
		if !regexp.MustCompile(`(?m)^` + pattern).MatchString(r.stdout) {
			t.Errorf("doctor output has no line matching %q:\n%s\n%s", pattern, r.stdout, r.stderr)
		}
	}
}
