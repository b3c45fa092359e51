package broker

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/models"
)

// Backoff bounds while the store is full: retrying at once filled the log
// with thousands of lines a minute and took a quarter of a core.
const (
	storeFullFirstWait = time.Second
	storeFullMaxWait   = time.Minute
)

// storeHealth remembers that the store refused writes because it is full,
// so workers pause (bounded exponential backoff) and team_status and
// doctor can say so. Cleared by the next write that succeeds.
type storeHealth struct {
	mu    sync.Mutex
	since time.Time     // first refusal of this episode; zero when healthy
	until time.Time     // workers wait until then
	delay time.Duration // the current backoff step
	err   error
}

// storeWrite handles the error of a store write that the caller cannot act
// on further: it is logged, and a full store starts or extends the backoff.
func (b *Broker) storeWrite(what string, err error, args ...any) {
	if err == nil || errors.Is(err, models.ErrNotFound) {
		return
	}
	if b.storeFault(err) {
		return // logged once per backoff step by storeFault
	}
	b.log.Warn(what, append(args, "err", err)...)
}

// storeFault reports whether err is the store being full; if so the
// workers back off (1 s doubling to 1 min), logging once per step however
// many writes fail meanwhile.
func (b *Broker) storeFault(err error) bool {
	if !errors.Is(err, models.ErrStoreFull) {
		return false
	}
	h := &b.full
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	h.err = err
	if now.Before(h.until) {
		return true // this step is already logged and waited for
	}
	if h.since.IsZero() {
		h.since = now
	}
	h.delay = min(max(2*h.delay, storeFullFirstWait), storeFullMaxWait)
	h.until = now.Add(h.delay)
	b.log.Error("store is full: message deliveries paused; free space where the database lives", "retry_in", h.delay, "full_since", h.since, "err", err)
	return true
}

// storeOK records a successful write: a full store has room again.
func (b *Broker) storeOK() {
	h := &b.full
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() {
		return
	}
	b.log.Info("store has space again; deliveries resume", "full_for", time.Since(h.since).Round(time.Second))
	h.since, h.until, h.delay, h.err = time.Time{}, time.Time{}, 0, nil
}

// storeFullWait is how long workers should still wait before writing.
func (b *Broker) storeFullWait() time.Duration {
	h := &b.full
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() {
		return 0
	}
	return max(time.Until(h.until), 0)
}

// StoreProblem says why the broker cannot write to its store now, or ""
// when it can as far as it knows; team_status and doctor show it.
func (b *Broker) StoreProblem() string {
	h := &b.full
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.since.IsZero() {
		return ""
	}
	return fmt.Sprintf("store is full since %s: deliveries are paused and retried every %s (%v); free disk space where the database lives", h.since.Format(time.RFC3339), h.delay, h.err)
}
