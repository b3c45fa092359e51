package remote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// iris's remote: "ssh -F file host" uses that file as the team's ssh_config
// instead of settings.sshConfig, as ssh(1) does.
func TestResolveRemoteWithF(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	write := func(name, text string) string {
		p := filepath.Join(home, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	global := write("global_config", "Host box\n  HostName global.example\n  User globaluser\n")
	teamCfg := write("team_config", "Host box\n  HostName team.example\n  User teamuser\n  Port 2200\n")

	tests := []struct {
		name, remote string
		host, user   string
		port         int
		err          string
	}{
		{name: "global config", remote: "ssh box", host: "global.example", user: "globaluser", port: 22},
		{name: "-F file", remote: "ssh -F " + teamCfg + " box", host: "team.example", user: "teamuser", port: 2200},
		{name: "-Ffile", remote: "ssh -F" + teamCfg + " box", host: "team.example", user: "teamuser", port: 2200},
		{name: "-F under home", remote: "ssh -F ~/team_config box", host: "team.example", user: "teamuser", port: 2200},
		{name: "-p beats -F", remote: "ssh -F " + teamCfg + " -p 2300 box", host: "team.example", user: "teamuser", port: 2300},
		{name: "quoted path", remote: "ssh -F '" + teamCfg + "' -l other box", host: "team.example", user: "other", port: 2200},
		{name: "missing file", remote: "ssh -F " + filepath.Join(home, "nope") + " box", err: "no such file"},
		{name: "relative file", remote: "ssh -F team_config box", err: "absolute path"},
		{name: "no value", remote: "ssh box -F", err: "after the destination"},
		{name: "no value at end", remote: "ssh -F", err: "-F needs a value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(global, Options{Remote: tc.remote})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Resolve(%q) = %+v, %v; want an error containing %q", tc.remote, got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.HostName != tc.host || got.User != tc.user || got.Port != tc.port {
				t.Errorf("Resolve(%q) = %s@%s:%d; want %s@%s:%d", tc.remote, got.User, got.HostName, got.Port, tc.user, tc.host, tc.port)
			}
		})
	}
}
