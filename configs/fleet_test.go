package configs

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestFleetDefaults(t *testing.T) {
	setHome(t)
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Skipf("this machine has no host name to default to: %v", err)
	}
	c, err := Parse([]byte("teams:\n  web: {path: /w}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Settings.Fleet; f.Name != host || f.LeaseTTL.Duration != 15*time.Second {
		t.Errorf("fleet = %+v, want name %q (the host name) and leaseTTL 15s", f, host)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings = %v, want none for a config without fleet settings", c.Warnings)
	}
}

func TestFleetSettings(t *testing.T) {
	setHome(t)
	env := map[string]string{"PGPASSWORD": "s3cret", "PGHOST": "db.example"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := parse([]byte(`settings:
  database:
    dsn: postgres://switchboard:${PGPASSWORD}@${PGHOST}/switchboard
  fleet:
    name: laptop
    leaseTTL: 4s
teams:
  web: {path: /w}
`), "t.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Settings
	if s.Database.DSN != "postgres://switchboard:s3cret@db.example/switchboard" || s.Database.Path != "" {
		t.Errorf("database = %+v, want the dsn expanded and no path", s.Database)
	}
	if s.Fleet.Name != "laptop" || s.Fleet.LeaseTTL.Duration != 4*time.Second {
		t.Errorf("fleet = %+v, want laptop, 4s", s.Fleet)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings = %v, want none", c.Warnings)
	}
}

func TestFleetRefused(t *testing.T) {
	setHome(t)
	const pw = "s3cret-pw"
	env := map[string]string{"PGPASSWORD": pw}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name, settings string
		want           []string
	}{
		{"unset variable in dsn", "database:\n    dsn: postgres://sb:${PGPASS}@db/sb",
			[]string{"t.yaml:3: settings.database.dsn: environment variable PGPASS is not set"}},
		{"not postgres", "database:\n    dsn: mysql://sb:${PGPASSWORD}@db/sb",
			[]string{"t.yaml:3: settings.database.dsn: must start with postgres:// or postgresql://"}},
		{"bad name", "database: {dsn: \"postgres://db/sb\"}\n  fleet: {name: \"my laptop\"}",
			[]string{`t.yaml:3: settings.fleet.name: invalid broker name "my laptop"`}},
		{"short lease", "database: {dsn: \"postgres://db/sb\"}\n  fleet:\n    leaseTTL: 500ms",
			[]string{"t.yaml:4: settings.fleet.leaseTTL: is 500ms, must be at least 1s"}},
		{"negative lease", "fleet:\n    leaseTTL: -3s",
			[]string{"t.yaml:3: settings.fleet.leaseTTL: -3s is negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse([]byte("settings:\n  "+tc.settings+"\nteams:\n  web: {path: /w}\n"), "t.yaml", lookup)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("parse = %v, want a config error", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error\n%v\nwant it to contain\n%s", err, want)
				}
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestFleetWithoutPostgresWarns(t *testing.T) {
	setHome(t)
	c, err := Parse([]byte("settings:\n  database: {path: /tmp/sb.db}\n  fleet:\n    name: laptop\nteams:\n  web: {path: /w}\n"), "t.yaml")
	if err != nil {
		t.Fatalf("fleet settings without a dsn refused: %v; want a warning only", err)
	}
	want := "t.yaml:3: settings.fleet: has no effect without a Postgres store"
	if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0].String(), want) {
		t.Errorf("warnings = %v, want one starting %q", c.Warnings, want)
	}
}

// A host name that cannot name a broker only matters in a fleet: on SQLite
// the defaulted name is never used, and must not refuse the config.
func TestFleetNameCheckedOnlyWhenShared(t *testing.T) {
	setHome(t)
	c := &Config{File: "t.yaml", lines: map[string]int{}, Teams: map[string]*Team{"web": {Name: "web", Path: "/w"}}}
	applyDefaults(c)
	c.Settings.Fleet.Name = "bad host"
	if ps := validate(c); len(ps) != 0 {
		t.Errorf("SQLite config with an unusable host name: problems %v, want none", ps)
	}
	c.Settings.Database = Database{DSN: "postgres://db/sb"}
	ps := validate(c)
	if len(ps) != 1 || ps[0].Key != "settings.fleet.name" || !strings.Contains(ps[0].Msg, `invalid broker name "bad host"`) {
		t.Errorf("Postgres config with an unusable host name: problems %v, want one on settings.fleet.name", ps)
	}
}
