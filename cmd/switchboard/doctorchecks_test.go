package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/remote"
)

// doctor asks each team's Claude whether it is logged in, and says an ssh
// alias is unknown (once, without blaming the team's path too).
func TestDoctorCredentialsAndUnknownAlias(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	needsRealClaude(t)
	w := newWorld(t, "web")
	has := func(r result, pattern string) {
		t.Helper()
		if !regexp.MustCompile(`(?m)^` + pattern).MatchString(r.stdout) {
			t.Errorf("doctor output has no line matching %q:\n%s", pattern, r.stdout)
		}
	}
	r := w.run("", "doctor")
	has(r, `web\s+credentials\s+ok: logged in: api_key from ANTHROPIC_API_KEY`)

	var noKey []string
	for _, kv := range w.env {
		if !strings.HasPrefix(kv, "ANTHROPIC_API_KEY=") {
			noKey = append(noKey, kv)
		}
	}
	r = w.runIn(w.root, noKey, "", "doctor")
	if r.code != 1 {
		t.Errorf("doctor without credentials: exit %d\n%s", r.code, r.stdout)
	}
	has(r, `web\s+credentials\s+FAIL: Claude Code is not logged in\s+run .claude. in `+regexp.QuoteMeta(w.teamDir("web"))+` once and log in \(/login\), or set ANTHROPIC_API_KEY in teams\.web\.env`)

	cfg, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w.config, string(cfg)+fmt.Sprintf("  far:\n    path: /srv/far\n    ssh: nosuchalias\n"), 0o600)
	r = w.run("", "doctor")
	has(r, `far\s+ssh\s+FAIL: SSH host alias "nosuchalias" is unknown: no .Host nosuchalias. in \S+, and it does not resolve\s+add .Host nosuchalias.`)
	if regexp.MustCompile(`(?m)^far\s+path`).MatchString(r.stdout) || strings.Contains(r.stdout, "no SSH key") {
		t.Errorf("doctor blames more than the unknown alias:\n%s", r.stdout)
	}
}

func TestSSHFixPerFailure(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	team := &configs.Team{Name: "far", SSH: "me@far"}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&remote.HostKeyError{Host: "far:22"}, "accept the host key"},
		{&remote.HostKeyError{Host: "far:22", File: "/k", Line: 3}, "recorded at /k:3"},
		{errors.New("no SSH key to log in to me@far:22: ..."), "ssh-keygen"},
		{errors.New("ssh: handshake failed: ssh: unable to authenticate"), "refused your keys"},
		{errors.New("dial tcp: lookup far: no such host"), "does not resolve"},
		{errors.New("connect to far:22: connection refused"), "start sshd"},
		{errors.New("dial tcp 10.0.0.1:22: i/o timeout"), "did not answer"},
		{errors.New("something else"), "ssh me@far true"},
	} {
		if got := sshFix(team, "me@far", tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("sshFix(%v) = %q, want %q in it", tc.err, got, tc.want)
		}
	}
}
