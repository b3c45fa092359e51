package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/hosts"
	"github.com/switchboard-mcp/switchboard/local"
	"github.com/switchboard-mcp/switchboard/proc"
	"github.com/switchboard-mcp/switchboard/remote"
)

// newRunners hands out this machine's runner for local teams and one shared
// SSH connection per remote host.
func newRunners(cfg *configs.Config, log *slog.Logger) *hosts.Runners {
	return hosts.New(local.New(local.Options{Logger: log}), remote.NewPool(log), cfg.Settings.SSHConfig)
}

// claudeVersion runs `claude --version` through a team's runner, so a remote
// team's binary is checked on its own host, as the broker will start it.
func claudeVersion(ctx context.Context, r proc.Runner, t *configs.Team) (string, error) {
	bin := t.ClaudePath
	if bin == "" {
		bin = "claude"
	}
	p, err := r.Start(ctx, proc.Spec{Dir: t.Path, Command: bin, Args: []string{"--version"}, Env: t.Env})
	if err != nil {
		return "", err
	}
	_ = p.Stdin().Close()
	var out bytes.Buffer
	_, _ = io.Copy(&out, io.LimitReader(p.Stdout(), 64<<10))
	if err := p.Wait(); err != nil {
		return "", fmt.Errorf("%s --version on %s: %w", bin, r.Where(), err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(out.String()), "\n")
	return first, nil
}
