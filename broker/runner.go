package broker

import (
	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/proc"
)

// Runners hands the broker the runner for a team's host. The wiring in
// cmd/switchboard decides between local and remote; the broker never knows.
type Runners interface {
	For(team *configs.Team) (proc.Runner, error)
}
