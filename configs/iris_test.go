package configs

import (
	"slices"
	"strings"
	"testing"
)

func TestIrisKeysMapped(t *testing.T) {
	setHome(t)
	tests := []struct {
		name, yaml               string
		dashboard, httpAddr, rem string
		warnings                 []string
	}{
		{name: "dashboard http", yaml: "dashboard: {enabled: true, host: localhost, http: 3100, https: 0}\n", dashboard: "localhost:3100"},
		{name: "dashboard defaults host", yaml: "dashboard: {http: 3200}\n", dashboard: "localhost:3200"},
		{name: "dashboard disabled", yaml: "dashboard: {enabled: false, http: 3100}\n"},
		{name: "dashboard https only", yaml: "dashboard: {host: 127.0.0.1, https: 3100, selfsigned: true}\n", dashboard: "127.0.0.1:3100",
			warnings: []string{"t.yaml:1: dashboard.https: is not supported; switchboard's dashboard serves plain HTTP on loopback, at http://127.0.0.1:3100 (iris-mcp key)"}},
		{name: "dashboard on every interface", yaml: "dashboard: {host: 0.0.0.0, http: 3100}\n",
			warnings: []string{`t.yaml:1: dashboard.host: "0.0.0.0:3100" is not a loopback address, so the dashboard stays off: it can approve tool use and listens on loopback only (set settings.dashboard: 127.0.0.1:3100, and use an SSH tunnel to reach it) (iris-mcp key)`}},
		{name: "settings.dashboard wins", yaml: "settings: {dashboard: 127.0.0.1:9}\ndashboard: {http: 3100}\n", dashboard: "127.0.0.1:9"},
		{name: "http transport", yaml: "settings: {httpPort: 1700, defaultTransport: http}\n", httpAddr: "127.0.0.1:1700"},
		{name: "stdio transport", yaml: "settings: {httpPort: 1700, defaultTransport: stdio, hotReloadConfig: false, sessionMcpEnabled: true}\n"},
		{name: "reverse mcp on", yaml: "x: 1\n", rem: "ssh -p 22 box"},
		{name: "extraSshArgs", yaml: "x: 1\n", rem: "ssh '-o' 'ProxyJump=bastion it'\\''s' -p 22 box"},
		{name: "reverse mcp off", yaml: "x: 1\n", rem: "ssh -p 22 box",
			warnings: []string{"t.yaml:6: teams.api.enableReverseMcp: false is ignored: every team's Claude can ask other teams through switchboard (to stop one, add mcp__switchboard to its disallowedTools) (iris-mcp key)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(tc.yaml, "x: 1\n", "", 1) + "teams:\n  web: {path: /w}\n"
			if tc.rem != "" {
				src += "  api:\n    remote: ssh -p 22 box\n    path: /srv/api\n"
				switch tc.name {
				case "reverse mcp on":
					src += "    enableReverseMcp: true\n    ssh2: true\n"
				case "reverse mcp off":
					src += "    enableReverseMcp: false\n"
				case "extraSshArgs":
					src += "    remoteOptions: {extraSshArgs: [-o, \"ProxyJump=bastion it's\"]}\n"
				}
			}
			c, err := Parse([]byte(src), "t.yaml")
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			if c.Settings.Dashboard != tc.dashboard || c.Settings.HTTPAddr != tc.httpAddr {
				t.Errorf("dashboard, httpAddr = %q, %q; want %q, %q", c.Settings.Dashboard, c.Settings.HTTPAddr, tc.dashboard, tc.httpAddr)
			}
			if tc.rem != "" && c.Teams["api"].Remote != tc.rem {
				t.Errorf("remote = %q, want %q", c.Teams["api"].Remote, tc.rem)
			}
			var got []string
			for _, w := range c.Warnings {
				got = append(got, w.String())
			}
			if !slices.Equal(got, tc.warnings) {
				t.Errorf("warnings:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.warnings, "\n  "))
			}
		})
	}
}

func TestIrisExtraSSHArgsNeedRemote(t *testing.T) {
	setHome(t)
	c, err := Parse([]byte("teams:\n  api:\n    ssh: box\n    path: /srv\n    remoteOptions:\n      extraSshArgs: [-v]\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := "t.yaml:6: teams.api.remoteOptions.extraSshArgs: applies only to an iris remote: command line, ignored (put ssh options for box in your ssh_config)"
	if len(c.Warnings) != 1 || c.Warnings[0].String() != want {
		t.Errorf("warnings = %v, want %s", c.Warnings, want)
	}
}
