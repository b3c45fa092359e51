package broker

import (
	"context"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/proc"
)

// Host is where one team lives, as the wiring (package hosts) hands it out.
// The broker routes through it and never asks whether a team is remote.
type Host interface {
	// Runner starts the team's Claude and reaches its files; Where names the
	// host for people ("local" or the SSH destination).
	proc.Runner
	// Ping checks cheaply that the host answers; nil at once for this machine.
	Ping(ctx context.Context) error
	// Claude is the command that runs Claude Code for the team.
	Claude() string
	// SessionFile is the path on the host of the transcript Claude Code
	// keeps for sessionID, with the team's CLAUDE_CONFIG_DIR and resolved
	// project directory accounted for.
	SessionFile(ctx context.Context, sessionID string) (string, error)
	// ForkCommand is a shell command line a person runs in a terminal to open
	// sessionID interactively as a fork, reaching the host as needed.
	ForkCommand(sessionID string) string
}

// Hosts places teams. For returns the team's Host, or an error when its host
// cannot be resolved; with the error it may still return a Host whose Where
// names the location for people, and nothing else on it is used.
type Hosts interface {
	For(team *configs.Team) (Host, error)
}

// HostsFunc adapts a function to Hosts.
type HostsFunc func(team *configs.Team) (Host, error)

// For calls f.
func (f HostsFunc) For(team *configs.Team) (Host, error) { return f(team) }
