package configs

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAddedSettingsDefaults(t *testing.T) {
	setHome(t)
	c, err := Parse([]byte("teams:\n  web: {path: /w}\n  api: {path: /a, standby: 2}\n  db: {path: /d, standby: 0}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Settings
	if s.PermissionTimeout.Duration != 5*time.Minute || s.MaxAskDepth != 4 || s.Standby != 0 || s.Dashboard != "" || s.ClaudeNice != 0 {
		t.Errorf("settings = permissionTimeout %v, maxAskDepth %d, standby %d, dashboard %q, claudeNice %d; want 5m, 4, 0, off, 0",
			s.PermissionTimeout, s.MaxAskDepth, s.Standby, s.Dashboard, s.ClaudeNice)
	}
	for team, want := range map[string]int{"web": 0, "api": 2, "db": 0} {
		if got := c.Teams[team].EffectiveStandby(s); got != want {
			t.Errorf("%s standby = %d, want %d", team, got, want)
		}
	}
}

func TestAddedSettingsSet(t *testing.T) {
	setHome(t)
	c, err := Parse([]byte(`settings:
  permissionTimeout: 90s
  maxAskDepth: 1
  standby: 1
  dashboard: 127.0.0.1:3100
  claudeNice: 7
teams:
  web: {path: /w}
  api: {path: /a, standby: 0}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Settings
	if s.PermissionTimeout.Duration != 90*time.Second || s.MaxAskDepth != 1 || s.Dashboard != "127.0.0.1:3100" || s.ClaudeNice != 7 {
		t.Errorf("settings = %+v", s)
	}
	if c.Teams["web"].EffectiveStandby(s) != 1 || c.Teams["api"].EffectiveStandby(s) != 0 {
		t.Errorf("standby web, api = %d, %d; want 1 (inherited), 0 (its own)", c.Teams["web"].EffectiveStandby(s), c.Teams["api"].EffectiveStandby(s))
	}
}

func TestAddedSettingsRefused(t *testing.T) {
	setHome(t)
	tests := []struct {
		name, settings, team string
		want                 []string
	}{
		{"negative timeout", "permissionTimeout: -1s", "", []string{"t.yaml:2: settings.permissionTimeout: -1s is negative"}},
		{"ask depth", "maxAskDepth: -1", "", []string{"t.yaml:2: settings.maxAskDepth: is -1, must be at least 1"}},
		{"standby", "standby: -2", "", []string{"t.yaml:2: settings.standby: is -2, must not be negative"}},
		{"claudeNice negative", "claudeNice: -5", "", []string{"t.yaml:2: settings.claudeNice: is -5, must be from 0 (off) to 19"}},
		{"claudeNice too high", "claudeNice: 20", "", []string{"t.yaml:2: settings.claudeNice: is 20, must be from 0 (off) to 19"}},
		{"team standby", "", ", standby: -1", []string{"t.yaml:5: teams.web.standby: is -1, must not be negative"}},
		{"dashboard everywhere", "dashboard: 0.0.0.0:3100", "", []string{`t.yaml:2: settings.dashboard: "0.0.0.0:3100" is not a loopback address (the dashboard can approve tool use, so it listens on loopback only`}},
		{"dashboard LAN", "dashboard: 192.168.1.2:80", "", []string{`t.yaml:2: settings.dashboard: "192.168.1.2:80" is not a loopback address`}},
		{"dashboard no port", "dashboard: localhost", "", []string{`t.yaml:2: settings.dashboard: "localhost" is not host:port`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			settings := "  {}"
			if tc.settings != "" {
				settings = "  " + tc.settings
			}
			src := "settings:\n" + settings + "\nteams:\n" + "  x: {path: /x}\n" + "  web: {path: /w" + tc.team + "}\n"
			if tc.settings == "" {
				src = "settings: {}\n\nteams:\n  x: {path: /x}\n  web: {path: /w" + tc.team + "}\n"
			}
			_, err := Parse([]byte(src), "t.yaml")
			if err == nil {
				t.Fatalf("accepted:\n%s", src)
			}
			got := problems(t, err)
			if len(got) != len(tc.want) || !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, tc.want[0]) }) {
				t.Errorf("problems:\n  %s\nwant one starting:\n  %s", strings.Join(got, "\n  "), tc.want[0])
			}
		})
	}
}

func TestSharedPathWarns(t *testing.T) {
	setHome(t)
	c, err := Parse([]byte(`teams:
  web:
    path: /code/web
  www:
    path: /code/web/
  api:
    ssh: box
    path: /code/web
  api2:
    ssh: box
    path: /code/web
  other: {path: /code/other}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, w.String())
	}
	want := []string{
		"t.yaml:11: teams.api2.path: teams api and api2 both use /code/web (their sessions would share one directory and its files; give each team its own path)",
		"t.yaml:5: teams.www.path: teams web and www both use /code/web (their sessions would share one directory and its files; give each team its own path)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
