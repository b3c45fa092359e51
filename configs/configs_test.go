package configs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// setHome points the home directory at a fresh temp dir so ~ expansion is
// predictable.
func setHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	return home
}

func problems(t *testing.T, err error) []string {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error is %T (%v), want *configs.Error", err, err)
	}
	var out []string
	for _, p := range ce.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestInterpolate(t *testing.T) {
	env := map[string]string{"SET": "value", "EMPTY": "", "PORT": "8080"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want string
		missing  []string
	}{
		{"plain", "plain", nil},
		{"${SET}", "value", nil},
		{"a-${SET}-b", "a-value-b", nil},
		{"${UNSET:-fallback}", "fallback", nil},
		{"${SET:-fallback}", "value", nil},
		{"${EMPTY:-fallback}", "fallback", nil}, // shell semantics of :-
		{"${EMPTY}", "", nil},
		{"${UNSET:-}", "", nil},
		{"${UNSET:-a b:c}", "a b:c", nil},
		{"${UNSET:-x}-${PORT:-1}", "x-8080", nil},
		{"${UNSET}", "${UNSET}", []string{"UNSET"}},
		{"${A}${B:-b}${C}", "${A}b${C}", []string{"A", "C"}},
		{"$SET ${ not a ref } ${1X}", "$SET ${ not a ref } ${1X}", nil},
	}
	for _, tt := range tests {
		got, missing := interpolate(tt.in, lookup)
		if got != tt.want || !slices.Equal(missing, tt.missing) {
			t.Errorf("interpolate(%q) = %q, missing %v; want %q, missing %v", tt.in, got, missing, tt.want, tt.missing)
		}
	}
}

