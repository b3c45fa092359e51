package remote

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "ssh user@host", want: []string{"ssh", "user@host"}},
		{in: "  ssh\t-p  22 \n h ", want: []string{"ssh", "-p", "22", "h"}},
		{in: `ssh -i '/a b/key' h`, want: []string{"ssh", "-i", "/a b/key", "h"}},
		{in: `ssh -i "/a \"b\"/\$k" h`, want: []string{"ssh", "-i", `/a "b"/$k`, "h"}},
		{in: `ssh -i /a\ b h`, want: []string{"ssh", "-i", "/a b", "h"}},
		{in: `ssh -o 'User=a'"b"c h`, want: []string{"ssh", "-o", "User=abc", "h"}},
		{in: `ssh ''`, want: []string{"ssh", ""}},
		{in: `ssh "a\nb"`, want: []string{"ssh", `a\nb`}},
		{in: "ssh 'open", err: true},
		{in: `ssh "open`, err: true},
		{in: `ssh a\`, err: true},
	} {
		got, err := splitWords(tc.in)
		if (err != nil) != tc.err || (!tc.err && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("splitWords(%q) = %q, %v; want %q (err %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	me := currentUser()
	sshDir := filepath.Join(home, ".ssh")
	if err := os.MkdirAll(filepath.Join(sshDir, "conf.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	included := `
Host inc
  HostName included.example
  User incuser
`
	if err := os.WriteFile(filepath.Join(sshDir, "conf.d", "extra.conf"), []byte(included), 0o600); err != nil {
		t.Fatal(err)
	}
	// Relative Include paths are resolved by ssh_config against the
	// passwd home, not $HOME, so the test uses an absolute one.
	cfgText := "Include " + filepath.Join(sshDir, "conf.d", "*.conf") + `

Host api-box
  HostName 10.0.0.5
  User deploy
  Port 2222
  IdentityFile ~/.ssh/api_key
  IdentityFile %d/.ssh/second_%r
  IdentitiesOnly yes
  UserKnownHostsFile ~/kh1 ~/kh2
  StrictHostKeyChecking accept-new
  ConnectTimeout 5
  ServerAliveInterval 30
  ServerAliveCountMax 4
  HashKnownHosts yes

Host behind
  HostName 10.1.0.9
  ProxyJump bastion

Host deep
  HostName 10.2.0.1
  ProxyJump behind,ops@gw2:2200

Host bastion
  HostName bastion.example
  User jumper

Host loop
  ProxyJump loop

Host pc
  ProxyCommand nc %h %p

Host pattern-*
  HostName %h.internal
  User pat

Host *
  ServerAliveCountMax 5
`
	cfgPath := filepath.Join(sshDir, "config")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	defIDs := []string{filepath.Join(sshDir, "id_ed25519"), filepath.Join(sshDir, "id_ecdsa"), filepath.Join(sshDir, "id_rsa")}
	defKH := []string{filepath.Join(sshDir, "known_hosts")}
	plain := func(alias, host, user string, port int) Target {
		return Target{Alias: alias, HostName: host, User: user, Port: port, IdentityFiles: defIDs, KnownHostsFiles: defKH,
			StrictHostKeyChecking: StrictYes, ConnectTimeout: 10 * time.Second, ServerAliveInterval: 15 * time.Second, ServerAliveCountMax: 5}
	}
	bastion := plain("bastion", "bastion.example", "jumper", 22)
	behind := plain("behind", "10.1.0.9", me, 22)
	behind.ProxyJump = []Target{bastion}
	behindHop := behind
	behindHop.ProxyJump = nil
	deep := plain("deep", "10.2.0.1", me, 22)
	deep.ProxyJump = []Target{bastion, behindHop, plain("ops@gw2:2200", "gw2", "ops", 2200)}

	apiBox := Target{Alias: "api-box", HostName: "10.0.0.5", User: "deploy", Port: 2222,
		IdentityFiles:   []string{filepath.Join(sshDir, "api_key"), filepath.Join(home, ".ssh", "second_deploy")},
		IdentitiesOnly:  true,
		KnownHostsFiles: []string{filepath.Join(home, "kh1"), filepath.Join(home, "kh2")},
		HashKnownHosts:  true, StrictHostKeyChecking: StrictAcceptNew,
		ConnectTimeout: 5 * time.Second, ServerAliveInterval: 30 * time.Second, ServerAliveCountMax: 4}

	with := func(t Target, f func(*Target)) Target { f(&t); return t }

	for _, tc := range []struct {
		name string
		team Options
		want Target
		err  string
	}{
		{name: "alias", team: Options{SSH: "api-box"}, want: apiBox},
		{name: "alias with user and port", team: Options{SSH: "root@api-box:2200"},
			want: with(apiBox, func(t *Target) {
				t.Alias, t.User, t.Port = "root@api-box:2200", "root", 2200
				t.IdentityFiles = []string{filepath.Join(sshDir, "api_key"), filepath.Join(home, ".ssh", "second_root")} // %r is the remote user
			})},
		{name: "plain host", team: Options{SSH: "other.example"}, want: plain("other.example", "other.example", me, 22)},
		{name: "user@host:port", team: Options{SSH: "bob@10.9.9.9:2022"}, want: plain("bob@10.9.9.9:2022", "10.9.9.9", "bob", 2022)},
		{name: "ipv6", team: Options{SSH: "bob@[::1]:2022"}, want: plain("bob@[::1]:2022", "::1", "bob", 2022)},
		{name: "ssh url", team: Options{SSH: "ssh://bob@h:23"}, want: plain("ssh://bob@h:23", "h", "bob", 23)},
		{name: "include", team: Options{SSH: "inc"}, want: plain("inc", "included.example", "incuser", 22)},
		{name: "pattern with %h", team: Options{SSH: "pattern-db"}, want: plain("pattern-db", "pattern-db.internal", "pat", 22)},
		{name: "jump", team: Options{SSH: "behind"}, want: behind},
		{name: "jump chain", team: Options{SSH: "deep"}, want: deep},
		{name: "iris plain", team: Options{Remote: "ssh deploy@api-box"},
			want: with(apiBox, func(t *Target) { t.Alias = "deploy@api-box" })},
		{name: "iris options", team: Options{Remote: `ssh -p 2022 -i '/keys/my key' -o StrictHostKeyChecking=no -oUser=ignored -l alsoignored -T bob@h`},
			want: with(plain("bob@h", "h", "bob", 2022), func(t *Target) {
				t.IdentityFiles = []string{"/keys/my key"}
				t.StrictHostKeyChecking = StrictNo
			})},
		{name: "iris -o overrides config", team: Options{Remote: "ssh -o Port=7 -o ServerAliveInterval=1 api-box"},
			want: with(apiBox, func(t *Target) { t.Port, t.ServerAliveInterval = 7, time.Second })},
		{name: "iris jump", team: Options{Remote: "ssh -J bastion,ops@gw2:2200 -p 2222 me@target"},
			want: with(plain("me@target", "target", "me", 2222), func(t *Target) {
				t.ProxyJump = []Target{bastion, plain("ops@gw2:2200", "gw2", "ops", 2200)}
			})},
		{name: "iris -J overrides config jump", team: Options{Remote: "ssh -J ops@gw2:2200 behind"},
			want: with(behind, func(t *Target) { t.ProxyJump = []Target{plain("ops@gw2:2200", "gw2", "ops", 2200)} })},
		{name: "remoteOptions override", team: Options{SSH: "api-box",
			Identity: "~/.ssh/team_key", Port: 2201, StrictHostKeyChecking: "true",
			ConnectTimeout: 3 * time.Second, ServerAliveInterval: time.Second,
			ServerAliveCountMax: 9},
			want: with(apiBox, func(t *Target) {
				t.IdentityFiles = append([]string{filepath.Join(sshDir, "team_key")}, t.IdentityFiles...)
				t.Port, t.StrictHostKeyChecking, t.ConnectTimeout, t.ServerAliveInterval, t.ServerAliveCountMax = 2201, StrictYes, 3*time.Second, time.Second, 9
			})},
		{name: "both", team: Options{SSH: "a", Remote: "ssh a"}, err: "both"},
		{name: "neither", team: Options{}, err: "neither"},
		{name: "loop", team: Options{SSH: "loop"}, err: "loop"},
		{name: "proxycommand", team: Options{SSH: "pc"}, err: "ProxyCommand is not supported"},
		{name: "not ssh", team: Options{Remote: "mosh host"}, err: "must start with ssh"},
		{name: "remote command", team: Options{Remote: "ssh host rm -rf /"}, err: "remote command is not allowed"},
		{name: "unsupported option", team: Options{Remote: "ssh -L 1:2:3 host"}, err: "-L is not supported"},
		{name: "missing value", team: Options{Remote: "ssh host -p"}, err: "unexpected"},
		{name: "missing value at end", team: Options{Remote: "ssh -p"}, err: "needs a value"},
		{name: "bad port", team: Options{SSH: "h:99999"}, err: "port"},
		{name: "bad quote", team: Options{Remote: "ssh 'h"}, err: "unterminated"},
		{name: "bad strict", team: Options{SSH: "h", StrictHostKeyChecking: "maybe"}, err: "StrictHostKeyChecking"},
		{name: "no host", team: Options{Remote: "ssh -p 22"}, err: "no destination"},
		{name: "option-looking host", team: Options{SSH: "-oProxyCommand=x"}, err: "not a host name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			team := tc.team
			got, err := Resolve(cfgPath, team)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Resolve = %+v, %v; want error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Resolve =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestResolveWithoutConfigFile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	got, err := Resolve(filepath.Join(home, "missing"), Options{SSH: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Port != 22 || got.User != currentUser() || got.ServerAliveCountMax != 3 || got.KnownHostsFiles[0] != filepath.Join(home, ".ssh", "known_hosts") {
		t.Errorf("defaults: %+v", got)
	}
}

func TestTargetKey(t *testing.T) {
	a := Target{HostName: "h", Port: 22, User: "u"}
	b := a
	b.Alias = "other name"
	c := a
	c.ProxyJump = []Target{{HostName: "j1", Port: 22, User: "x"}, {HostName: "j2", Port: 2, User: "y"}}
	if a.Key() != b.Key() || a.Key() == c.Key() {
		t.Errorf("keys: %q %q %q", a.Key(), b.Key(), c.Key())
	}
	if want := `u@h:22{strict= known_hosts=[] identity=[] only=false} via y@j2:2{strict= known_hosts=[] identity=[] only=false} via x@j1:22{strict= known_hosts=[] identity=[] only=false}`; c.Key() != want {
		t.Errorf("Key = %q, want %q", c.Key(), want)
	}
	// Whatever decides trust or identity gives another connection.
	for name, change := range map[string]func(*Target){
		"known_hosts":    func(t *Target) { t.KnownHostsFiles = []string{"/other/known_hosts"} },
		"strictness":     func(t *Target) { t.StrictHostKeyChecking = StrictAcceptNew },
		"identity":       func(t *Target) { t.IdentityFiles = []string{"/k/id_ed25519"} },
		"identitiesOnly": func(t *Target) { t.IdentitiesOnly = true },
		"user":           func(t *Target) { t.User = "v" },
		"jump trust": func(t *Target) {
			t.ProxyJump = []Target{{HostName: "j1", Port: 22, User: "x", StrictHostKeyChecking: StrictNo}}
		},
	} {
		d := c
		d.ProxyJump = append([]Target(nil), c.ProxyJump...)
		change(&d)
		if d.Key() == c.Key() {
			t.Errorf("changing %s keeps the key %q: two trust policies would share a connection", name, c.Key())
		}
	}
}

func TestShellQuoteThroughShell(t *testing.T) {
	// quoteCommand's "~/" form must expand the home even when it has spaces.
	for _, tc := range []struct{ in, want string }{
		{"~/bin/claude x", "/home dir/bin/claude x"},
		{"/abs/it's", "/abs/it's"},
		{"claude", "claude"},
	} {
		out, err := execShell(`HOME='/home dir'; printf %s ` + quoteCommand(tc.in))
		if err != nil || out != tc.want {
			t.Errorf("quoteCommand(%q) through sh = %q, %v; want %q", tc.in, out, err, tc.want)
		}
	}
}

func execShell(script string) (string, error) {
	out, err := exec.Command("/bin/sh", "-c", script).Output()
	return string(out), err
}
