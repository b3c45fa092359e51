package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/daemon"
	"github.com/switchboard-mcp/switchboard/models"
)

func (a *app) sessionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions [ls | show ID | rm ID]",
		Short: "List, show or remove session records",
		Long: "The session record of each (fromTeam, toTeam) pair: its Claude Code session id, status and message count.\n" +
			"ls and show read the store directly; rm goes through the daemon when it runs, so it also stops the session's process.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.sessionsList(cmd.Context()) },
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "ls",
			Short: "List the session records, most recently used first",
			Args:  args(cobra.NoArgs),
			RunE:  func(cmd *cobra.Command, _ []string) error { return a.sessionsList(cmd.Context()) },
		},
		&cobra.Command{
			Use:   "show ID",
			Short: "Show one session record and its latest questions with their answers (ID: the session id or its first characters)",
			Args:  args(cobra.ExactArgs(1)),
			RunE:  func(cmd *cobra.Command, argv []string) error { return a.sessionsShow(cmd.Context(), argv[0]) },
		},
		&cobra.Command{
			Use:   "rm ID",
			Short: "Forget a session (its Claude Code session file is kept)",
			Args:  args(cobra.ExactArgs(1)),
			RunE:  func(cmd *cobra.Command, argv []string) error { return a.sessionsRemove(cmd.Context(), argv[0]) },
		},
	)
	return cmd
}

// openStore opens the session store directly; SQLite's WAL mode lets this
// run beside a daemon that writes to it.
//
// The store logs at error level unless --log-level says otherwise: its
// warnings are of slow statements, which on a busy machine a one-shot
// command meets (creating a new database's tables) and its user can do
// nothing about. Failures come back as errors either way.
func (a *app) openStore(ctx context.Context, cfg *configs.Config) (*models.Store, error) {
	// The daemon runs the integrity check when it starts; a CLI command
	// that reads a few rows must not scan the whole file every time.
	s, err := models.Open(ctx, models.Options{Path: cfg.Settings.Database.Path, DSN: cfg.Settings.Database.DSN, Logger: a.logger(slog.LevelError), SkipQuickCheck: true})
	if err != nil {
		return nil, fmt.Errorf("open the session store: %w", err)
	}
	return s, nil
}

func (a *app) sessionsList(ctx context.Context) error {
	return a.withStore(ctx, func(_ *configs.Config, _ string, store *models.Store, _ *slog.Logger) error {
		sessions, err := store.ListSessions(ctx, models.SessionFilter{})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FROM\tTO\tSESSION\tSTATUS\tMESSAGES\tLAST-USED")
		for _, s := range sessions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", s.FromTeam, s.ToTeam, s.SessionID, s.Status, s.MessageCount, when(s.LastUsedAt))
		}
		return tw.Flush()
	})
}

func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// sessionByID validates id, a session id or a unique prefix of one, and
// finds its record.
func sessionByID(ctx context.Context, store *models.Store, id string) (*models.Session, error) {
	if _, err := uuid.Parse(id); err == nil {
		s, err := store.SessionByID(ctx, id)
		if errors.Is(err, models.ErrNotFound) {
			return nil, fmt.Errorf("no session %s; list them with: switchboard sessions ls", id)
		}
		return s, err
	}
	if !isIDPrefix(id) {
		return nil, usageError{fmt.Errorf("%q is not a session id (a UUID, or its first characters); list them with: switchboard sessions ls", id)}
	}
	all, err := store.ListSessions(ctx, models.SessionFilter{})
	if err != nil {
		return nil, err
	}
	var found []models.Session
	for _, s := range all {
		if strings.HasPrefix(s.SessionID, strings.ToLower(id)) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no session starts with %s; list them with: switchboard sessions ls", id)
	case 1:
		return &found[0], nil
	}
	ids := make([]string, 0, 3)
	for _, s := range found[:min(3, len(found))] {
		ids = append(ids, s.SessionID)
	}
	return nil, fmt.Errorf("%s starts %d sessions (%s…); give more of the id", id, len(found), strings.Join(ids, ", "))
}

// isIDPrefix reports whether s can begin a UUID: hex digits and dashes.
func isIDPrefix(s string) bool {
	if s == "" || len(s) > 36 {
		return false
	}
	for _, c := range strings.ToLower(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && c != '-' {
			return false
		}
	}
	return true
}

