package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/daemon"
)

func (a *app) mcpCommand() *cobra.Command {
	var as string
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Stdio MCP endpoint for Claude Code (a proxy to the daemon)",
		Long: "The stdio MCP server Claude Code launches. It relays MCP to the switchboard daemon, starting the daemon in\n" +
			"the background (log: daemon.log next to the socket) when it is not running. Its stdout carries only the protocol.\n" +
			"The caller's team, the default fromTeam of every tool, is --as, else the team whose path holds the working\n" +
			"directory, else \"user\".",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkTeamName("--as", as); err != nil {
				return err
			}
			return a.mcp(cmd.Context(), as)
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "the caller's team (default: the team whose path holds the working directory, else user)")
	return cmd
}

func (a *app) mcp(ctx context.Context, as string) error {
	log := a.logger(slog.LevelWarn)
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("find the working directory: %w", err)
	}
	caller := callerFor(cfg, as, wd)
	log.Debug("proxying MCP to the switchboard daemon", "caller", caller, "socket", cfg.Settings.Socket)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return daemon.Proxy(ctx, daemon.ProxyOptions{
		Socket: cfg.Settings.Socket, Caller: caller, Version: version,
		In: a.stdin, Out: a.stdout,
		Start:  a.starter(cfg, path),
		Logger: log,
	})
}
