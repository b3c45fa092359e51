package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/broker"
)

// fetchHint is how a user fetches a message's answer from the terminal.
func fetchHint(id uint64) string { return fmt.Sprintf("switchboard message %d", id) }

func (a *app) messageCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "message ID",
		Short: "Show what became of a message, with its answer",
		Long: "Show a message's status (queued, running, answered, failed, expired) and, once answered, print the answer on stdout.\n" +
			"`switchboard ask` prints the id on stderr as soon as the daemon accepts a message, so an ask that was cut short can be fetched here.",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			id, err := strconv.ParseUint(argv[0], 10, 64)
			if err != nil || id == 0 {
				return usageError{fmt.Errorf("message id %q: give the number `switchboard ask` printed", argv[0])}
			}
			return a.message(cmd.Context(), id)
		},
	}
}

func (a *app) message(ctx context.Context, id uint64) error {
	log := a.logger(slog.LevelWarn)
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	wd, _ := os.Getwd()
	// start: a daemon that died with the message in flight is started again,
	// which settles the message from the session file.
	c, err := a.connect(ctx, cfg, path, callerFor(cfg, "", wd), true, nil, log)
	if err != nil {
		return err
	}
	defer c.Close()
	var r broker.Reply
	if err := c.callJSON(ctx, "message_status", map[string]any{"messageId": id}, &r); err != nil {
		return err
	}
	return a.printMessage(&r)
}

// printMessage prints an answered message's answer on stdout and anything
// else as one line on stderr with a non-zero exit.
func (a *app) printMessage(r *broker.Reply) error {
	switch r.Status {
	case "answered":
		text := r.Answer
		if len(text) == 0 || text[len(text)-1] != '\n' {
			text += "\n"
		}
		_, err := fmt.Fprint(a.stdout, text)
		return err
	case "failed", "expired":
		return fmt.Errorf("message %d to %s %s: %s", r.MessageID, r.To, r.Status, oneLine(r.Error))
	}
	msg := fmt.Sprintf("message %d to %s is %s; run `%s` again later", r.MessageID, r.To, r.Status, fetchHint(r.MessageID))
	if r.Error != "" {
		msg += " (last delivery attempt: " + oneLine(r.Error) + ")"
	}
	return fmt.Errorf("%s", msg)
}
