package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/daemon"
	"github.com/switchboard-mcp/switchboard/hosts"
)

// versionTimeout bounds `claude --version`, which starts node.
const versionTimeout = 30 * time.Second

func (a *app) doctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check every team: path, claude binary and version, credentials, SSH and host key, session store, fleet",
		Long:  "Check every team (its path, its claude binary and version, whether Claude is logged in there, SSH reachability and host key for remote teams) and the session store; with a Postgres store, the database (reachable, schema, latency) and the brokers sharing it (alive or not, their teams and pairs). Print a table with a fix for each failure. Exits 1 if any check fails.",
		Args:  args(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return a.doctor(cmd.Context()) },
	}
}

// check is one row of doctor's table.
type check struct {
	team, name string
	ok         bool
	warn       bool // ok, but a feature is unavailable: shown, not a failure
	result     string
	fix        string
}

func pass(team, name, result string) check {
	return check{team: team, name: name, ok: true, result: result}
}

func fail(team, name, result, fix string) check {
	return check{team: team, name: name, result: result, fix: fix}
}

func (a *app) doctor(ctx context.Context) error {
	log := a.logger(slog.LevelWarn)
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	names := cfg.TeamNames()
	perTeam := make([][]check, len(names))
	// One Hosts for the run: teams on one SSH host share its connection.
	hs := newHosts(cfg, log)
	defer hs.Close()
	var wg sync.WaitGroup
	for i, name := range names {
		t, _ := cfg.Team(name)
		wg.Go(func() { perTeam[i] = a.checkTeam(ctx, hs, cfg.Settings.SSHConfig, path, t) })
	}
	var checks []check
	wg.Wait()
	for _, cs := range perTeam {
		checks = append(checks, cs...)
	}
	checks = append(checks, a.checkStore(ctx, cfg, log)...)
	checks = append(checks, checkDaemon(ctx, cfg))
	if c, bad := a.checkDaemonStore(ctx, cfg, path, log); bad {
		checks = append(checks, c)
	}

	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEAM\tCHECK\tRESULT\tFIX")
	failed := 0
	for _, c := range checks {
		result, fix := "ok: "+c.result, "-"
		if c.warn {
			result, fix = "WARN: "+c.result, c.fix
		}
		if !c.ok {
			failed++
			result, fix = "FAIL: "+c.result, c.fix
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.team, c.name, oneLine(result), fix)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed; see the FIX column", failed, len(checks))
	}
	return nil
}

// checkTeam checks a team through the same Host the broker would use: its
// host answers, its path is a directory there, and its claude runs there.
func (a *app) checkTeam(ctx context.Context, hs *hosts.Hosts, sshConfig, configPath string, t *configs.Team) []check {
	if c, unknown := unknownAlias(ctx, sshConfig, t); unknown {
		return []check{c}
	}
	h, err := hs.For(t)
	if err != nil {
		where := t.SSH
		if h != nil {
			where = h.Where()
		}
		return []check{fail(t.Name, "ssh", err.Error(), sshFix(t, where, err))}
	}
	out := []check{}
	fixPath := fmt.Sprintf("create %s, or fix teams.%s.path in %s", t.Path, t.Name, configPath)
	if t.IsRemote() {
		fixPath = fmt.Sprintf("create %s on %s, or fix teams.%s.path", t.Path, h.Where(), t.Name)
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := h.Ping(pctx); err != nil {
			// The path and claude cannot be checked without SSH: one
			// failure, not three.
			return append(out, fail(t.Name, "ssh", err.Error(), sshFix(t, h.Where(), err)))
		}
		out = append(out, pass(t.Name, "ssh", "reachable as "+h.Where()+", host key known"))
		out = append(out, checkAskBack(pctx, h, t))
	}
	fi, err := h.Files().Stat(ctx, t.Path)
	switch {
	case err != nil:
		out = append(out, fail(t.Name, "path", err.Error(), fixPath))
	case !fi.IsDir():
		out = append(out, fail(t.Name, "path", t.Path+" is not a directory", fmt.Sprintf("fix teams.%s.path", t.Name)))
	case t.IsRemote():
		out = append(out, pass(t.Name, "path", t.Path+" on "+h.Where()))
	default:
		out = append(out, pass(t.Name, "path", t.Path))
	}
	if !out[len(out)-1].ok {
		return out
	}
	timeout := versionTimeout
	if t.IsRemote() {
		timeout *= 2 // and an SSH session to open
	}
	vctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := claudeVersion(vctx, h, t)
	if err != nil {
		return append(out, fail(t.Name, "claude", err.Error(), fmt.Sprintf("install Claude Code on %s (npm i -g @anthropic-ai/claude-code) or set teams.%s.claudePath", h.Where(), t.Name)))
	}
	out = append(out, pass(t.Name, "claude", h.Claude()))
	if t.IsRemote() {
		v += " on " + h.Where()
	}
	out = append(out, pass(t.Name, "claude version", v))
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return append(out, checkCredentials(actx, h, t))
}

