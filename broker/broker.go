// Package broker routes messages between teams: a (fromTeam, toTeam) pair maps
// to one persistent Claude Code session, served by at most one pooled process,
// fed from a durable per-pair queue. It knows runners only through proc.Runner.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/models"
)

// Options are what New needs besides the config.
type Options struct {
	Store *models.Store
	// Hosts says where each team lives (package hosts).
	Hosts  Hosts
	Logger *slog.Logger
	// Logs, when set, is the ring the get_logs tool reads; Logger should
	// write into it (see LogRing.Handler).
	Logs *LogRing
	// ServeSessions, when set, is called once by New, before any Claude
	// starts, with SessionHandler: the wiring serves it where each team's
	// Claude can reach it (package hosts), and every Claude process then
	// gets switchboard's tools with a credential of its own.
	ServeSessions func(http.Handler)
	// Fleet names this broker among the brokers sharing its store; used
	// only when the store is shared (fleet.go).
	Fleet FleetOptions
	// Stages, when set, is called as each message passes each Stage, on
	// the goroutine that got it there; it must return at once. For
	// benchmarks: leave it nil otherwise.
	Stages func(id uint64, s Stage, at time.Time)
}

// Broker owns the process pool and the per-pair workers.
type Broker struct {
	// cfg is swapped whole by Reload; read it through config().
	cfg   atomic.Pointer[configs.Config]
	store *models.Store
	hosts Hosts
	log   *slog.Logger
	logs  *LogRing
	perms permissions

	serveSessions func(http.Handler)
	asks          askBack // session credentials (askback.go)
	// servers are the MCP servers of callers without a session
	// credential, one per caller, shared by its connections (NewMCPServer).
	servers sync.Map

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	slots     chan struct{} // one token per live process (maxProcesses)
	idlePulse chan struct{} // a process became idle or stopped
	full      storeHealth   // the store refused writes: disk full

	standby standbyPool // standby.go
	events  changes     // Changes subscribers
	fleet   *fleet      // nil unless the store is shared (fleet.go)

	mu      sync.Mutex
	pairs   map[pairKey]*pair
	waiters map[uint64][]*waiter
	// early keeps outcomes that notify found no waiter for while a Send was
	// between its commit and its waiter (registering > 0; send.go).
	early       map[uint64]waitResult
	registering int
	// retired are pairs of changed or removed teams whose workers are
	// still finishing; a new pair for the key waits for them (reload.go).
	retired map[pairKey]*pair
	// reloadMu serialises Reload.
	reloadMu sync.Mutex

	// testAfterEnqueue, set by tests only, runs between a message's commit
	// and the registration of its waiter. A field, not a package variable,
	// so tests that set it can run in parallel with the others.
	testAfterEnqueue func(b *Broker, m *models.Message)
	stages           func(id uint64, s Stage, at time.Time) // Options.Stages
}

type pairKey struct{ from, to string }

func (k pairKey) String() string { return k.from + "->" + k.to }

// New starts a broker with a loaded (defaulted and validated) config: stale process states are reset and queued messages left
// by an earlier run are picked up again.
func New(ctx context.Context, cfg *configs.Config, opts Options) (*Broker, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	bctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		store:     opts.Store,
		hosts:     opts.Hosts,
		log:       log,
		logs:      opts.Logs,
		ctx:       bctx,
		cancel:    cancel,
		slots:     make(chan struct{}, cfg.Settings.MaxProcesses),
		idlePulse: make(chan struct{}, 1),
		pairs:     make(map[pairKey]*pair),
		waiters:   make(map[uint64][]*waiter),
		retired:   make(map[pairKey]*pair),

		serveSessions: opts.ServeSessions,
		stages:        opts.Stages,
	}
	b.cfg.Store(cfg)
	started := time.Now()
	if err := b.startPermissions(ctx, started); err != nil {
		cancel()
		return nil, fmt.Errorf("expire old permission requests: %w", err)
	}
	// On a shared store the other brokers' sessions are live: startFleet
	// resets only the process states this broker may own.
	if !b.store.Shared() {
		if n, err := b.store.ResetProcessStates(ctx); err != nil {
			cancel()
			return nil, fmt.Errorf("reset process states: %w", err)
		} else if n > 0 {
			log.Info("reset process states left by an earlier run", "sessions", n)
		}
	}
	if b.serveSessions != nil {
		b.serveSessions(b.SessionHandler())
	}
	if err := b.startFleet(ctx, opts.Fleet, started); err != nil {
		cancel()
		return nil, err
	}
	if err := b.kickPending(ctx); err != nil {
		cancel()
		b.wg.Wait()
		b.stopFleet()
		return nil, err
	}
	b.wg.Add(1)
	go b.healthLoop()
	b.fillAllStandby()
	return b, nil
}

// Close stops every worker and Claude process and waits for them. Queued
// messages stay in the store for the next run.
func (b *Broker) Close() error {
	b.cancel()
	b.mu.Lock()
	pairs := make([]*pair, 0, len(b.pairs))
	for _, p := range b.pairs {
		pairs = append(pairs, p)
	}
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stopProcess(b, "broker shutting down")
		}()
	}
	wg.Wait()
	b.wg.Wait()
	b.stopFleet() // after the workers: no lease is given up mid-turn
	b.closeStandby()
	b.asks.bound.Wait() // every credential revoked, its file removed
	return nil
}

