package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/hosts"
	"github.com/switchboard-mcp/switchboard/local"
	"github.com/switchboard-mcp/switchboard/proc"
	"github.com/switchboard-mcp/switchboard/remote"
)

// newHosts places teams: this machine's runner for local teams and one
// shared SSH connection per remote host.
func newHosts(cfg *configs.Config, log *slog.Logger) *hosts.Hosts {
	return hosts.New(hosts.Options{
		Local:          local.New(local.Options{Logger: log}),
		Pool:           remote.NewPool(log),
		SSHConfig:      cfg.Settings.SSHConfig,
		LocalConfigDir: os.Getenv("CLAUDE_CONFIG_DIR"),
		// Beside the socket, in the daemon's private directory.
		CredentialDir: filepath.Join(filepath.Dir(cfg.Settings.Socket), "run"),
	})
}

// brokerHosts hands h to the broker, which names its own Host interface.
func brokerHosts(h *hosts.Hosts) broker.HostsFunc {
	return func(t *configs.Team) (broker.Host, error) {
		tm, err := h.For(t)
		if tm == nil {
			return nil, err
		}
		return tm, err
	}
}

// claudeVersion runs `claude --version` on a team's host, so a team's binary
// is checked where and as the broker will start it.
func claudeVersion(ctx context.Context, h *hosts.Team, t *configs.Team) (string, error) {
	bin := h.Claude()
	p, err := h.Start(ctx, proc.Spec{Dir: t.Path, Command: bin, Args: []string{"--version"}, Env: t.Env})
	if err != nil {
		return "", err
	}
	_ = p.Stdin().Close()
	var out bytes.Buffer
	_, _ = io.Copy(&out, io.LimitReader(p.Stdout(), 64<<10))
	if err := p.Wait(); err != nil {
		return "", fmt.Errorf("%s --version on %s: %w", bin, h.Where(), err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(out.String()), "\n")
	return first, nil
}
