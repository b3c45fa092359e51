package main

import (
	"fmt"

	"github.com/switchboard-mcp/switchboard/broker"
)

// fetchHint is how a user fetches a message's answer from the terminal.
func fetchHint(id uint64) string { return fmt.Sprintf("switchboard status %d", id) }

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
