package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/dashboard"
	"github.com/switchboard-mcp/switchboard/dashboard/brokerview"
	"github.com/switchboard-mcp/switchboard/models"
)

// exampleDashboard is the setting `switchboard dashboard` tells a user to add.
const exampleDashboard = "127.0.0.1:1616"

// startDashboard serves the dashboard on settings.dashboard, when set, until
// ctx ends, and returns a func that waits for it to stop. The page gets a
// new token on every daemon start, written 0600 next to the socket with the
// listener's address for `switchboard dashboard`. A dashboard that cannot
// listen is logged and left off: the daemon's MCP service does not depend
// on it.
func startDashboard(ctx context.Context, cfg *configs.Config, b *broker.Broker, store *models.Store, ring *broker.LogRing, log *slog.Logger) (wait func()) {
	tokenPath := dashboard.TokenPath(cfg.Settings.Socket)
	// A file left by a daemon that crashed must not send anyone to a page
	// that is not there, or to this daemon with an old token.
	if err := os.Remove(tokenPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("remove an old dashboard token", "path", tokenPath, "err", err)
	}
	addr := cfg.Settings.Dashboard
	if addr == "" {
		return func() {}
	}
	log = log.With("component", "dashboard")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("dashboard off: cannot listen on settings.dashboard", "addr", addr, "err", err)
		return func() {}
	}
	token, err := dashboard.NewToken()
	if err == nil {
		err = dashboard.WriteAccess(tokenPath, dashboard.Access{Token: token, Addr: ln.Addr().String()})
	}
	if err != nil {
		ln.Close()
		log.Error("dashboard off", "err", err)
		return func() {}
	}
	h := dashboard.New(dashboard.Options{
		Backend:      brokerview.New(brokerview.Options{Broker: b, Store: store, Logs: ring}),
		Token:        token,
		AllowedHosts: dashboard.AllowedHosts(ln.Addr()),
		Logger:       log,
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer os.Remove(tokenPath)
		if err := dashboard.Serve(ctx, ln, h); err != nil {
			log.Error("dashboard stopped", "err", err)
		}
	}()
	log.Info("dashboard listening", "addr", ln.Addr().String(), "open", "switchboard dashboard")
	return func() { <-done }
}

func (a *app) dashboardCommand() *cobra.Command {
	var open bool
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Print the URL of the daemon's live dashboard (starting the daemon if needed)",
		Long: "Print the address of the web page the daemon serves on settings.dashboard (a loopback host:port; off by\n" +
			"default): teams and their Claude processes, messages, sessions, logs and permission requests, live, with\n" +
			"buttons to wake, sleep, cancel, reboot, send and approve. The URL carries the daemon's token, new on each\n" +
			"daemon start; the page swaps it for a cookie. With --open it also runs xdg-open (open on macOS).",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.dashboard(cmd.Context(), open) },
	}
	cmd.Flags().BoolVar(&open, "open", false, "open the page in the desktop's browser")
	return cmd
}

func (a *app) dashboard(ctx context.Context, open bool) error {
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	if cfg.Settings.Dashboard == "" {
		return fmt.Errorf("the dashboard is off: add this line under settings: in %s\n\n  dashboard: %s\n\nthen run: switchboard restart", path, exampleDashboard)
	}
	c, err := a.connectHere(ctx, cfg, path, true, a.logger(slog.LevelWarn))
	if err != nil {
		return err
	}
	c.Close()
	acc, err := dashboard.ReadAccess(dashboard.TokenPath(cfg.Settings.Socket))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the running daemon (pid %d) serves no dashboard: it started before settings.dashboard was set, or could not listen on %s (see daemon.log next to %s); run: switchboard restart",
			c.daemon.PID, cfg.Settings.Dashboard, cfg.Settings.Socket)
	}
	if err != nil {
		return err
	}
	if err := checkDashboard(ctx, acc); err != nil {
		return fmt.Errorf("the dashboard at http://%s does not answer as it should (%v); run: switchboard restart", acc.Addr, err)
	}
	if _, err := fmt.Fprintln(a.stdout, acc.URL()); err != nil {
		return err
	}
	if open {
		name := "xdg-open"
		if _, err := exec.LookPath("open"); err == nil {
			if _, err := exec.LookPath(name); err != nil {
				name = "open"
			}
		}
		// The URL is an argument here, not a message: it goes nowhere else.
		if err := exec.CommandContext(ctx, name, acc.URL()).Run(); err != nil {
			return fmt.Errorf("open the page with %s: %w; open the URL above yourself", name, err)
		}
	}
	return nil
}

// checkDashboard asks the page's API with the token, so a stale token file
// or another program on the port shows here rather than as a 401 in the
// browser.
func checkDashboard(ctx context.Context, acc dashboard.Access) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+acc.Addr+"/api/permissions", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+acc.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /api/permissions: %s", resp.Status)
	}
	return nil
}
