package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/hosts"
	"github.com/switchboard-mcp/switchboard/proc"
	"github.com/switchboard-mcp/switchboard/remote"
)

// authStatus is what `claude auth status` (Claude Code 2.1) prints as JSON.
type authStatus struct {
	LoggedIn     bool   `json:"loggedIn"`
	AuthMethod   string `json:"authMethod"`
	APIKeySource string `json:"apiKeySource"`
}

// checkCredentials asks the team's Claude, on its host and with its env,
// whether it can log in to the API, the way Claude Code reports it itself.
func checkCredentials(ctx context.Context, h *hosts.Team, t *configs.Team) check {
	p, err := h.Start(ctx, proc.Spec{Dir: t.Path, Command: h.Claude(), Args: []string{"auth", "status", "--json"}, Env: t.Env})
	if err != nil {
		return fail(t.Name, "credentials", err.Error(), "see the claude check")
	}
	_ = p.Stdin().Close()
	var out bytes.Buffer
	_, _ = io.Copy(&out, io.LimitReader(p.Stdout(), 64<<10))
	werr := p.Wait()
	var st authStatus
	if jerr := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &st); jerr != nil {
		if werr == nil {
			werr = jerr
		}
		// An older Claude Code has no `auth status`: say so, without failing.
		return pass(t.Name, "credentials", fmt.Sprintf("not checked: `%s auth status` on %s gave no answer (%v); Claude Code 2.1 or later reports it", h.Claude(), h.Where(), werr))
	}
	where := ""
	if t.IsRemote() {
		where = " on " + h.Where()
	}
	if !st.LoggedIn {
		return fail(t.Name, "credentials", "Claude Code"+where+" is not logged in",
			fmt.Sprintf("run `claude` in %s%s once and log in (/login), or set ANTHROPIC_API_KEY in teams.%s.env", t.Path, where, t.Name))
	}
	how := st.AuthMethod
	if st.APIKeySource != "" {
		how += " from " + st.APIKeySource
	}
	// The daemon has the env of the command that first started it, which
	// may differ from this shell's.
	note := ""
	if st.APIKeySource == "ANTHROPIC_API_KEY" && !t.IsRemote() && t.Env["ANTHROPIC_API_KEY"] == "" {
		note = " (from this shell's env: the daemon has the env of whatever started it)"
	}
	return pass(t.Name, "credentials", "logged in"+where+": "+how+note)
}

// sshAlias returns the host a team's `ssh:` names when it is a bare alias
// (no user, port or dots), which only ~/.ssh/config can resolve.
func sshAlias(t *configs.Team) (string, bool) {
	dest := t.SSH
	if dest == "" || strings.ContainsAny(dest, "@:.[") || dest == "localhost" {
		return "", false
	}
	return dest, true
}

// unknownAlias reports a bare ssh alias that is neither a Host in the ssh
// config nor a name that resolves: ssh would fail, and saying why beats a
// later error about keys or connections.
func unknownAlias(ctx context.Context, sshConfig string, t *configs.Team) (check, bool) {
	alias, ok := sshAlias(t)
	if !ok {
		return check{}, false
	}
	file := sshConfig
	if file == "" {
		home, _ := os.UserHomeDir()
		file = filepath.Join(home, ".ssh", "config")
	}
	if hasHost(file, alias) {
		return check{}, false
	}
	if _, err := net.DefaultResolver.LookupHost(ctx, alias); err == nil {
		return check{}, false
	}
	return fail(t.Name, "ssh", fmt.Sprintf("SSH host alias %q is unknown: no `Host %s` in %s, and it does not resolve", alias, alias, file),
		fmt.Sprintf("add `Host %s` with its HostName (and User) to %s, or set teams.%s.ssh to user@host", alias, file, t.Name)), true
}

// hasHost reports whether an ssh_config file names alias on a Host line
// (patterns are taken to match: only a plain miss counts as unknown).
func hasHost(file, alias string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.ReplaceAll(sc.Text(), "=", " "))
		if len(fields) < 2 || !strings.EqualFold(fields[0], "Host") {
			continue
		}
		for _, p := range fields[1:] {
			if p == alias || strings.ContainsAny(p, "*?") {
				return true
			}
		}
	}
	return false
}

// sshFix is the specific fix for one kind of SSH failure.
func sshFix(t *configs.Team, where string, err error) string {
	var hk *remote.HostKeyError
	msg := err.Error()
	switch {
	case errors.As(err, &hk) && hk.File != "" && hk.Line > 0:
		return fmt.Sprintf("the host key of %s is not the one recorded at %s:%d: if the host was reinstalled, remove that line and connect once with `ssh %s`", hk.Host, hk.File, hk.Line, where)
	case errors.As(err, &hk):
		return fmt.Sprintf("connect once with `ssh %s` and accept the host key (or set teams.%s.remoteOptions strictHostKeyChecking: accept-new)", where, t.Name)
	case strings.Contains(msg, "no SSH key"):
		return fmt.Sprintf("create a key (ssh-keygen) and install it with `ssh-copy-id %s`, or load one into ssh-agent", where)
	case strings.Contains(msg, "unable to authenticate"):
		return fmt.Sprintf("the host refused your keys: install one with `ssh-copy-id %s`, or check the user name", where)
	case strings.Contains(msg, "no such host"):
		return fmt.Sprintf("the host name does not resolve: fix HostName for %s in ~/.ssh/config, or DNS", where)
	case strings.Contains(msg, "connection refused"):
		return fmt.Sprintf("nothing listens for SSH there: start sshd on %s, or set the right Port", where)
	case strings.Contains(msg, "no route to host"), strings.Contains(msg, "i/o timeout"), strings.Contains(msg, "no answer within"):
		return fmt.Sprintf("%s did not answer: check that it is up and the network or firewall lets SSH through (or the jump host)", where)
	}
	return fmt.Sprintf("run `ssh %s true` to see the same failure, then fix ~/.ssh/config or teams.%s.ssh", where, t.Name)
}
