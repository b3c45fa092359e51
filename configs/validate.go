package configs

import (
	"errors"
	"fmt"
	"net"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxSocketPath is the longest unix socket path every supported OS accepts
// (sun_path is 104 bytes on macOS and the BSDs, 108 on Linux, NUL included).
const maxSocketPath = 103

var (
	grantPermissions = []string{"yes", "no", "ask", "forward"}
	hostKeyChecking  = []string{"yes", "no", "accept-new"}
	logLevels        = []string{"debug", "info", "warn", "error"}
)

// ValidTeamName reports whether name can name a team: ASCII letters, digits,
// '-', '_' and '.', and not "." or "..". Team names become parts of file
// paths and database keys, so anything else is refused.
func ValidTeamName(name string) error {
	const rule = "use only letters, digits, '-', '_' and '.'"
	if name == "" {
		return errors.New("team name is empty: " + rule)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("invalid team name %q: %s, and not just dots", name, rule)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("invalid team name %q: %s", name, rule)
		}
	}
	return nil
}

// validator collects every problem in a defaulted config.
type validator struct {
	c        *Config
	problems []Problem
}

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, Problem{File: v.c.File, Line: v.c.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// validate checks a config after applyDefaults and returns every problem.
func validate(c *Config) []Problem {
	v := &validator{c: c}
	s := &c.Settings

	if s.Database.Path != "" && s.Database.DSN != "" {
		v.add("settings.database.dsn", "database path and dsn are both set (keep one: path for SQLite, dsn for a server)")
	}
	if s.Database.DSN == "" {
		v.localAbs("settings.database.path", s.Database.Path)
	} else if !s.Database.IsPostgres() {
		// Not the dsn itself in the message: it may hold a password.
		v.add("settings.database.dsn", "must start with postgres:// or postgresql:// (use path: for SQLite)")
	}
	// The fleet name matters only on a shared store; a single-machine
	// config must not fail over the host's name.
	if s.Database.IsPostgres() || c.has("settings.fleet.name") {
		v.fleetName(s.Fleet.Name)
	}
	if s.Fleet.LeaseTTL.Duration < minLeaseTTL {
		v.add("settings.fleet.leaseTTL", "is %v, must be at least %v (the default is %v)", s.Fleet.LeaseTTL.Duration, minLeaseTTL, DefaultLeaseTTL)
	}
	v.localAbs("settings.socket", s.Socket)
	if len(s.Socket) > maxSocketPath {
		v.add("settings.socket", "%q is %d bytes, longer than a unix socket path may be (use a path of at most %d bytes)", s.Socket, len(s.Socket), maxSocketPath)
	}
	if s.HTTPAddr != "" {
		if err := loopbackAddr(s.HTTPAddr); err != nil {
			v.add("settings.httpAddr", "%v (use a loopback address such as 127.0.0.1:1615; it is for this machine only)", err)
		}
	}
	v.localAbs("settings.sshConfig", s.SSHConfig)
	if s.MaxProcesses < 1 {
		v.add("settings.maxProcesses", "is %d, must be at least 1", s.MaxProcesses)
	}
	if s.MaxMessageBytes < 1 {
		v.add("settings.maxMessageBytes", "is %d, must be at least 1 (the default is %d)", s.MaxMessageBytes, DefaultMaxMessageBytes)
	}
	if s.TTLDays < 0 {
		v.add("settings.ttlDays", "is %d, must not be negative", s.TTLDays)
	}
	if s.TTLDays != 0 && c.has("settings.messageTTL") {
		v.add("settings.ttlDays", "messageTTL and ttlDays are both set (keep messageTTL)")
	}
	if !slices.Contains(logLevels, s.LogLevel) {
		v.add("settings.logLevel", "%q is not a log level (use one of %s)", s.LogLevel, strings.Join(logLevels, ", "))
	}
	if s.PermissionTimeout.Duration < 0 {
		v.add("settings.permissionTimeout", "is %v, must not be negative (the default is %v)", s.PermissionTimeout.Duration, DefaultPermissionTimeout)
	}
	if s.MaxAskDepth < 1 {
		v.add("settings.maxAskDepth", "is %d, must be at least 1 (the default is %d)", s.MaxAskDepth, DefaultMaxAskDepth)
	}
	if s.Standby < 0 {
		v.add("settings.standby", "is %d, must not be negative", s.Standby)
	}
	if s.ClaudeNice < 0 || s.ClaudeNice > 19 {
		v.add("settings.claudeNice", "is %d, must be from 0 (off) to 19 (the lowest CPU priority; the default is %d)", s.ClaudeNice, DefaultClaudeNice)
	}
	if s.Dashboard != "" {
		if err := loopbackAddr(s.Dashboard); err != nil {
			v.add("settings.dashboard", "%v (the dashboard can approve tool use, so it listens on loopback only: use e.g. 127.0.0.1:3100, and an SSH tunnel to reach it from elsewhere)", err)
		}
	}

	if len(c.Teams) == 0 {
		v.add("teams", "no teams are defined (add one under teams:, e.g. web: {path: /home/me/code/web})")
	}
	for _, name := range c.TeamNames() {
		v.team(name, c.Teams[name])
	}
	return v.problems
}

// minLeaseTTL keeps the heartbeat (every leaseTTL/3) from turning into
// load on the database.
const minLeaseTTL = time.Second

func (v *validator) fleetName(name string) {
	if err := ValidTeamName(name); err != nil {
		what := strings.Replace(err.Error(), "team name", "broker name", 1)
		if name == "" {
			what = "the host has no name to default to"
		}
		v.add("settings.fleet.name", "%s (set settings.fleet.name to a name of letters, digits, '-', '_' and '.', unique in the fleet)", what)
	}
}

// fleetWarnings warns about fleet settings that have no effect: a fleet
// needs a shared (Postgres) store.
func fleetWarnings(c *Config) []Problem {
	if !c.has("settings.fleet") || c.Settings.Database.IsPostgres() {
		return nil
	}
	return []Problem{{File: c.File, Line: c.line("settings.fleet"), Key: "settings.fleet",
		Msg: "has no effect without a Postgres store (brokers share work only through settings.database.dsn: postgres://...; remove settings.fleet, or set the dsn)"}}
}

func (v *validator) team(name string, t *Team) {
	key := "teams." + name
	if err := ValidTeamName(name); err != nil {
		v.add(key, "%v", err)
	}
	if t.Standby != nil && *t.Standby < 0 {
		v.add(key+".standby", "is %d, must not be negative", *t.Standby)
	}
	if t.SSH != "" && t.Remote != "" {
		v.add(key+".remote", "ssh and remote are both set (keep one; ssh takes a Host alias or user@host[:port])")
	}
	if t.SSH != "" && (strings.ContainsAny(t.SSH, " \t\r\n") || strings.HasPrefix(t.SSH, "-")) {
		v.add(key+".ssh", "%q is not a host (use a Host alias from ssh_config or user@host[:port]; put options in ~/.ssh/config or remoteOptions)", t.SSH)
	}
	switch {
	case t.Path == "":
		v.add(key+".path", "is required (the team's project directory)")
	case t.IsRemote():
		if !path.IsAbs(t.Path) {
			v.add(key+".path", "%q is not absolute; a remote team's path must be (write the full path on the remote host, e.g. /home/deploy/api)", t.Path)
		} else if hasDotDot(t.Path) {
			v.add(key+".path", "%q contains '..' (write the real directory)", t.Path)
		}
	default:
		if hasDotDot(t.Path) {
			v.add(key+".path", "%q contains '..' (write the real directory)", t.Path)
		} else {
			v.localAbs(key+".path", t.Path)
		}
	}
	if !slices.Contains(grantPermissions, t.GrantPermission) {
		v.add(key+".grantPermission", "%q is not allowed (use one of %s)", t.GrantPermission, strings.Join(grantPermissions, ", "))
	}
	for k := range t.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			v.add(key+".env", "%q is not a valid environment variable name (use NAME: value)", k)
		}
	}

	ro := t.RemoteOptions
	rkey := key + ".remoteOptions"
	if ro.StrictHostKeyChecking != "" && !slices.Contains(hostKeyChecking, ro.StrictHostKeyChecking) {
		v.add(rkey+".strictHostKeyChecking", "%q is not allowed (use one of %s)", ro.StrictHostKeyChecking, strings.Join(hostKeyChecking, ", "))
	}
	if ro.Port < 0 || ro.Port > 65535 {
		v.add(rkey+".port", "%d is not a TCP port (use 1-65535)", ro.Port)
	}
	if ro.ServerAliveCountMax < 0 {
		v.add(rkey+".serverAliveCountMax", "is %d, must not be negative", ro.ServerAliveCountMax)
	}
	if ro.Identity != "" {
		v.localAbs(rkey+".identity", ro.Identity)
	}
}

// localAbs reports a path on this machine that defaults could not make
// absolute.
func (v *validator) localAbs(key, p string) {
	switch {
	case filepath.IsAbs(p):
	case strings.HasPrefix(p, "~"):
		v.add(key, "%q: cannot expand ~ because the home directory is unknown (set $HOME or write an absolute path)", p)
	default:
		v.add(key, "%q is not an absolute path (write it from /)", p)
	}
}

// loopbackAddr checks that addr is host:port on a loopback interface: the
// HTTP endpoint and the dashboard speak plain HTTP with a bearer token, so
// they must not be reachable from other machines.
func loopbackAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has no valid port", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address", addr)
	}
	return nil
}

// hasDotDot reports whether p has a ".." element, in either separator.
func hasDotDot(p string) bool {
	return slices.Contains(strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == filepath.Separator }), "..")
}
