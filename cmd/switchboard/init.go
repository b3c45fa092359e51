package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/configs"
)

func (a *app) initCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Write a starter switchboard.yaml for this directory",
		Long: "Write ./switchboard.yaml with this directory as its one team (named after the directory) and comments\n" +
			"on the settings most people change. It never overwrites an existing file.",
		Args: args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			wd, err := os.Getwd()
			if err != nil {
				return fmt.Errorf("find the working directory: %w", err)
			}
			return a.writeStarter(wd)
		},
	}
}

var unsafeTeamChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// starterTeam names a team after its directory, in the characters a team
// name may have.
func starterTeam(dir string) string {
	name := strings.Trim(unsafeTeamChars.ReplaceAllString(filepath.Base(dir), "-"), "-.")
	if name == "" || configs.ValidTeamName(name) != nil {
		return "main"
	}
	return name
}

func (a *app) writeStarter(dir string) error {
	path := filepath.Join(dir, "switchboard.yaml")
	team := starterTeam(dir)
	body := fmt.Sprintf(`# switchboard config: the teams (project directories) whose Claude Code can
# be asked questions. See https://github.com/switchboard-mcp/switchboard.
settings:
  # One daemon serves one config. Give each config its own socket to run
  # two daemons side by side.
  # socket: ~/.switchboard/broker.sock
  # database: { path: ~/.switchboard/switchboard.db }
  responseTimeout: 2m   # how long send_message waits for an answer
  # idleTimeout: 1h     # idle Claude processes are stopped
  # maxProcesses: 10    # the least recently used idle process goes first
  # httpAddr: 127.0.0.1:1615  # streamable-HTTP MCP; clients need the token (switchboard mcp --http)
teams:
  %s:
    path: %s
    description: the %s project
  # another:
  #   path: /home/me/code/another
  #   description: what it knows about
  # remote:
  #   path: /srv/api
  #   ssh: api-box        # a Host in ~/.ssh/config, or user@host:port
`, team, dir, team)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; edit it, or remove it to start over", path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = fmt.Fprintf(a.stdout, "wrote %s with team %q; check it with: switchboard doctor\n", path, team)
	return err
}
