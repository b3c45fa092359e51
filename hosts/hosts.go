// Package hosts owns where a team lives: this machine, or another host over
// SSH on the one connection shared by every team there. It hands the broker
// one Team per configured team, which knows how to start Claude there, where
// Claude keeps the team's session files, and how a person opens a session.
package hosts

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/hosts/claudepath"
	"github.com/switchboard-mcp/switchboard/proc"
	"github.com/switchboard-mcp/switchboard/remote"
)

// Options are what New needs.
type Options struct {
	// Local runs this machine's teams.
	Local proc.Runner
	// Pool holds the SSH connections of remote teams; nil when no team is remote.
	Pool *remote.Pool
	// SSHConfig is the ssh_config file remote hosts are resolved through.
	SSHConfig string
	// LocalConfigDir is CLAUDE_CONFIG_DIR as local Claude processes see it
	// ("" means ~/.claude).
	LocalConfigDir string
	// CredentialDir is a directory on this machine, private to its user
	// (the daemon's), for the 0600 files carrying local Claude processes'
	// session credentials; "" means ~/.switchboard/run.
	CredentialDir string
	// RemoteCredentialDir is the same for remote hosts, reached over SFTP
	// ("~/" is the remote user's home); "" means ~/.switchboard/run.
	RemoteCredentialDir string
}

// Hosts hands out the Team for each configured team.
type Hosts struct {
	opts Options

	mu    sync.Mutex
	teams map[*configs.Team]*Team

	mcp mcpServer
}

// New returns Hosts over opts.
func New(opts Options) *Hosts {
	if opts.CredentialDir == "" {
		opts.CredentialDir = DefaultCredentialDir
	}
	if opts.RemoteCredentialDir == "" {
		opts.RemoteCredentialDir = DefaultCredentialDir
	}
	return &Hosts{opts: opts, teams: make(map[*configs.Team]*Team)}
}

// For returns where team t lives. Remote targets are resolved once per team;
// the pool shares one connection per resolved host. When a remote host cannot
// be resolved, For returns the error together with a Team that still names
// the host for people (Where) and fails everything else.
func (h *Hosts) For(t *configs.Team) (*Team, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if tm, ok := h.teams[t]; ok {
		return tm, tm.err
	}
	tm := &Team{team: t, bin: t.ClaudePath, hosts: h}
	if tm.bin == "" {
		tm.bin = configs.DefaultClaudeBinary
	}
	if !t.IsRemote() {
		tm.Runner, tm.configDir = h.opts.Local, h.opts.LocalConfigDir
	} else {
		tm.remote = true
		tm.dest = t.SSH
		if tm.dest == "" {
			tm.dest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t.Remote), "ssh"))
		}
		target, err := remote.Resolve(h.opts.SSHConfig, remoteOptions(t))
		if err != nil {
			tm.err = fmt.Errorf("resolve SSH host for team %s: %w", t.Name, err)
			tm.Runner = unresolved{where: tm.dest, err: tm.err}
			// Not cached: a fixed ssh_config is picked up on the next call.
			return tm, tm.err
		}
		tm.Runner = h.opts.Pool.Runner(target)
	}
	h.teams[t] = tm
	return tm, nil
}

// Close closes every SSH connection.
func (h *Hosts) Close() error {
	h.closeMCP()
	if h.opts.Pool == nil {
		return nil
	}
	return h.opts.Pool.Close()
}

func remoteOptions(t *configs.Team) remote.Options {
	o := t.RemoteOptions
	return remote.Options{
		SSH: t.SSH, Remote: t.Remote,
		Identity: o.Identity, Port: o.Port, StrictHostKeyChecking: o.StrictHostKeyChecking,
		ConnectTimeout: o.ConnectTimeout.Duration, ServerAliveInterval: o.ServerAliveInterval.Duration,
		ServerAliveCountMax: o.ServerAliveCountMax,
	}
}

// Team is one team's host: its runner, plus what depends on where it is.
type Team struct {
	proc.Runner
	team      *configs.Team
	bin       string // the claude command
	remote    bool
	dest      string // the SSH destination as the user wrote it, for ssh -t
	configDir string // CLAUDE_CONFIG_DIR of this host's processes, "" = ~/.claude
	err       error
	hosts     *Hosts
}

// pinger is what a runner offers when it can check its host cheaply.
type pinger interface {
	Ping(ctx context.Context) error
}

// Ping checks that the team's host answers; this machine always does.
func (tm *Team) Ping(ctx context.Context) error {
	if p, ok := tm.Runner.(pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Claude is the command that runs Claude Code for the team.
func (tm *Team) Claude() string { return tm.bin }

// SessionFile is where Claude Code keeps the transcript of sessionID on the
// team's host: under the team's CLAUDE_CONFIG_DIR, else the host's (local
// only), else ~/.claude, in the folder named after the team's resolved path.
func (tm *Team) SessionFile(ctx context.Context, sessionID string) (string, error) {
	if tm.err != nil {
		return "", tm.err
	}
	home, err := tm.Files().Home(ctx)
	if err != nil {
		return "", fmt.Errorf("find home directory on %s: %w", tm.Where(), err)
	}
	dir := tm.team.Env["CLAUDE_CONFIG_DIR"]
	if dir == "" {
		dir = tm.configDir
	}
	if dir == "" {
		dir = path.Join(home, ".claude")
	}
	if strings.HasPrefix(dir, "~/") {
		dir = path.Join(home, dir[2:])
	}
	cwd := tm.team.Path
	if !tm.remote {
		// Claude names the project folder after its resolved working directory.
		if real, err := filepath.EvalSymlinks(cwd); err == nil {
			cwd = real
		}
	}
	return claudepath.SessionFile(dir, cwd, sessionID), nil
}

// ForkCommand is the shell command line that opens sessionID interactively
// in a terminal, as a fork so the broker's session is left alone; for a
// remote team it goes through ssh -t.
func (tm *Team) ForkCommand(sessionID string) string {
	cmd := "cd " + remote.ShellWord(tm.team.Path) + " && " + remote.ShellWord(tm.bin) + " --resume " + sessionID + " --fork-session"
	if !tm.remote {
		return cmd
	}
	if tm.team.SSH == "" {
		// The iris form keeps its options (-J, -p) as written.
		return "ssh -t " + tm.dest + " " + remote.ShellWord(cmd)
	}
	return "ssh -t " + remote.ShellWord(tm.dest) + " " + remote.ShellWord(cmd)
}

// unresolved is the runner of a remote team whose host could not be resolved.
type unresolved struct {
	where string
	err   error
}

func (u unresolved) Start(context.Context, proc.Spec) (proc.Process, error) { return nil, u.err }
func (u unresolved) Files() proc.Files                                      { return unresolvedFiles(u) }
func (u unresolved) Where() string                                          { return u.where }

type unresolvedFiles unresolved

func (u unresolvedFiles) Stat(context.Context, string) (fs.FileInfo, error) { return nil, u.err }
func (u unresolvedFiles) ReadFile(context.Context, string) ([]byte, error)  { return nil, u.err }
func (u unresolvedFiles) Remove(context.Context, string) error              { return u.err }
func (u unresolvedFiles) WriteFile(context.Context, string, []byte) error   { return u.err }
func (u unresolvedFiles) Home(context.Context) (string, error)              { return "", u.err }
