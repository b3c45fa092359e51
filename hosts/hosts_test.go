package hosts

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/hosts/claudepath"
	"github.com/switchboard-mcp/switchboard/local"
	"github.com/switchboard-mcp/switchboard/remote"
)

func TestLocalTeam(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "real dir")
	link := filepath.Join(root, "link")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	hs := New(Options{Local: local.New(local.Options{}), LocalConfigDir: "/cfg"})
	for _, tc := range []struct {
		name string
		team configs.Team
		file string
		fork string
	}{
		{"host config dir, resolved path", configs.Team{Name: "a", Path: link},
			claudepath.SessionFile("/cfg", real, "s1"), "cd " + remote.ShellWord(link) + " && claude --resume s1 --fork-session"},
		{"team config dir wins", configs.Team{Name: "b", Path: real, ClaudePath: "~/bin/claude", Env: map[string]string{"CLAUDE_CONFIG_DIR": "/team"}},
			claudepath.SessionFile("/team", real, "s1"), "cd " + remote.ShellWord(real) + " && ~/bin/claude --resume s1 --fork-session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm, err := hs.For(&tc.team)
			if err != nil {
				t.Fatal(err)
			}
			if tm.Where() != "local" || tm.Ping(context.Background()) != nil {
				t.Errorf("where %q", tm.Where())
			}
			if f, err := tm.SessionFile(context.Background(), "s1"); err != nil || f != tc.file {
				t.Errorf("session file %q, %v; want %q", f, err, tc.file)
			}
			if got := tm.ForkCommand("s1"); got != tc.fork {
				t.Errorf("fork %q; want %q", got, tc.fork)
			}
		})
	}
}

func TestRemoteTeamFork(t *testing.T) {
	hs := New(Options{Pool: remote.NewPool(nil), SSHConfig: filepath.Join(t.TempDir(), "none")})
	t.Cleanup(func() { hs.Close() })
	for _, tc := range []struct {
		team configs.Team
		fork string
	}{
		{configs.Team{Name: "a", Path: "/srv/api", SSH: "bob@box"}, `ssh -t bob@box 'cd /srv/api && claude --resume s1 --fork-session'`},
		{configs.Team{Name: "b", Path: "/srv/api", Remote: "ssh -p 2222 bob@box"}, `ssh -t -p 2222 bob@box 'cd /srv/api && claude --resume s1 --fork-session'`},
	} {
		tm, err := hs.For(&tc.team)
		if err != nil {
			t.Fatal(err)
		}
		if got := tm.ForkCommand("s1"); got != tc.fork {
			t.Errorf("fork %q; want %q", got, tc.fork)
		}
	}
	bad := configs.Team{Name: "c", Path: "/x", Remote: "mosh box"}
	tm, err := hs.For(&bad)
	if err == nil || tm == nil || tm.Where() != "mosh box" {
		t.Errorf("unresolvable host: %v, %v", tm, err)
	}
}