// withSession is withStore for one session, found by id.
func (a *app) withSession(ctx context.Context, id string, f func(cfg *configs.Config, path string, store *models.Store, s *models.Session, log *slog.Logger) error) error {
	return a.withStore(ctx, func(cfg *configs.Config, path string, store *models.Store, log *slog.Logger) error {
		s, err := sessionByID(ctx, store, id)
		if err != nil {
			return err
		}
		return f(cfg, path, store, s, log)
	})
}

// withStore loads the config and opens the store for f, closing it after.
func (a *app) withStore(ctx context.Context, f func(cfg *configs.Config, path string, store *models.Store, log *slog.Logger) error) error {
	log := a.logger(slog.LevelWarn)
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	store, err := a.openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	return f(cfg, path, store, log)
}

func (a *app) sessionsShow(ctx context.Context, id string) error {
	return a.withSession(ctx, id, func(_ *configs.Config, _ string, store *models.Store, s *models.Session, _ *slog.Logger) error {
		return a.showSession(ctx, store, s)
	})
}

func (a *app) showSession(ctx context.Context, store *models.Store, s *models.Session) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("session:", s.SessionID)
	row("from:", s.FromTeam)
	row("to:", s.ToTeam)
	row("status:", string(s.Status))
	row("process:", string(s.ProcessState))
	row("messages:", fmt.Sprint(s.MessageCount))
	row("created:", when(&s.CreatedAt))
	row("last used:", when(s.LastUsedAt))
	row("last answer:", when(s.LastResponseAt))
	row("compactions:", fmt.Sprint(s.CompactionCount))
	if s.LastError != "" {
		row("last error:", s.LastError)
	}
	if s.LaunchCommand != "" {
		row("launch:", s.LaunchCommand)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	msgs, err := store.ListMessages(ctx, models.MessageFilter{FromTeam: s.FromTeam, ToTeam: s.ToTeam, Limit: 10})
	if err != nil || len(msgs) == 0 {
		return err
	}
	// Oldest first, each question with what became of it.
	fmt.Fprintln(a.stdout, "\nlatest messages:")
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		fmt.Fprintf(a.stdout, "\n#%d  %s  %s\n", m.ID, m.Status, when(&m.CreatedAt))
		fmt.Fprintf(a.stdout, "  Q: %s\n", clip(oneLine(m.Text), 200))
		switch {
		case m.Answer != "":
			fmt.Fprintf(a.stdout, "  A: %s\n", clip(oneLine(m.Answer), 200))
		case m.Error != "":
			fmt.Fprintf(a.stdout, "  error: %s\n", clip(oneLine(m.Error), 200))
		default:
			fmt.Fprintln(a.stdout, "  A: (no answer yet)")
		}
	}
	return a.permissionLines(ctx, store, msgs)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func (a *app) sessionsRemove(ctx context.Context, id string) error {
	return a.withSession(ctx, id, func(cfg *configs.Config, path string, store *models.Store, s *models.Session, log *slog.Logger) error {
		return a.removeSession(ctx, cfg, path, store, s, log)
	})
}

func (a *app) removeSession(ctx context.Context, cfg *configs.Config, path string, store *models.Store, s *models.Session, log *slog.Logger) error {
	_, configured := cfg.Team(s.ToTeam)
	if configured && daemon.Running(ctx, cfg.Settings.Socket) {
		// The daemon may have a process on this session: let it stop it.
		c, err := a.connect(ctx, cfg, path, s.FromTeam, false, nil, log)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.call(ctx, sessionDeleteParams(s)); err != nil {
			return err
		}
	} else if err := store.DeleteSession(ctx, s.SessionID); err != nil {
		return err
	}
	_, err := fmt.Fprintf(a.stdout, "removed session %s (%s -> %s)\n", s.SessionID, s.FromTeam, s.ToTeam)
	return err
}

func sessionDeleteParams(s *models.Session) *mcp.CallToolParams {
	return &mcp.CallToolParams{Name: "session_delete", Arguments: map[string]any{"team": s.ToTeam, "fromTeam": s.FromTeam}}
}
