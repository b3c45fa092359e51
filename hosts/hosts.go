// Package hosts hands the broker the runner for a team: this machine's for
// local teams, and for remote teams an SSH runner on the one connection
// shared by every team on that host.
package hosts

import (
	"fmt"
	"sync"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/proc"
	"github.com/switchboard-mcp/switchboard/remote"
)

// Runners implements broker.Runners.
type Runners struct {
	local     proc.Runner
	pool      *remote.Pool
	sshConfig string

	mu      sync.Mutex
	targets map[*configs.Team]*remote.Runner
}

// New returns Runners that use local for local teams and pool for remote
// ones, resolving SSH hosts through the ssh_config file at sshConfig.
func New(local proc.Runner, pool *remote.Pool, sshConfig string) *Runners {
	return &Runners{local: local, pool: pool, sshConfig: sshConfig, targets: make(map[*configs.Team]*remote.Runner)}
}

// For returns the runner for team t. Remote targets are resolved once per
// team; the pool shares one connection per resolved host.
func (r *Runners) For(t *configs.Team) (proc.Runner, error) {
	if !t.IsRemote() {
		return r.local, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if run, ok := r.targets[t]; ok {
		return run, nil
	}
	target, err := remote.Resolve(r.sshConfig, t)
	if err != nil {
		return nil, fmt.Errorf("resolve SSH host for team %s: %w", t.Name, err)
	}
	run := r.pool.Runner(target)
	r.targets[t] = run
	return run, nil
}

// Close closes every SSH connection.
func (r *Runners) Close() error { return r.pool.Close() }
