package main

import (
	"context"
	"encoding/json"
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
	var httpHeaders bool
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Stdio MCP endpoint for Claude Code (a proxy to the daemon)",
		Long: "The stdio MCP server Claude Code launches. It relays MCP to the switchboard daemon, starting the daemon in\n" +
			"the background (log: daemon.log next to the socket) when it is not running. Its stdout carries only the protocol.\n" +
			"The caller's team, the default fromTeam of every tool, is --as, else the team whose path holds the working\n" +
			"directory, else \"user\".\n\n" +
			"With --http it prints, as JSON, the headers a client of the streamable-HTTP endpoint (settings.httpAddr)\n" +
			"must send, starting the daemon when it is not running: {\"Authorization\":\"Bearer TOKEN\"}. The token is\n" +
			"new on each daemon start; Claude Code can run this as an MCP server's headersHelper.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkTeamName("--as", as); err != nil {
				return err
			}
			if httpHeaders {
				return a.httpHeaders(cmd.Context(), as)
			}
			return a.mcp(cmd.Context(), as)
		},
	}
	cmd.Flags().BoolVar(&httpHeaders, "http", false, "print the headers (JSON) a streamable-HTTP client sends, with the daemon's bearer token")
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
		Socket: cfg.Settings.Socket, Caller: caller, Version: version, Config: path,
		In: a.stdin, Out: a.stdout,
		Start:  a.starter(cfg, path),
		Logger: log,
	})
}

// httpHeaders prints the headers a client of the HTTP endpoint sends: the
// daemon's bearer token, and the caller's team when --as is given.
func (a *app) httpHeaders(ctx context.Context, as string) error {
	log := a.logger(slog.LevelWarn)
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	if cfg.Settings.HTTPAddr == "" {
		return fmt.Errorf("settings.httpAddr is not set in %s; set it (e.g. 127.0.0.1:1615) to serve MCP over HTTP", path)
	}
	// The token exists only while a daemon with the endpoint runs.
	c, err := a.connect(ctx, cfg, path, callerFor(cfg, as, "/"), true, nil, log)
	if err != nil {
		return err
	}
	c.Close()
	tok, err := daemon.ReadToken(cfg.Settings.Socket)
	if err != nil {
		return err
	}
	h := map[string]string{"Authorization": "Bearer " + tok}
	if as != "" {
		h[daemon.CallerHeader] = as
	}
	out, err := json.Marshal(h)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", out)
	return err
}