// checkStore checks the session store and, when it is shared (Postgres),
// the database and the fleet of brokers using it.
func (a *app) checkStore(ctx context.Context, cfg *configs.Config, log *slog.Logger) []check {
	where := cfg.Settings.Database.Path
	if cfg.Settings.Database.DSN != "" {
		where = "the dsn database"
	}
	store, err := a.openStore(ctx, cfg)
	if err != nil {
		if cfg.Settings.Database.IsPostgres() {
			return []check{fail("*", "database", err.Error(), "check that the server at settings.database.dsn runs and lets this user in (its password, pg_hba.conf)")}
		}
		return []check{fail("*", "session store", err.Error(), "fix settings.database in the config, or move the damaged file away")}
	}
	defer store.Close()
	var out []check
	if store.Shared() {
		out = append(out, checkDatabase(ctx, cfg, store))
	}
	st, err := store.Stats(ctx)
	if err != nil {
		return append(out, fail("*", "session store", err.Error(), "the database may be damaged: move "+where+" away to start afresh"))
	}
	var msgs int64
	for _, n := range st.MessagesByStatus {
		msgs += n
	}
	out = append(out, pass("*", "session store", fmt.Sprintf("%s: %d sessions, %d messages", where, st.Sessions, msgs)))
	if store.Shared() {
		out = append(out, checkFleet(ctx, cfg, store, time.Now())...)
	}
	return out
}

func checkDaemon(ctx context.Context, cfg *configs.Config) check {
	if daemon.Running(ctx, cfg.Settings.Socket) {
		return pass("*", "daemon", "running on "+cfg.Settings.Socket)
	}
	return pass("*", "daemon", "not running; it starts on first use")
}

// checkAskBack tells whether a remote team's Claude can ask other teams:
// that needs a remote port forward on the team's SSH connection.
func checkAskBack(ctx context.Context, h *hosts.Team, t *configs.Team) check {
	if err := h.CheckAskBack(ctx); err != nil {
		c := pass(t.Name, "ask back", "unavailable: "+err.Error()+"; the team still answers")
		c.warn, c.fix = true, "set AllowTcpForwarding remote (or yes) in the sshd_config of "+h.Where()+" so the team's Claude can ask other teams"
		return c
	}
	return pass(t.Name, "ask back", "switchboard's tools reach "+h.Where()+" through a port forwarded on its SSH connection")
}

// checkDaemonStore asks a running daemon whether its store refuses writes
// (a full disk pauses every delivery), which opening the store here cannot
// tell. It reports a failing check, or false when there is nothing to say.
func (a *app) checkDaemonStore(ctx context.Context, cfg *configs.Config, path string, log *slog.Logger) (check, bool) {
	if !daemon.Running(ctx, cfg.Settings.Socket) {
		return check{}, false
	}
	c, err := a.connectHere(ctx, cfg, path, false, log)
	if err != nil {
		return check{}, false
	}
	defer c.Close()
	var out struct {
		Teams []broker.TeamStatus `json:"teams"`
	}
	if err := c.callJSON(ctx, "team_status", map[string]any{}, &out); err != nil {
		return check{}, false
	}
	for _, t := range out.Teams {
		if i := strings.Index(t.Problem, "store is full"); i >= 0 {
			return fail("*", "session store", t.Problem[i:], "free disk space where the database lives; the daemon resumes deliveries by itself"), true
		}
	}
	return check{}, false
}
