package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/broker"
)

func (a *app) askCommand() *cobra.Command {
	var (
		from    string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "ask [--from TEAM] [--timeout D] TEAM MESSAGE",
		Short: "Ask a team from the terminal; the answer goes to stdout",
		Long: "Ask TEAM a question through the daemon (starting it when needed) and print the answer on stdout.\n" +
			"Partial progress goes to stderr. MESSAGE \"-\" reads the message from stdin.\n" +
			"--timeout bounds the wait (default: the responseTimeout setting; 0 waits without limit); the answer is kept either way.",
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := checkTeamName("--from", from); err != nil {
				return err
			}
			if err := checkTeamName("TEAM", argv[0]); err != nil {
				return err
			}
			if cmd.Flags().Changed("timeout") && timeout < 0 {
				return usageError{fmt.Errorf("--timeout %s is negative; give a duration such as 5m, or 0 to wait without limit", timeout)}
			}
			var wait *time.Duration
			if cmd.Flags().Changed("timeout") {
				wait = &timeout
			}
			return a.ask(cmd.Context(), from, argv[0], argv[1], wait)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the asking team (default: the team whose path holds the working directory, else user)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long to wait for the answer (default: the responseTimeout setting; 0: no limit)")
	return cmd
}

func (a *app) ask(ctx context.Context, from, to, message string, wait *time.Duration) error {
	if message == "-" {
		data, err := io.ReadAll(a.stdin)
		if err != nil {
			return fmt.Errorf("read the message from stdin: %w", err)
		}
		message = string(data)
	}
	log := a.logger(slog.LevelWarn)
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	wd, _ := os.Getwd()
	caller := callerFor(cfg, from, wd)

	var progressMu sync.Mutex
	opts := &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
		if req.Params == nil || req.Params.Message == "" {
			return
		}
		progressMu.Lock()
		defer progressMu.Unlock()
		fmt.Fprintln(a.stderr, strings.TrimRight(req.Params.Message, "\n"))
	}}
	c, err := a.connect(ctx, cfg, path, caller, true, opts, log)
	if err != nil {
		return err
	}
	defer c.Close()

	arguments := map[string]any{"toTeam": to, "message": message}
	if wait != nil {
		arguments["timeout"] = wait.Milliseconds()
	}
	params := &mcp.CallToolParams{Name: "send_message", Arguments: arguments}
	params.SetProgressToken("ask")
	res, err := c.call(ctx, params)
	if err != nil {
		return err
	}
	var r broker.Reply
	if raw, err := json.Marshal(res.StructuredContent); err == nil {
		_ = json.Unmarshal(raw, &r)
	}
	if r.Status != "answered" {
		// Timed out or still queued: the text says how to fetch it later.
		return fmt.Errorf("%s", oneLine(resultText(res)))
	}
	text := resultText(res)
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	_, err = io.WriteString(a.stdout, text)
	return err
}
