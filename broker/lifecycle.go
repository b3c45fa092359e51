package broker

import (
	"context"
	"fmt"
	"sync"

	"github.com/switchboard-mcp/switchboard/models"
)

// Wake starts the pair's process, or keeps the one that runs.
func (b *Broker) Wake(ctx context.Context, from, to string) (*PairStatus, error) {
	if err := b.checkHere(ctx, from, to); err != nil {
		return nil, err
	}
	p, err := b.pairFor(from, to)
	if err != nil {
		return nil, err
	}
	// In a fleet, a session's process runs on the broker that has its lease.
	if err := b.pairElsewhere(ctx, from, to); err != nil {
		return nil, err
	}
	if ok, _ := b.mayDeliver(ctx, p); !ok {
		return nil, fmt.Errorf("the %s->%s session could not be taken for this broker (see its log); try again", from, to)
	}
	if _, _, err := b.ensureProcess(ctx, p, false); err != nil {
		return nil, err
	}
	s, err := b.store.SessionByPair(ctx, from, to)
	if err != nil {
		return nil, err
	}
	ps := b.pairStatus(*s)
	return &ps, nil
}

// WakeResult is one team's outcome in WakeAll.
type WakeResult struct {
	Team   string      `json:"team"`
	Status *PairStatus `json:"status,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// WakeAll wakes every team for from. In parallel the pool bound still holds:
// at most maxProcesses start at once.
func (b *Broker) WakeAll(ctx context.Context, from string, parallel bool) []WakeResult {
	names := b.config().TeamNames()
	out := make([]WakeResult, len(names))
	limit := 1
	if parallel {
		limit = cap(b.slots)
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i].Team = n
			st, err := b.Wake(ctx, from, n)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Status = st
		}()
	}
	wg.Wait()
	return out
}

// Sleep stops the pair's process. Without force it refuses while a turn runs.
func (b *Broker) Sleep(ctx context.Context, from, to string, force bool) (bool, error) {
	if err := b.checkHere(ctx, from, to); err != nil {
		return false, err
	}
	p := b.existingPair(from, to)
	if p == nil {
		return false, nil
	}
	p.mu.Lock()
	running, busy, cur := p.cl != nil, p.busy, p.current
	p.mu.Unlock()
	if !running {
		return false, nil
	}
	if busy && !force {
		return false, fmt.Errorf("team %s is answering message %d for %s; wait, cancel it with session_cancel, or sleep with force", to, cur, from)
	}
	p.stopProcess(b, "team_sleep")
	return true, nil
}

// Cancel interrupts the pair's running turn; the process stays up.
func (b *Broker) Cancel(ctx context.Context, from, to string) (uint64, error) {
	if err := b.checkHere(ctx, from, to); err != nil {
		return 0, err
	}
	p := b.existingPair(from, to)
	if p == nil {
		return 0, fmt.Errorf("nothing to cancel: no process for %s->%s", from, to)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cl == nil || !p.busy {
		return 0, fmt.Errorf("nothing to cancel: team %s is not answering %s", to, from)
	}
	p.cancelled = true
	if p.turnStarted {
		if err := p.cl.interrupt(); err != nil {
			return 0, fmt.Errorf("interrupt %s->%s: %w", from, to, err)
		}
	}
	return p.current, nil
}

// Reboot gives the pair a new session id and a fresh process. The old
// session file is kept.
func (b *Broker) Reboot(ctx context.Context, from, to string) (old, fresh string, err error) {
	if err := b.checkHere(ctx, from, to); err != nil {
		return "", "", err
	}
	if s, err := b.store.SessionByPair(ctx, from, to); err == nil {
		old = s.SessionID
	}
	p, err := b.pairFor(from, to)
	if err != nil {
		return "", "", err
	}
	// The fresh process runs here: in a fleet that needs the pair's lease.
	if err := b.pairElsewhere(ctx, from, to); err != nil {
		return "", "", err
	}
	if ok, _ := b.mayDeliver(ctx, p); !ok {
		return "", "", fmt.Errorf("the %s->%s session could not be taken for this broker (see its log); try again", from, to)
	}
	p.mu.Lock()
	busy := p.busy
	p.mu.Unlock()
	if busy {
		return "", "", fmt.Errorf("team %s is answering %s; cancel the turn with session_cancel first", to, from)
	}
	p.stopProcess(b, "session_reboot")
	s, err := b.store.ReplaceSessionID(ctx, from, to, models.NewSessionID())
	if err != nil {
		return "", "", fmt.Errorf("new session for %s->%s: %w", from, to, err)
	}
	if _, _, err := b.ensureProcess(ctx, p, false); err != nil {
		return old, s.SessionID, err
	}
	return old, s.SessionID, nil
}
