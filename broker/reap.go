package broker

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/switchboard-mcp/switchboard/proc"
)

// reapScript kills the processes whose command line matches $1, TERM then
// KILL, and returns once they are gone (at most about 5 s). A host without
// pkill is left alone.
const reapScript = `command -v pkill >/dev/null 2>&1 || exit 0
pkill -f -- "$1" || exit 0
i=0
while pgrep -f -- "$1" >/dev/null && [ "$i" -lt 5 ]; do sleep 1; i=$((i+1)); done
pkill -KILL -f -- "$1"
exit 0`

// stalePattern matches the command line of a Claude process switchboard
// started for sessionID, in the order claudeArgs writes it (the session
// flag, then -p in stream-json mode), and not a person's interactive
// `claude --resume` of it. The bracket keeps the pattern from matching the
// command line of the shell that runs pkill with it.
func stalePattern(sessionID string) string {
	return "[-]-(resume|session-id) " + sessionID + " -p --input-format stream-json"
}

// reapStale stops any process still running Claude for sessionID on the
// team's host, left there by a killed daemon or a lost connection, before a
// new one resumes the session: two processes must never write one session.
func (b *Broker) reapStale(ctx context.Context, host Host, sessionID string) {
	if len(sessionID) < 2 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := host.Start(rctx, proc.Spec{Dir: "/", Command: "sh", Args: []string{"-c", reapScript, "sh", stalePattern(sessionID)}})
	if err != nil {
		b.log.Warn("could not look for stale claude processes", "session", sessionID, "where", host.Where(), "err", err)
		return
	}
	_ = p.Stdin().Close()
	go func() { _, _ = io.Copy(io.Discard, p.Stdout()) }()
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err = <-done:
	case <-rctx.Done():
		_ = p.Kill()
		err = <-done
	}
	if err != nil {
		b.log.Warn("stale claude processes may remain", "session", sessionID, "where", host.Where(), "err", fmt.Errorf("reap: %w", err))
	}
}