// Config returns the configuration the broker runs with.
func (b *Broker) Config() *configs.Config { return b.config() }

// config is the current configuration; Reload may replace it at any time,
// so a caller that needs two reads to agree keeps the pointer.
func (b *Broker) config() *configs.Config { return b.cfg.Load() }

// pairFor returns the pair's state, creating it and its worker on first use.
func (b *Broker) pairFor(from, to string) (*pair, error) {
	k := pairKey{from, to}
	// Under b.mu, so a Reload cannot retire the team between the lookup
	// and the new pair.
	b.mu.Lock()
	defer b.mu.Unlock()
	team, ok := b.config().Team(to)
	if !ok {
		return nil, b.unknownTeam(to)
	}
	if p, ok := b.pairs[k]; ok {
		return p, nil
	}
	if b.ctx.Err() != nil {
		return nil, ErrClosed
	}
	p := &pair{key: k, team: team, kick: make(chan struct{}, 1), state: models.ProcessStopped,
		retire: make(chan struct{}), gone: make(chan struct{})}
	if old := b.retired[k]; old != nil {
		p.after = old.gone
	}
	b.pairs[k] = p
	b.wg.Add(1)
	go b.work(p)
	return p, nil
}

// existingPair returns a pair's state if it has been used in this run.
func (b *Broker) existingPair(from, to string) *pair {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pairs[pairKey{from, to}]
}

func (b *Broker) kickPending(ctx context.Context) error {
	pairs, err := b.store.PendingPairs(ctx, time.Now())
	if err != nil {
		return fmt.Errorf("find queued messages: %w", err)
	}
	for _, pp := range pairs {
		if _, own := b.config().Team(pp.To); !own && b.fleet != nil {
			continue // another broker's team
		}
		p, err := b.pairFor(pp.From, pp.To)
		if err != nil {
			// A team removed from the config: its messages cannot be delivered.
			b.log.Warn("queued messages for a team that is no longer configured", "from", pp.From, "to", pp.To, "err", err)
			continue
		}
		p.poke()
	}
	return nil
}

// healthLoop stops idle processes, expires old queued messages and retries
// messages whose backoff has passed.
func (b *Broker) healthLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.config().Settings.HealthCheckInterval.Duration)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.healthCheck(b.ctx)
	}
}

func (b *Broker) healthCheck(ctx context.Context) {
	now := time.Now()
	b.expireStandby(now)
	b.mu.Lock()
	pairs := make([]*pair, 0, len(b.pairs))
	for _, p := range b.pairs {
		pairs = append(pairs, p)
	}
	b.mu.Unlock()
	for _, p := range pairs {
		idle := p.team.EffectiveIdleTimeout(b.config().Settings)
		if idle > 0 && p.idleSince(now) > idle {
			if p.stopIfIdle(b, "idle timeout") {
				b.log.Info("stopped idle claude", "pair", p.key, "idle", idle)
			}
		}
	}
	if n, err := b.store.ExpireMessages(ctx, now); err != nil {
		b.log.Error("expire queued messages", "err", err)
	} else if n > 0 {
		b.changed()
		b.log.Warn("queued messages expired undelivered", "count", n)
	}
	if err := b.kickPending(ctx); err != nil {
		b.log.Error("retry queued messages", "err", err)
	}
}

// acquireSlot reserves room for one more live process, stopping the least
// recently used idle process when the pool is full.
func (b *Broker) acquireSlot(ctx context.Context, self *pair) error {
	for {
		select {
		case b.slots <- struct{}{}:
			return nil
		default:
		}
		if b.evictOne(self) {
			continue
		}
		select {
		case b.slots <- struct{}{}:
			return nil
		case <-b.idlePulse:
		case <-ctx.Done():
			return fmt.Errorf("all %d claude processes are busy: %w", cap(b.slots), ctx.Err())
		}
	}
}

func (b *Broker) releaseSlot() {
	<-b.slots
	b.pulse()
}

func (b *Broker) pulse() {
	select {
	case b.idlePulse <- struct{}{}:
	default:
	}
}

// evictOne stops the least recently used idle process other than self's.
func (b *Broker) evictOne(self *pair) bool {
	if b.evictStandby() {
		return true
	}
	b.mu.Lock()
	var victim *pair
	var oldest time.Time
	for _, p := range b.pairs {
		if p == self {
			continue
		}
		if last, ok := p.idleLastUsed(); ok && (victim == nil || last.Before(oldest)) {
			victim, oldest = p, last
		}
	}
	b.mu.Unlock()
	if victim == nil {
		return false
	}
	if victim.stopIfIdle(b, "maxProcesses reached; least recently used") {
		b.log.Info("evicted idle claude", "pair", victim.key, "maxProcesses", cap(b.slots))
		return true
	}
	return false
}

// ErrClosed is returned once the broker is shutting down.
var ErrClosed = errors.New("broker is shutting down")