func TestInterpolationInYAML(t *testing.T) {
	home := setHome(t)
	t.Setenv("SB_TEAM_DIR", filepath.Join(home, "web"))
	t.Setenv("SB_PROMPT", "colon: and # hash\nnew line")
	t.Setenv("SB_MAX", "")
	c, err := Parse([]byte(`
settings:
  maxProcesses: ${SB_MAX:-7}          # re-resolved as a number
  idleTimeout: ${SB_IDLE:-90000}
teams:
  web:
    path: ${SB_TEAM_DIR}
    appendSystemPrompt: ${SB_PROMPT}  # cannot break the YAML
    description: "${SB_NOT_SET:-quoted default}"
    # a comment naming ${SB_UNDEFINED} is not an error
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	web, _ := c.Team("web")
	if c.Settings.MaxProcesses != 7 || c.Settings.IdleTimeout.Duration != 90*time.Second {
		t.Errorf("settings = %d, %v; want 7, 1m30s", c.Settings.MaxProcesses, c.Settings.IdleTimeout)
	}
	if web.Path != filepath.Join(home, "web") || web.AppendSystemPrompt != "colon: and # hash\nnew line" || web.Description != "quoted default" {
		t.Errorf("team = %+v", web)
	}

	_, err = Parse([]byte("teams:\n  web:\n    path: /x\n    model: ${SB_NO_SUCH_VAR}\n"), "t.yaml")
	want := []string{"t.yaml:4: teams.web.model: environment variable SB_NO_SUCH_VAR is not set (set it, or give a default: ${SB_NO_SUCH_VAR:-value})"}
	if got := problems(t, err); !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		yaml    string
		want    time.Duration
		wantErr string
	}{
		{`d: 90s`, 90 * time.Second, ""},
		{`d: 2m`, 2 * time.Minute, ""},
		{`d: 1h30m`, 90 * time.Minute, ""},
		{`d: 120000`, 2 * time.Minute, ""},
		{`d: "120000"`, 2 * time.Minute, ""},
		{`d: 0`, 0, ""},
		{`d: 1`, time.Millisecond, ""},
		{"\n\nd: -5", 0, "line 3: -5 is negative"},
		{`d: -1s`, 0, "line 1: -1s is negative"},
		{`d: soon`, 0, `line 1: "soon" is not a duration`},
		{`d: 1.5`, 0, `line 1: "1.5" is not a duration`},
		{`d: 10 s`, 0, `line 1: "10 s" is not a duration`},
		{`d: 99999999999999999`, 0, "line 1: 99999999999999999 milliseconds is too long"},
		{"d: [1]", 0, "line 1: want a duration, got a list"},
	}
	for _, tt := range tests {
		var v struct{ D Duration }
		err := yaml.Unmarshal([]byte(tt.yaml), &v)
		if tt.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want prefix %q", tt.yaml, err, tt.wantErr)
			}
			continue
		}
		if err != nil || v.D.Duration != tt.want {
			t.Errorf("%q = %v, %v; want %v", tt.yaml, v.D.Duration, err, tt.want)
		}
	}
}

func TestDurationRoundTrip(t *testing.T) {
	in := struct{ D Duration }{Duration{90 * time.Second}}
	out, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ D Duration }
	if err := yaml.Unmarshal(out, &back); err != nil || back.D != in.D {
		t.Errorf("round trip of %s = %v, %v", out, back.D, err)
	}
}

func TestValidation(t *testing.T) {
	setHome(t)
	const ok = "teams:\n  web:\n    path: /srv/web\n"
	tests := []struct {
		name string
		yaml string
		want []string // every problem, in order
	}{
		{"no teams", "settings:\n  logLevel: info\n", []string{
			"t.yaml:1: teams: no teams are defined (add one under teams:, e.g. web: {path: /home/me/code/web})"}},
		{"empty file", "", []string{
			"t.yaml:1: teams: no teams are defined (add one under teams:, e.g. web: {path: /home/me/code/web})"}},
		{"bad team name", "teams:\n  a/b:\n    path: /x\n", []string{
			`t.yaml:2: teams.a/b: invalid team name "a/b": use only letters, digits, '-', '_' and '.'`}},
		{"dotdot team name", "teams:\n  \"..\":\n    path: /x\n", []string{
			`t.yaml:2: teams...: invalid team name "..": use only letters, digits, '-', '_' and '.', and not just dots`}},
		{"missing path", "teams:\n  web:\n    description: no path\n", []string{
			"t.yaml:2: teams.web.path: is required (the team's project directory)"}},
		{"team with no body", "teams:\n  web:\n", []string{
			"t.yaml:2: teams.web.path: is required (the team's project directory)"}},
		{"local dotdot", "teams:\n  web:\n    path: /srv/../etc\n", []string{
			`t.yaml:3: teams.web.path: "/srv/../etc" contains '..' (write the real directory)`}},
		{"remote relative", "teams:\n  api:\n    ssh: box\n    path: code/api\n", []string{
			`t.yaml:4: teams.api.path: "code/api" is not absolute; a remote team's path must be (write the full path on the remote host, e.g. /home/deploy/api)`}},
		{"remote dotdot", "teams:\n  api:\n    ssh: box\n    path: /srv/../api\n", []string{
			`t.yaml:4: teams.api.path: "/srv/../api" contains '..' (write the real directory)`}},
		{"ssh and remote", "teams:\n  api:\n    path: /srv/api\n    ssh: box\n    remote: ssh box\n", []string{
			"t.yaml:5: teams.api.remote: ssh and remote are both set (keep one; ssh takes a Host alias or user@host[:port])"}},
		{"ssh with options", "teams:\n  api:\n    path: /srv/api\n    ssh: -oProxyCommand=x box\n", []string{
			`t.yaml:4: teams.api.ssh: "-oProxyCommand=x box" is not a host (use a Host alias from ssh_config or user@host[:port]; put options in ~/.ssh/config or remoteOptions)`}},
		{"grantPermission", "teams:\n  web:\n    path: /x\n    grantPermission: maybe\n", []string{
			`t.yaml:4: teams.web.grantPermission: "maybe" is not allowed (use one of yes, no, ask, forward)`}},
		{"strictHostKeyChecking", "teams:\n  api:\n    path: /x\n    ssh: box\n    remoteOptions:\n      strictHostKeyChecking: ask\n", []string{
			`t.yaml:6: teams.api.remoteOptions.strictHostKeyChecking: "ask" is not allowed (use one of yes, no, accept-new)`}},
		{"port", "teams:\n  api:\n    path: /x\n    ssh: box\n    remoteOptions: {port: 70000}\n", []string{
			`t.yaml:5: teams.api.remoteOptions.port: 70000 is not a TCP port (use 1-65535)`}},
		{"httpAddr public", "settings:\n  httpAddr: 0.0.0.0:1615\n" + ok, []string{
			`t.yaml:2: settings.httpAddr: "0.0.0.0:1615" is not a loopback address (use a loopback address such as 127.0.0.1:1615; it is for this machine only)`}},
		{"httpAddr all interfaces", "settings:\n  httpAddr: \":1615\"\n" + ok, []string{
			`t.yaml:2: settings.httpAddr: ":1615" is not a loopback address (use a loopback address such as 127.0.0.1:1615; it is for this machine only)`}},
		{"httpAddr no port", "settings:\n  httpAddr: 127.0.0.1\n" + ok, []string{
			`t.yaml:2: settings.httpAddr: "127.0.0.1" is not host:port (use a loopback address such as 127.0.0.1:1615; it is for this machine only)`}},
		{"maxProcesses", "settings:\n  maxProcesses: -1\n" + ok, []string{
			"t.yaml:2: settings.maxProcesses: is -1, must be at least 1"}},
		{"maxProcesses not a number", "settings:\n  maxProcesses: ten\n" + ok, []string{
			`t.yaml:2: settings.maxProcesses: "ten" is not a whole number (write e.g. 10)`}},
		{"path and dsn", "settings:\n  database:\n    path: /x.db\n    dsn: postgres://localhost/sb\n" + ok, []string{
			"t.yaml:4: settings.database.dsn: database path and dsn are both set (keep one: path for SQLite, dsn for a server)"}},
		{"logLevel", "settings:\n  logLevel: loud\n" + ok, []string{
			`t.yaml:2: settings.logLevel: "loud" is not a log level (use one of debug, info, warn, error)`}},
		{"bad duration", "settings:\n  idleTimeout: -5\n" + ok, []string{
			`t.yaml:2: settings.idleTimeout: -5 is negative (write a duration like "90s" or "2m", or whole milliseconds like 120000)`}},
		{"ttlDays and messageTTL", "settings:\n  messageTTL: 24h\n  ttlDays: 3\n" + ok, []string{
			"t.yaml:3: settings.ttlDays: messageTTL and ttlDays are both set (keep messageTTL)"}},
		{"duplicate team", "teams:\n  web:\n    path: /a\n  web:\n    path: /b\n", []string{
			"t.yaml:4: teams.web: defined twice, first at line 2 (keep one)"}},
		{"settings not a mapping", "settings: fast\n" + ok, []string{
			`t.yaml:1: settings: want a mapping of keys, got "fast" (indent the keys under settings:)`}},
		{"team not a mapping", "teams:\n  web: /srv/web\n", []string{
			`t.yaml:2: teams.web: want a mapping of settings (path:, description:, ...), got "/srv/web"`}},
		{"file not a mapping", "- a\n- b\n", []string{
			"t.yaml:1: the file must be a mapping with settings: and teams:, got a list"}},
		{"env", "teams:\n  web:\n    path: /x\n    env: [A=1]\n", []string{
			`t.yaml:4: teams.web.env: want a mapping of NAME: value, got a list`}},
		{"syntax in a quoted string", "teams:\n  web:\n    path: /x\n    description: \"it's\n      long\"\n    model: \"unterminated\n", []string{
			"t.yaml:6: invalid YAML: found unexpected end of stream (check indentation, and quote values that contain ': ' or start with a special character)"}},
		{"syntax", "teams:\n  web:\n    path: /x\n   bad: indent\n", []string{
			"t.yaml:4: invalid YAML: did not find expected key (check indentation, and quote values that contain ': ' or start with a special character)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "t.yaml")
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", c)
			}
			if got := problems(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	setHome(t)
	_, err := Parse([]byte(`settings:
  maxProcesses: many
  responseTimeout: later
  logLevel: chatty
teams:
  bad/name:
    path: /x
  web:
    grantPermission: maybe
  api:
    ssh: box
    remote: ssh box
    path: relative
`), "cfg.yaml")
	got := problems(t, err)
	want := []string{
		`cfg.yaml:2: settings.maxProcesses: "many" is not a whole number (write e.g. 10)`,
		`cfg.yaml:3: settings.responseTimeout: "later" is not a duration (write a duration like "90s" or "2m", or whole milliseconds like 120000)`,
		`cfg.yaml:4: settings.logLevel: "chatty" is not a log level (use one of debug, info, warn, error)`,
		`cfg.yaml:6: teams.bad/name: invalid team name "bad/name": use only letters, digits, '-', '_' and '.'`,
		`cfg.yaml:8: teams.web.path: is required (the team's project directory)`,
		`cfg.yaml:9: teams.web.grantPermission: "maybe" is not allowed (use one of yes, no, ask, forward)`,
		`cfg.yaml:12: teams.api.remote: ssh and remote are both set (keep one; ssh takes a Host alias or user@host[:port])`,
		`cfg.yaml:13: teams.api.path: "relative" is not absolute; a remote team's path must be (write the full path on the remote host, e.g. /home/deploy/api)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestRelativePathNeedsFile(t *testing.T) {
	setHome(t)
	_, err := Parse([]byte("teams:\n  web:\n    path: code/web\n"), "")
	want := []string{`line 3: teams.web.path: "code/web" is not an absolute path (write it from /)`}
	if got := problems(t, err); !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

func TestDefaults(t *testing.T) {
	home := setHome(t)
	c, err := Parse([]byte("teams:\n  web:\n    path: /srv/web/\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Settings
	checks := []struct {
		name      string
		got, want any
	}{
		{"database.path", s.Database.Path, filepath.Join(home, ".switchboard", "switchboard.db")},
		{"socket", s.Socket, filepath.Join(home, ".switchboard", "broker.sock")},
		{"sshConfig", s.SSHConfig, filepath.Join(home, ".ssh", "config")},
		{"httpAddr", s.HTTPAddr, ""},
		{"responseTimeout", s.ResponseTimeout.Duration, 2 * time.Minute},
		{"spawnTimeout", s.SpawnTimeout.Duration, 20 * time.Second},
		{"sessionInitTimeout", s.SessionInitTimeout.Duration, 30 * time.Second},
		{"idleTimeout", s.IdleTimeout.Duration, time.Hour},
		{"maxProcesses", s.MaxProcesses, 10},
		{"healthCheckInterval", s.HealthCheckInterval.Duration, 30 * time.Second},
		{"maxMessageBytes", s.MaxMessageBytes, 1 << 20},
		{"messageTTL", s.MessageTTL.Duration, 30 * 24 * time.Hour},
		{"logLevel", s.LogLevel, "info"},
		{"team path cleaned", c.Teams["web"].Path, "/srv/web"},
		{"grantPermission", c.Teams["web"].GrantPermission, "ask"},
		{"team name", c.Teams["web"].Name, "web"},
		{"team line", c.Teams["web"].Line, 2},
		{"file", c.File, "t.yaml"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings = %v", c.Warnings)
	}
}

func TestDSNLeavesNoDatabasePath(t *testing.T) {
	setHome(t)
	c, err := Parse([]byte("settings:\n  database: {dsn: \"postgres://localhost/sb\"}\nteams:\n  web: {path: /w}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Settings.Database.Path != "" || c.Settings.Database.DSN != "postgres://localhost/sb" {
		t.Errorf("database = %+v", c.Settings.Database)
	}
}

func TestPathsLocalAndRemote(t *testing.T) {
	home := setHome(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "switchboard.yaml")
	c, err := Parse([]byte(`settings:
  database: {path: data/sb.db}
  socket: ~/sb.sock
teams:
  here:
    path: ~/code/here
    claudePath: ~/bin/claude
  rel:
    path: ./rel
    claudePath: claude
  up:
    path: ../up
  there:
    ssh: box
    path: /srv/there
    claudePath: ~/.local/bin/claude
    remoteOptions: {identity: ~/.ssh/id_ed25519}
`), file)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"database relative to config dir", c.Settings.Database.Path, filepath.Join(dir, "data", "sb.db")},
		{"socket ~", c.Settings.Socket, filepath.Join(home, "sb.sock")},
		{"local path ~", c.Teams["here"].Path, filepath.Join(home, "code", "here")},
		{"local claudePath ~", c.Teams["here"].ClaudePath, filepath.Join(home, "bin", "claude")},
		{"relative path from config dir (iris)", c.Teams["rel"].Path, filepath.Join(dir, "rel")},
		{"bare claudePath stays a command name", c.Teams["rel"].ClaudePath, "claude"},
		{"../ from config dir (iris)", c.Teams["up"].Path, filepath.Join(filepath.Dir(dir), "up")},
		{"remote path as written", c.Teams["there"].Path, "/srv/there"},
		{"remote claudePath keeps ~", c.Teams["there"].ClaudePath, "~/.local/bin/claude"},
		{"identity is local", c.Teams["there"].RemoteOptions.Identity, filepath.Join(home, ".ssh", "id_ed25519")},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %q, want %q", ck.name, ck.got, ck.want)
		}
	}
}

func TestIrisCompat(t *testing.T) {
	home := setHome(t)
	t.Setenv("IRIS_MAX_PROCESSES", "4")
	c, err := Load("testdata/iris-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("testdata")
	if want := []string{"team-alpha", "team-beta", "team-inanna", "team-iris"}; !slices.Equal(c.TeamNames(), want) {
		t.Errorf("TeamNames = %v, want %v", c.TeamNames(), want)
	}
	s := c.Settings
	if s.SessionInitTimeout.Duration != 30*time.Second || s.ResponseTimeout.Duration != 2*time.Minute ||
		s.IdleTimeout.Duration != time.Hour || s.HealthCheckInterval.Duration != 30*time.Second || s.MaxProcesses != 4 {
		t.Errorf("settings = %+v", s)
	}
	// iris's top-level database belongs to iris; switchboard keeps its own.
	if want := filepath.Join(home, ".switchboard", "switchboard.db"); s.Database.Path != want {
		t.Errorf("database.path = %q, want %q", s.Database.Path, want)
	}
	alpha, _ := c.Team("team-alpha")
	if alpha.Path != filepath.Join(dir, "teams", "team-alpha") || alpha.GrantPermission != "yes" ||
		alpha.EffectiveIdleTimeout(s) != 10*time.Minute {
		t.Errorf("team-alpha = %+v", alpha)
	}
	beta, _ := c.Team("team-beta")
	if beta.Path != filepath.Join(filepath.Dir(dir), "projects", "beta") || beta.EffectiveSessionInitTimeout(s) != 45*time.Second ||
		beta.EffectiveIdleTimeout(s) != time.Hour || beta.AllowedTools != "mcp__iris__team_tell,Read" {
		t.Errorf("team-beta = %+v", beta)
	}
	irisTeam, _ := c.Team("team-iris")
	if irisTeam.GrantPermission != "ask" || irisTeam.IsRemote() {
		t.Errorf("team-iris = %+v (iris's default grantPermission is ask)", irisTeam)
	}
	inanna, _ := c.Team("team-inanna")
	ro := inanna.RemoteOptions
	if !inanna.IsRemote() || inanna.Remote != "ssh inanna" || inanna.ClaudePath != "~/.local/bin/claude" || inanna.Path != "/opt/containers" ||
		ro.Port != 2222 || ro.StrictHostKeyChecking != "no" || ro.ConnectTimeout.Duration != 10*time.Second ||
		ro.ServerAliveInterval.Duration != 30*time.Second || ro.ServerAliveCountMax != 3 ||
		ro.Identity != filepath.Join(home, ".ssh", "id_ed25519") {
		t.Errorf("team-inanna = %+v", inanna)
	}
	// Mapped: dashboard: {host, http} and defaultTransport: http.
	if s.Dashboard != "localhost:3100" || s.HTTPAddr != "127.0.0.1:1615" {
		t.Errorf("dashboard, httpAddr = %q, %q; want localhost:3100, 127.0.0.1:1615 from iris's dashboard and httpPort", s.Dashboard, s.HTTPAddr)
	}
	// Accepted quietly (switchboard does it anyway): hotReloadConfig,
	// enableReverseMcp: true. Warned once each: the rest.
	var got []string
	for _, w := range c.Warnings {
		got = append(got, strings.TrimPrefix(w.String(), c.File))
	}
	want := []string{
		":14: settings.wonderLoggerConfig: is not read; switchboard logs through log/slog (set settings.logLevel, or --log-level and --log-format) (iris-mcp key)",
		":25: database: is iris's own session database; switchboard keeps its own store (settings.database, by default ~/.switchboard/switchboard.db) (iris-mcp key)",
		":33: teams.team-iris.skipPermissions: is not read; switchboard never skips Claude's permission checks (use grantPermission: yes to allow every tool) (iris-mcp key)",
		":34: teams.team-iris.color: is not used; switchboard shows no team colours (iris-mcp key; also at line 41, 50, 67)",
		":58: teams.team-inanna.reverseMcpPort: is not used; switchboard forwards its tools over the team's SSH connection and picks the port itself (iris-mcp key)",
		":66: teams.team-inanna.remoteOptions.compression: is not supported by switchboard's SSH client, ignored (iris-mcp key)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestTTLDays(t *testing.T) {
	setHome(t)
	c, err := Parse([]byte("settings:\n  ttlDays: 3\nteams:\n  web: {path: /w}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Settings.MessageTTL.Duration != 72*time.Hour {
		t.Errorf("messageTTL = %v, want 72h", c.Settings.MessageTTL)
	}
}

func TestUnknownKeysWarn(t *testing.T) {
	setHome(t)
	c, err := Parse([]byte(`settings:
  httpPort: 1615
  maxProcess: 3
teams:
  web:
    path: /w
    color: "#fff"
    descripton: typo
    remoteOptions:
      passphrase: hunter2
      compression: true
extra: 1
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, w.String())
	}
	want := []string{
		"t.yaml:3: settings.maxProcess: unknown key, ignored (did you mean maxProcesses?)",
		"t.yaml:7: teams.web.color: is not used; switchboard shows no team colours (iris-mcp key)",
		"t.yaml:8: teams.web.descripton: unknown key, ignored (did you mean description?)",
		"t.yaml:10: teams.web.remoteOptions.passphrase: passphrases are not read from config, ignored (load the key into ssh-agent with ssh-add)",
		"t.yaml:11: teams.web.remoteOptions.compression: is not supported by switchboard's SSH client, ignored (iris-mcp key)",
		"t.yaml:12: extra: unknown key, ignored",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestMergeKeys(t *testing.T) {
	setHome(t)
	c, err := Parse([]byte(`x-defaults: &defaults
  grantPermission: "no"
  idleTimeout: 5m
teams:
  a:
    <<: *defaults
    path: /a
  b:
    <<: *defaults
    path: /b
    grantPermission: yes
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Teams["a"]; a.GrantPermission != "no" || a.IdleTimeout.Duration != 5*time.Minute {
		t.Errorf("a = %+v", a)
	}
	if b := c.Teams["b"]; b.GrantPermission != "yes" || b.IdleTimeout.Duration != 5*time.Minute {
		t.Errorf("b = %+v", b)
	}
}

func TestExamples(t *testing.T) {
	setHome(t)
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples = %v, %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			// The iris example keeps iris's keys; only those may warn.
			for _, w := range c.Warnings {
				if filepath.Base(f) != "iris-compat.yaml" || !strings.Contains(w.Msg, "(iris-mcp key") {
					t.Errorf("warning %s", w)
				}
			}
			if len(c.Teams) == 0 {
				t.Errorf("no teams")
			}
		})
	}
}

func TestValidTeamName(t *testing.T) {
	for _, name := range []string{"web", "api-v2", "a_b", "team.alpha", "A1", "x"} {
		if err := ValidTeamName(name); err != nil {
			t.Errorf("ValidTeamName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "a/b", `a\b`, "a b", "web\n", "café", "a;rm", "$(x)"} {
		if err := ValidTeamName(name); err == nil {
			t.Errorf("ValidTeamName(%q) accepted it", name)
		}
	}
	if err := ValidTeamName("a/b"); err == nil || err.Error() != `invalid team name "a/b": use only letters, digits, '-', '_' and '.'` {
		t.Errorf("error text = %v", err)
	}
}

func TestDiscover(t *testing.T) {
	home := setHome(t)
	cwd := t.TempDir()
	t.Chdir(cwd)
	t.Setenv(EnvConfig, "")
	write := func(p string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("teams: {}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	_, err := Discover("")
	if err == nil || !strings.Contains(err.Error(), "./switchboard.yaml, "+filepath.Join(home, ".switchboard", "config.yaml")) {
		t.Fatalf("with no file: %v", err)
	}

	homeCfg := write(filepath.Join(home, ".switchboard", "config.yaml"))
	if got, err := Discover(""); err != nil || got != homeCfg {
		t.Errorf("home: got %q, %v; want %q", got, err, homeCfg)
	}
	write(filepath.Join(cwd, "switchboard.yaml"))
	if got, err := Discover(""); err != nil || got != "switchboard.yaml" {
		t.Errorf("cwd: got %q, %v; want switchboard.yaml", got, err)
	}
	envCfg := write(filepath.Join(t.TempDir(), "env.yaml"))
	t.Setenv(EnvConfig, envCfg)
	if got, err := Discover(""); err != nil || got != envCfg {
		t.Errorf("env: got %q, %v; want %q", got, err, envCfg)
	}
	flagCfg := write(filepath.Join(home, "flag.yaml"))
	if got, err := Discover("~/flag.yaml"); err != nil || got != flagCfg {
		t.Errorf("flag: got %q, %v; want %q", got, err, flagCfg)
	}

	// A file named explicitly must exist; the search does not fall through.
	if _, err := Discover(filepath.Join(home, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "(from --config) does not exist") {
		t.Errorf("missing flag file: %v", err)
	}
	t.Setenv(EnvConfig, filepath.Join(home, "gone.yaml"))
	if _, err := Discover(""); err == nil || !strings.Contains(err.Error(), "(from $SWITCHBOARD_CONFIG) does not exist") {
		t.Errorf("missing env file: %v", err)
	}
	if _, err := Discover(home); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func TestLevel(t *testing.T) {
	for in, want := range map[string]string{"debug": "DEBUG", "warn": "WARN", "error": "ERROR", "": "INFO"} {
		if got := (Settings{LogLevel: in}).Level().String(); got != want {
			t.Errorf("Level(%q) = %s, want %s", in, got, want)
		}
	}
}
