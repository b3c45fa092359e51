package configs

import (
	"strings"
	"time"
)

// Config is a loaded, interpolated, defaulted and validated configuration.
type Config struct {
	Settings Settings         `yaml:"settings"`
	Teams    map[string]*Team `yaml:"teams"`

	// File is the path the config was loaded from ("" when built in code).
	File string `yaml:"-"`

	// Warnings are keys that were accepted but ignored (unknown or
	// iris-only), so `switchboard doctor` can show them.
	Warnings []Problem `yaml:"-"`

	// lines maps a dotted key ("teams.api.path") to its line in File, so
	// validation can point at the line that is wrong.
	lines map[string]int
}

// Settings are broker-wide knobs. Durations accept Go durations ("90s") or
// integer milliseconds (iris style).
type Settings struct {
	Database           Database `yaml:"database"`
	Socket             string   `yaml:"socket"`
	HTTPAddr           string   `yaml:"httpAddr"`
	SSHConfig          string   `yaml:"sshConfig"`
	ResponseTimeout    Duration `yaml:"responseTimeout"`
	SpawnTimeout       Duration `yaml:"spawnTimeout"`
	SessionInitTimeout Duration `yaml:"sessionInitTimeout"`
	IdleTimeout        Duration `yaml:"idleTimeout"`
	// TurnTimeout bounds one answer inside Claude (default 30m); a waiting
	// caller gives up sooner (responseTimeout) without stopping the turn.
	TurnTimeout         Duration `yaml:"turnTimeout"`
	MaxProcesses        int      `yaml:"maxProcesses"`
	HealthCheckInterval Duration `yaml:"healthCheckInterval"`
	// MaxMessageBytes bounds one message's text (default 1 MiB).
	MaxMessageBytes int `yaml:"maxMessageBytes"`
	// MessageTTL is how long a queued message waits for an unreachable team
	// before it expires (default 30 days; iris's ttlDays is accepted too).
	MessageTTL Duration `yaml:"messageTTL"`
	// TTLDays is the iris spelling of MessageTTL, in whole days.
	TTLDays int `yaml:"ttlDays"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"logLevel"`

	// PermissionTimeout is how long a tool-permission request waits for an
	// answer before it is denied (default 5m).
	PermissionTimeout Duration `yaml:"permissionTimeout"`
	// MaxAskDepth bounds a chain of teams asking teams (default 4, >= 1).
	MaxAskDepth int `yaml:"maxAskDepth"`
	// Standby is how many Claude processes each team keeps started ahead of
	// need (default 0); a team's own standby overrides it.
	Standby int `yaml:"standby"`
	// ClaudeNice is how much lower than the broker's the CPU priority of
	// local teams' Claude processes is (nice(1)'s -n, 0 to 19; default
	// DefaultClaudeNice, 0 is off), so that on a busy machine the broker's
	// short bursts of work run at once instead of queueing behind Claude
	// turns. It applies to processes started after it changes.
	ClaudeNice int `yaml:"claudeNice"`
	// Dashboard is the loopback host:port of the web dashboard; "" is off.
	Dashboard string `yaml:"dashboard"`
	// Fleet names this broker among the brokers sharing a Postgres store;
	// without a Postgres dsn it has no effect.
	Fleet Fleet `yaml:"fleet"`
}

// Fleet is this broker's part in a fleet: several brokers, each on its own
// machine with its own teams, sharing one Postgres store.
type Fleet struct {
	// Name is this broker's name in the fleet (default: the host name);
	// two live brokers cannot share one.
	Name string `yaml:"name"`
	// LeaseTTL is how long a pair stays with a broker that stopped
	// heartbeating before another may take it over (default 15s); the
	// heartbeat runs every LeaseTTL/3.
	LeaseTTL Duration `yaml:"leaseTTL"`
}

// Database selects the store: a SQLite file (Path) or a DSN such as postgres://.
type Database struct {
	Path string `yaml:"path"`
	// DSN is a postgres:// URL; ${VAR} in it is expanded at load, so the
	// password can come from the environment (or a libpq service file:
	// postgres:///?service=name). It carries the password: show it only
	// through models.RedactDSN.
	DSN string `yaml:"dsn"`
}

// IsPostgres reports whether the store is a Postgres server, which several
// brokers can share.
func (d Database) IsPostgres() bool {
	return strings.HasPrefix(d.DSN, "postgres://") || strings.HasPrefix(d.DSN, "postgresql://")
}

// Team is one project directory that can be asked questions.
type Team struct {
	// Name is the key under teams:, filled in by Load.
	Name        string `yaml:"-"`
	Path        string `yaml:"path"`
	Description string `yaml:"description"`

	// SSH is a Host alias from ssh_config or user@host[:port]. Remote is the
	// iris form ("ssh -J jump -p 22 user@host"). At most one is set.
	SSH           string        `yaml:"ssh"`
	Remote        string        `yaml:"remote"`
	RemoteOptions RemoteOptions `yaml:"remoteOptions"`

	ClaudePath           string            `yaml:"claudePath"`
	Env                  map[string]string `yaml:"env"`
	GrantPermission      string            `yaml:"grantPermission"` // yes | no | ask | forward (default ask, as iris)
	AppendSystemPrompt   string            `yaml:"appendSystemPrompt"`
	AllowedTools         string            `yaml:"allowedTools"`
	DisallowedTools      string            `yaml:"disallowedTools"`
	MCPConfig            string            `yaml:"mcpConfig"`
	PermissionPromptTool string            `yaml:"permissionPromptTool"`
	Model                string            `yaml:"model"`
	IdleTimeout          Duration          `yaml:"idleTimeout"`
	SessionInitTimeout   Duration          `yaml:"sessionInitTimeout"`

	// Line is where the team is defined in File, for error messages.
	Line int `yaml:"-"`

	// Standby overrides settings.standby for this team when set.
	Standby *int `yaml:"standby"`
}

// IsRemote reports whether the team lives on another host.
func (t *Team) IsRemote() bool { return t.SSH != "" || t.Remote != "" }

// RemoteOptions override ssh_config per team (iris names).
type RemoteOptions struct {
	Identity              string   `yaml:"identity"`
	Port                  int      `yaml:"port"`
	StrictHostKeyChecking string   `yaml:"strictHostKeyChecking"` // yes | no | accept-new (iris booleans true/false become yes/no)
	ConnectTimeout        Duration `yaml:"connectTimeout"`
	ServerAliveInterval   Duration `yaml:"serverAliveInterval"`
	ServerAliveCountMax   int      `yaml:"serverAliveCountMax"`
}

// Duration is a time.Duration that unmarshals from "90s" or from integer
// milliseconds.
type Duration struct{ time.Duration }
