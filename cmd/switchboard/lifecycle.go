package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/daemon"
	"github.com/switchboard-mcp/switchboard/models"
)

// stopTimeout bounds the wait for a daemon to exit after SIGTERM: it stops
// its Claude processes and closes the store first.
const stopTimeout = 30 * time.Second

func (a *app) stopCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the daemon and wait until it has exited",
		Long: "Stop the daemon of this config (SIGTERM to the pid in its lock file) and wait until it has exited and\n" +
			"removed its socket. Queued messages stay in the store and are delivered by the next daemon.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := a.loadConfig()
			if err != nil {
				return err
			}
			return a.stop(cmd.Context(), cfg)
		},
	}
}

func (a *app) stop(ctx context.Context, cfg *configs.Config) error {
	socket := cfg.Settings.Socket
	pid := daemon.LockHolder(socket)
	if pid == 0 {
		_, err := fmt.Fprintf(a.stdout, "switchboard daemon: not running (socket %s)\n", socket)
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop the daemon (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(stopTimeout)
	// The daemon releases its lock (removes the lock file) before it
	// exits; `stop` promises the process is gone, so it waits for both.
	for daemon.LockHolder(socket) == pid || daemon.ProcessAlive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon (pid %d) has not exited %s after SIGTERM; see %s, or force it with: kill -9 %d", pid, stopTimeout, daemonLogName, pid)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	_, err := fmt.Fprintf(a.stdout, "switchboard daemon: stopped (pid %d)\n", pid)
	return err
}

func (a *app) restartCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "restart",
		Short: "Stop the daemon, wait for it, and start it again",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, path, err := a.loadConfig()
			if err != nil {
				return err
			}
			if err := a.stop(ctx, cfg); err != nil {
				return err
			}
			c, err := a.connectHere(ctx, cfg, path, true, a.logger(slog.LevelWarn))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = fmt.Fprintf(a.stdout, "switchboard daemon: started (pid %d)\n", c.daemon.PID)
			return err
		},
	}
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status [MESSAGE_ID]",
		Short: "The daemon's state, or what became of one message",
		Long: "Without an argument: the daemon's pid, config, socket, version, uptime, teams, live Claude processes and\n" +
			"queue depth (it does not start a daemon). With a message id: its status and its answer (message_status).",
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if len(argv) == 1 {
				id, err := strconv.ParseUint(argv[0], 10, 64)
				if err != nil || id == 0 {
					return usageError{fmt.Errorf("message id %q: use the number send_message or ask printed", argv[0])}
				}
				return a.messageStatus(cmd.Context(), id)
			}
			return a.daemonStatus(cmd.Context())
		},
	}
}

func (a *app) daemonStatus(ctx context.Context) error {
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	c, err := a.connectHere(ctx, cfg, path, false, a.logger(slog.LevelWarn))
	var nr *daemon.NotRunningError
	if errors.As(err, &nr) {
		return fmt.Errorf("the switchboard daemon is not running (socket %s); it starts with the first ask, or: switchboard serve", cfg.Settings.Socket)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	var out struct {
		Teams []broker.TeamStatus `json:"teams"`
	}
	if err := c.callJSON(ctx, "team_status", map[string]any{}, &out); err != nil {
		return err
	}
	live, queued, running := 0, int64(0), int64(0)
	for _, t := range out.Teams {
		for _, s := range t.Sessions {
			if s.PID != 0 && s.State != models.ProcessStopped {
				live++
			}
		}
		queued += t.Messages[models.MessageQueued]
		running += t.Messages[models.MessageRunning]
	}
	d := c.daemon
	up := time.Since(d.Started).Round(time.Second)
	_, err = fmt.Fprintf(a.stdout, "pid:        %d\nconfig:     %s\nsocket:     %s\nversion:    %s\nuptime:     %s\nteams:      %d\nprocesses:  %d\nqueue:      %d queued, %d running\n",
		d.PID, d.Config, d.Socket, d.Version, up, len(out.Teams), live, queued, running)
	return err
}

func (a *app) messageStatus(ctx context.Context, id uint64) error {
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	c, err := a.connectHere(ctx, cfg, path, true, a.logger(slog.LevelWarn))
	if err != nil {
		return err
	}
	defer c.Close()
	var r broker.Reply
	if err := c.callJSON(ctx, "message_status", map[string]any{"messageId": id}, &r); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "message %d from %s to %s: %s\n", r.MessageID, r.From, r.To, r.Status)
	if r.Error != "" {
		fmt.Fprintf(a.stdout, "error: %s\n", oneLine(r.Error))
	}
	if r.Answer != "" {
		fmt.Fprintf(a.stdout, "\n%s\n", r.Answer)
	}
	return nil
}
