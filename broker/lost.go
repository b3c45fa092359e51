package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/models"
	"github.com/switchboard-mcp/switchboard/proc"
)

// maxLostAttempts bounds how often one message is retried after its turn
// met a retryable fault; past it the message fails.
const maxLostAttempts = 5

// retryable reports whether a turn that failed with err met a fault of the
// moment, not the team's answer, and should be settled again rather than
// failed: its host's connection died, or Claude found its session in use.
func retryable(m *models.Message, err error) bool {
	return (errors.Is(err, proc.ErrConnectionLost) || sessionInUse(err)) && m.Attempts+1 < maxLostAttempts
}

// sessionInUse reports a Claude that refused to start with --session-id
// because the session's file exists. spawn looked for the file first, so
// another process wrote it since: one an earlier daemon started, still
// running on the host (a remote process outlives its killed daemon until
// its channel closes). The retry finds the file, stops that process and
// resumes.
func sessionInUse(err error) bool {
	return errors.Is(err, errProcessExited) && strings.Contains(err.Error(), "is already in use")
}

// retryLost puts back a message whose turn met a retryable fault. It stays
// on record as delivered, so the retry reads the session file first (as
// after a daemon crash): it takes an answer written there, asks again for
// one lost with the process, or delivers the message when it never arrived.
// Waiters keep waiting.
func (b *Broker) retryLost(m *models.Message, err error) {
	backoff := min(time.Duration(1<<min(m.Attempts, 6))*time.Second, time.Minute)
	next := time.Now().Add(backoff)
	b.log.Warn("turn failed for a passing reason; the message will be settled from the session file", "message", m.ID, "to", m.ToTeam, "retry_at", next, "err", err)
	b.storeWrite("requeue message after a lost connection", b.store.PostponeMessage(b.ctx, m.ID, next, err.Error()), "id", m.ID)
}

// connectionProblem explains a process that never began a turn when its
// host's connection is the cause: the process ended with a lost connection,
// or the host does not answer a ping. It returns nil when the host looks
// fine (then Claude itself is stuck).
func (b *Broker) connectionProblem(ctx context.Context, p *pair, cl *claude) error {
	select {
	case <-cl.done:
		if errors.Is(cl.err, proc.ErrConnectionLost) {
			return cl.err
		}
	default:
	}
	host, err := b.hosts.For(p.team)
	if err != nil {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if perr := host.Ping(pctx); perr != nil {
		if errors.Is(perr, context.DeadlineExceeded) {
			perr = errors.New("no answer to a keepalive within 5s")
		}
		return fmt.Errorf("SSH connection to %s lost: %w (%w)", host.Where(), perr, proc.ErrConnectionLost)
	}
	return nil
}
