package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/daemon"
)

// versionTimeout bounds `claude --version`, which starts node.
const versionTimeout = 30 * time.Second

func (a *app) doctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check every team: path, claude binary and version, SSH and host key, session store",
		Long:  "Check every team (its path, its claude binary and version, SSH reachability and host key for remote teams) and the session store, and print a table with a fix for each failure. Exits 1 if any check fails.",
		Args:  args(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return a.doctor(cmd.Context()) },
	}
}

// check is one row of doctor's table.
type check struct {
	team, name string
	ok         bool
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
	var wg sync.WaitGroup
	for i, name := range names {
		t, _ := cfg.Team(name)
		wg.Go(func() { perTeam[i] = a.checkTeam(ctx, cfg, path, t) })
	}
	var checks []check
	wg.Wait()
	for _, cs := range perTeam {
		checks = append(checks, cs...)
	}
	checks = append(checks, a.checkStore(ctx, cfg, log), checkDaemon(ctx, cfg))

	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEAM\tCHECK\tRESULT\tFIX")
	failed := 0
	for _, c := range checks {
		result, fix := "ok: "+c.result, "-"
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

func (a *app) checkTeam(ctx context.Context, cfg *configs.Config, configPath string, t *configs.Team) []check {
	if t.IsRemote() {
		return a.checkRemote(ctx, cfg, t)
	}
	var out []check
	fi, err := os.Stat(t.Path)
	switch {
	case err != nil:
		out = append(out, fail(t.Name, "path", err.Error(), fmt.Sprintf("create %s, or fix teams.%s.path in %s", t.Path, t.Name, configPath)))
	case !fi.IsDir():
		out = append(out, fail(t.Name, "path", t.Path+" is not a directory", fmt.Sprintf("fix teams.%s.path in %s", t.Name, configPath)))
	default:
		out = append(out, pass(t.Name, "path", t.Path))
	}

	bin, err := findClaude(t)
	if err != nil {
		return append(out, fail(t.Name, "claude", err.Error(),
			fmt.Sprintf("install Claude Code (npm install -g @anthropic-ai/claude-code) or set teams.%s.claudePath", t.Name)))
	}
	out = append(out, pass(t.Name, "claude", bin))

	vctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	cmd := exec.CommandContext(vctx, bin, "--version")
	if fi != nil && fi.IsDir() {
		cmd.Dir = t.Path
	}
	cmd.Env = os.Environ()
	for k, v := range t.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = nil
	outb, err := cmd.CombinedOutput()
	text := strings.TrimSpace(string(outb))
	if err != nil {
		if text != "" {
			err = fmt.Errorf("%w: %s", err, text)
		}
		return append(out, fail(t.Name, "claude version", fmt.Sprintf("%s --version: %v", bin, err), "run "+bin+" --version by hand to see why it fails"))
	}
	first, _, _ := strings.Cut(text, "\n")
	return append(out, pass(t.Name, "claude version", first))
}

// findClaude resolves the team's claude command as the local runner will.
func findClaude(t *configs.Team) (string, error) {
	name := t.ClaudePath
	if name == "" {
		name = "claude"
	}
	if strings.ContainsRune(name, filepath.Separator) {
		fi, err := os.Stat(name)
		if err != nil {
			return "", err
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s is not an executable file", name)
		}
		return name, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s is not on PATH", name)
	}
	return p, nil
}

func (a *app) checkRemote(ctx context.Context, cfg *configs.Config, t *configs.Team) []check {
	run := newHosts(cfg, a.logger(slog.LevelWarn))
	defer run.Close()
	r, err := run.For(t)
	if err != nil {
		return []check{fail(t.Name, "ssh", err.Error(), "check the team's ssh/remote settings and ~/.ssh/config")}
	}
	out := []check{}
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := r.Ping(pctx); err != nil {
		out = append(out, fail(t.Name, "ssh", err.Error(), "see the message: add the host key to known_hosts, start sshd, or fix ~/.ssh/config"))
	} else {
		out = append(out, pass(t.Name, "ssh", "reachable as "+r.Where()+", host key known"))
	}
	fi, err := r.Files().Stat(ctx, t.Path)
	switch {
	case err != nil:
		out = append(out, fail(t.Name, "path", err.Error(), fmt.Sprintf("create %s on %s, or fix teams.%s.path", t.Path, r.Where(), t.Name)))
	case !fi.IsDir():
		out = append(out, fail(t.Name, "path", t.Path+" is not a directory", fmt.Sprintf("fix teams.%s.path", t.Name)))
	default:
		out = append(out, pass(t.Name, "path", t.Path+" on "+r.Where()))
	}
	if !out[len(out)-1].ok {
		return out
	}
	vctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := claudeVersion(vctx, r, t)
	if err != nil {
		return append(out, fail(t.Name, "claude version", err.Error(), fmt.Sprintf("install Claude Code on %s (npm i -g @anthropic-ai/claude-code) or set teams.%s.claudePath", r.Where(), t.Name)))
	}
	return append(out, pass(t.Name, "claude version", v+" on "+r.Where()))
}

func (a *app) checkStore(ctx context.Context, cfg *configs.Config, log *slog.Logger) check {
	where := cfg.Settings.Database.Path
	if cfg.Settings.Database.DSN != "" {
		where = "the dsn database"
	}
	store, err := a.openStore(ctx, cfg, log)
	if err != nil {
		return fail("*", "session store", err.Error(), "fix settings.database in the config, or move the damaged file away")
	}
	defer store.Close()
	st, err := store.Stats(ctx)
	if err != nil {
		return fail("*", "session store", err.Error(), "the database may be damaged: move "+where+" away to start afresh")
	}
	var msgs int64
	for _, n := range st.MessagesByStatus {
		msgs += n
	}
	return pass("*", "session store", fmt.Sprintf("%s: %d sessions, %d messages", where, st.Sessions, msgs))
}

func checkDaemon(ctx context.Context, cfg *configs.Config) check {
	if daemon.Running(ctx, cfg.Settings.Socket) {
		return pass("*", "daemon", "running on "+cfg.Settings.Socket)
	}
	return pass("*", "daemon", "not running; it starts on first use")
}
