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
			"The message id goes to stderr as soon as the daemon accepts the message (`switchboard status ID` fetches it later).\n" +
			"MESSAGE \"-\" reads the message from stdin.\n" +
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

	// The first progress notification carries the message id; partial
	// answers are not echoed (the answer goes to stdout once).
	var (
		idMu     sync.Mutex
		accepted uint64
	)
	opts := &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
		if req.Params == nil {
			return
		}
		id, ok := broker.ParseAccepted(req.Params.Message)
		if !ok {
			return
		}
		idMu.Lock()
		defer idMu.Unlock()
		if accepted == 0 {
			accepted = id
			fmt.Fprintf(a.stderr, "switchboard: message %d accepted; if this command is interrupted, fetch the answer with `%s`\n", id, fetchHint(id))
		}
	}}
	acceptedID := func() uint64 {
		idMu.Lock()
		defer idMu.Unlock()
		return accepted
	}
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
	res, err := c.sess.CallTool(ctx, params)
	if err != nil {
		// The call was lost (the daemon died, the connection broke): say
		// whether the message is safe in the queue.
		if id := acceptedID(); id != 0 {
			return fmt.Errorf("send_message: %w; message %d was accepted and is kept: fetch the answer with `%s`", err, id, fetchHint(id))
		}
		return fmt.Errorf("send_message: %w; no message id came back, so the message was most likely not accepted", err)
	}
	if res.IsError {
		// The tool's own text names the message when there is one.
		return fmt.Errorf("%s", oneLine(resultText(res)))
	}
	var r broker.Reply
	if raw, err := json.Marshal(res.StructuredContent); err == nil {
		_ = json.Unmarshal(raw, &r)
	}
	if r.Status != "answered" {
		// Timed out or still queued: say how to fetch it later.
		if r.MessageID == 0 {
			return fmt.Errorf("%s", oneLine(resultText(res)))
		}
		return a.printMessage(&r)
	}
	text := resultText(res)
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	_, err = io.WriteString(a.stdout, text)
	return err
}
