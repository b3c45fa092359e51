package configs

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults for settings left out of the config file (or set to 0).
const (
	DefaultDatabasePath        = "~/.switchboard/switchboard.db"
	DefaultSocket              = "~/.switchboard/broker.sock"
	DefaultSSHConfig           = "~/.ssh/config"
	DefaultResponseTimeout     = 2 * time.Minute
	DefaultSpawnTimeout        = 20 * time.Second
	DefaultSessionInitTimeout  = 30 * time.Second
	DefaultIdleTimeout         = time.Hour
	DefaultTurnTimeout         = 30 * time.Minute
	DefaultMaxProcesses        = 10
	DefaultHealthCheckInterval = 30 * time.Second
	DefaultMaxMessageBytes     = 1 << 20
	DefaultMessageTTL          = 30 * 24 * time.Hour
	DefaultLogLevel            = "info"
	DefaultGrantPermission     = "ask" // as iris
	DefaultPermissionTimeout   = 5 * time.Minute
	DefaultMaxAskDepth         = 4
	DefaultStandby             = 0
	DefaultDashboard           = "" // off
	DefaultLeaseTTL            = 15 * time.Second
	// DefaultClaudeNice is off. Lowered to 10 on a machine that other
	// normal-priority work kept busy (the full test suite), local Claude
	// got so little CPU that its turns missed sessionInitTimeout: asks
	// failed. What it buys is switchboard's own milliseconds under a load
	// of Claude turns (BENCHMARKS.md, section 3), so it stays opt-in.
	DefaultClaudeNice = 0
	// DefaultClaudeBinary is the command a team without claudePath runs,
	// looked up on its host's PATH.
	DefaultClaudeBinary = "claude"
)

// applyDefaults fills what the file left out and puts paths and enums in
// their canonical form. It never fails: anything it cannot fix (a "~" with
// no known home directory) is left for validate to report.
func applyDefaults(c *Config) {
	home, _ := os.UserHomeDir()
	base := ""
	if c.File != "" {
		if abs, err := filepath.Abs(filepath.Dir(c.File)); err == nil {
			base = abs
		}
	}
	local := func(p string) string { return localPath(p, home, base) }

	s := &c.Settings
	if s.Database.Path == "" && s.Database.DSN == "" {
		s.Database.Path = DefaultDatabasePath
	}
	s.Database.Path = local(s.Database.Path)
	s.Socket = local(orString(s.Socket, DefaultSocket))
	s.SSHConfig = local(orString(s.SSHConfig, DefaultSSHConfig))
	orDuration(&s.ResponseTimeout, DefaultResponseTimeout)
	orDuration(&s.SpawnTimeout, DefaultSpawnTimeout)
	orDuration(&s.SessionInitTimeout, DefaultSessionInitTimeout)
	orDuration(&s.IdleTimeout, DefaultIdleTimeout)
	orDuration(&s.TurnTimeout, DefaultTurnTimeout)
	orDuration(&s.HealthCheckInterval, DefaultHealthCheckInterval)
	if s.MaxProcesses == 0 {
		s.MaxProcesses = DefaultMaxProcesses
	}
	if s.MaxMessageBytes == 0 {
		s.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if s.MessageTTL.Duration == 0 && s.TTLDays > 0 {
		s.MessageTTL.Duration = time.Duration(s.TTLDays) * 24 * time.Hour
	}
	orDuration(&s.MessageTTL, DefaultMessageTTL)
	s.LogLevel = orString(strings.ToLower(strings.TrimSpace(s.LogLevel)), DefaultLogLevel)
	orDuration(&s.PermissionTimeout, DefaultPermissionTimeout)
	if s.MaxAskDepth == 0 {
		s.MaxAskDepth = DefaultMaxAskDepth
	}
	s.Dashboard = strings.TrimSpace(s.Dashboard)
	s.Fleet.Name = strings.TrimSpace(s.Fleet.Name)
	if s.Fleet.Name == "" {
		// Left empty when the host has no name; validate says what to do.
		s.Fleet.Name, _ = os.Hostname()
	}
	orDuration(&s.Fleet.LeaseTTL, DefaultLeaseTTL)

	for _, t := range c.Teams {
		t.GrantPermission = orString(yesNo(t.GrantPermission), DefaultGrantPermission)
		t.RemoteOptions.StrictHostKeyChecking = yesNo(t.RemoteOptions.StrictHostKeyChecking)
		// The identity file is read on this machine even for remote teams.
		t.RemoteOptions.Identity = local(t.RemoteOptions.Identity)
		if t.IsRemote() {
			continue // path and claudePath are on the remote host: left as written
		}
		t.Path = local(t.Path)
		// claudePath may be a bare command name found on PATH, so it is
		// only expanded, never resolved against the config directory.
		t.ClaudePath = expandHome(t.ClaudePath, home)
	}
}

// localPath expands a leading ~ and resolves a relative path against the
// config file's directory, as iris does for team paths. An absolute path
// with ".." elements is left as written so validate can refuse it.
func localPath(p, home, base string) string {
	if p == "" {
		return ""
	}
	p = expandHome(p, home)
	switch {
	case filepath.IsAbs(p):
		if !hasDotDot(p) {
			p = filepath.Clean(p)
		}
	case base != "" && !strings.HasPrefix(p, "~"):
		p = filepath.Join(base, p)
	}
	return p
}

// expandHome replaces a leading "~" or "~/" with home. "~user/" is not
// supported and stays as written.
func expandHome(p, home string) string {
	if home == "" {
		return p
	}
	if p == "~" {
		return home
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return p
}

// yesNo lower-cases an enum value and maps iris's booleans onto yes/no.
func yesNo(v string) string {
	switch v = strings.ToLower(strings.TrimSpace(v)); v {
	case "true":
		return "yes"
	case "false":
		return "no"
	}
	return v
}

func orString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func orDuration(d *Duration, def time.Duration) {
	if d.Duration == 0 {
		d.Duration = def
	}
}
