package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/daemon"
	"github.com/switchboard-mcp/switchboard/models"
)

// logRingSize is how many recent log records get_logs can return.
const logRingSize = 2000

func (a *app) serveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the broker daemon in the foreground",
		Long: "Run the broker daemon in the foreground: it owns the session store, the Claude processes and the SSH\n" +
			"connections, and serves MCP on the configured unix socket (and httpAddr, when set) until SIGINT or SIGTERM.\n" +
			"`switchboard mcp` starts it in the background when it is not running.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.serve(cmd.Context()) },
	}
}

func (a *app) serve(ctx context.Context) error {
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	ring := broker.NewLogRing(logRingSize)
	// get_logs sees every record, whatever the stderr level.
	log := slog.New(ring.Handler(a.handler(cfg.Settings.Level())))
	for _, w := range cfg.Warnings {
		log.Debug("config key ignored", "problem", w.String())
	}

	// The lock comes first: a second daemon must not so much as open the
	// store, whose queued messages it would start delivering.
	lock, err := daemon.Acquire(cfg.Settings.Socket)
	if err != nil {
		return err
	}
	defer lock.Release()

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	store, err := models.Open(ctx, models.Options{Path: cfg.Settings.Database.Path, DSN: cfg.Settings.Database.DSN, Logger: log})
	if err != nil {
		return fmt.Errorf("open the session store: %w", err)
	}
	defer store.Close()
	if err := reclaimFleetName(ctx, store, cfg, path, log); err != nil {
		return err
	}
	run := newHosts(cfg, log)
	defer run.Close()
	b, err := broker.New(ctx, cfg, broker.Options{
		Store: store, Hosts: brokerHosts(run), Logger: log, Logs: ring,
		// Every team's Claude gets switchboard's tools as its own team:
		// local ones on a loopback port, remote ones on a port forwarded
		// over the team's SSH connection.
		ServeSessions: run.ServeMCP,
		// Used only on a shared (Postgres) store: this broker's name and
		// lease among the brokers sharing it.
		Fleet: broker.FleetOptions{Name: cfg.Settings.Fleet.Name, LeaseTTL: cfg.Settings.Fleet.LeaseTTL.Duration,
			ConfigFile: path, Version: version},
	})
	if err != nil {
		return fmt.Errorf("start the broker: %w", err)
	}
	defer b.Close()
	// The daemon follows its config file (and SIGHUP) while it serves.
	go followConfig(ctx, path, b, log)

	dctx, stopDashboard := context.WithCancel(ctx)
	waitDashboard := startDashboard(dctx, cfg, b, store, ring, log)
	err = daemon.Serve(ctx, daemon.Options{Lock: lock, HTTPAddr: cfg.Settings.HTTPAddr, Broker: b, Version: version, ConfigPath: path, Logger: log})
	stopDashboard()
	waitDashboard()
	log.Info("shutting down: stopping claude processes and closing the store")
	return err
}
