package broker

import (
	"context"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/poll"
)

// sendUntilFailedAttempt sends req as a waiting send_message whose wait ends
// once the message records a failed attempt, as a waiting asker's own
// timeout would end it. A fixed short Wait raced the first attempt, which
// under load (a real sshd's handshake, a slow process start) can come after
// it; the test then saw no error. poll.Deadline only bounds a hang.
func (h *harness) sendUntilFailedAttempt(req SendRequest) (*Reply, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	accepted := make(chan uint64, 1)
	req.Accepted = func(id uint64) { accepted <- id }
	req.Wait = poll.Deadline
	go func() {
		var id uint64
		select {
		case id = <-accepted:
		case <-ctx.Done():
			return
		}
		for ctx.Err() == nil {
			if m, err := h.b.Message(ctx, id); err == nil && m.Error != "" {
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return h.b.Send(ctx, req)
}
