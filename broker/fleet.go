package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/models"
)

// A fleet is several brokers sharing one Postgres store (FLEET.md): each
// runs the teams of its own config, and asks teams the others run through
// the shared queue. Everything in this file is off unless store.Shared():
// a broker on SQLite behaves exactly as it did before fleets existed.
//
// Who delivers a pair's messages is a lease in the store. A broker takes the
// lease before its worker writes a message to Claude and keeps it (renewed
// by its heartbeat) until it stops, so a session stays on one broker; when
// a broker dies its leases expire and another broker that runs the team
// takes the pair over, the session file deciding (as after a restart)
// whether a running message was answered.

// FleetOptions name this broker among the brokers sharing its store. They
// are used only when the store is shared (Postgres).
type FleetOptions struct {
	// Name is this broker's name in the fleet (settings.fleet.name).
	Name string
	// LeaseTTL is how long a broker's pairs stay its own after its last
	// heartbeat (settings.fleet.leaseTTL).
	LeaseTTL time.Duration
	// ConfigFile and Version are shown to the other brokers (and doctor).
	ConfigFile string
	Version    string
}

// fleet is a broker's part in a fleet; nil on an unshared store.
type fleet struct {
	opts FleetOptions

	mu sync.Mutex
	// held are the pairs whose lease this broker holds, each with the time
	// until which it may deliver without asking the store again: the
	// lease's expiry less a margin, so that no other broker can have taken
	// the pair over by then even if the next renewal fails.
	held map[pairKey]time.Time
	// crashed, set by tests, makes Close leave the broker's record and
	// leases as a killed broker leaves them.
	crashed bool
}

// leaseMargin is how long before its lease expires a broker stops counting
// on it: one heartbeat period.
func (f *fleet) leaseMargin() time.Duration { return f.opts.LeaseTTL / 3 }

// startFleet registers the broker and starts its heartbeat and its listener.
// It runs before the first kickPending, so no note is missed in between.
func (b *Broker) startFleet(ctx context.Context, opts FleetOptions) error {
	if !b.store.Shared() {
		return nil
	}
	if opts.Name == "" {
		return errors.New("the store is shared (postgres) but this broker has no fleet name: set settings.fleet.name")
	}
	if opts.LeaseTTL <= 0 {
		return fmt.Errorf("settings.fleet.leaseTTL is %s; it must be positive", opts.LeaseTTL)
	}
	f := &fleet{opts: opts, held: make(map[pairKey]time.Time)}
	if err := b.register(ctx, f); err != nil {
		return err
	}
	b.releaseForeign(ctx, f)
	notes, err := b.store.Listen(b.ctx)
	if err != nil {
		_ = b.store.StopBroker(context.Background(), opts.Name, time.Now())
		return fmt.Errorf("listen for the fleet's messages: %w", err)
	}
	b.fleet = f
	b.wg.Add(2)
	go b.heartbeatLoop()
	go b.listenLoop(notes)
	b.log.Info("joined the fleet", "broker", opts.Name, "leaseTTL", opts.LeaseTTL, "teams", strings.Join(b.config().TeamNames(), ","))
	return nil
}

// register writes (or, after a reload, rewrites) the broker's record with
// the teams of its current config.
func (b *Broker) register(ctx context.Context, f *fleet) error {
	host, _ := os.Hostname()
	teams, _ := json.Marshal(b.config().TeamNames())
	r := models.BrokerRecord{Name: f.opts.Name, Host: host, PID: os.Getpid(), ConfigFile: f.opts.ConfigFile, Teams: string(teams), Version: f.opts.Version}
	if err := b.store.RegisterBroker(ctx, r, time.Now(), f.opts.LeaseTTL); err != nil {
		return fmt.Errorf("register broker %q in the shared store: %w", f.opts.Name, err)
	}
	return nil
}

// releaseForeign gives up the leases an earlier run under this name left on
// pairs of teams this config no longer runs: the heartbeat would otherwise
// renew them for ever and no broker could deliver those pairs.
func (b *Broker) releaseForeign(ctx context.Context, f *fleet) {
	leases, err := b.store.Leases(ctx)
	if err != nil {
		b.log.Warn("look for leases left by an earlier run", "err", err)
		return
	}
	for _, l := range leases {
		if _, own := b.config().Team(l.ToTeam); l.Owner == f.opts.Name && !own {
			b.releaseLease(pairKey{l.FromTeam, l.ToTeam})
		}
	}
}

// releaseLease gives up a pair's lease, once this broker has nothing more
// to deliver for it (its team left the config).
func (b *Broker) releaseLease(k pairKey) {
	f := b.fleet
	if f == nil {
		return
	}
	f.mu.Lock()
	delete(f.held, k)
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.store.ReleaseLease(ctx, models.Pair{From: k.from, To: k.to}, f.opts.Name); err != nil {
		b.log.Warn("release the lease of a pair this broker no longer runs; it passes to another broker when this one stops", "pair", k, "err", err)
		return
	}
	b.log.Info("released the lease of a pair whose team left the config", "pair", k)
}

// stopFleet marks a clean shutdown, which releases the broker's leases at
// once instead of after leaseTTL. It runs after every worker has stopped.
func (b *Broker) stopFleet() {
	f := b.fleet
	if f == nil {
		return
	}
	f.mu.Lock()
	crashed := f.crashed
	f.held = map[pairKey]time.Time{}
	f.mu.Unlock()
	if crashed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.store.StopBroker(ctx, f.opts.Name, time.Now()); err != nil {
		b.log.Warn("record the broker's shutdown in the shared store; its pairs pass to other brokers after leaseTTL", "broker", f.opts.Name, "err", err)
	}
}

// heartbeatLoop renews the broker's record and every lease it holds each
// third of leaseTTL.
func (b *Broker) heartbeatLoop() {
	defer b.wg.Done()
	f := b.fleet
	t := time.NewTicker(f.opts.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		// A store that hangs must not hold the loop: checkLapsed has to run
		// before the leases expire.
		hctx, cancel := context.WithTimeout(b.ctx, f.opts.LeaseTTL/3)
		err := errStoreDownForTest
		if testStoreDown == nil || !testStoreDown(b) {
			err = b.store.HeartbeatBroker(hctx, f.opts.Name, now, f.opts.LeaseTTL)
		}
		if errors.Is(err, models.ErrNotFound) {
			// The record was removed behind this broker's back: write it
			// again (its leases, if any, went with it and are taken anew).
			err = b.register(hctx, f)
		}
		cancel()
		if err != nil && b.ctx.Err() == nil {
			b.log.Warn("fleet heartbeat failed; this broker stops delivering when its leases run out", "broker", f.opts.Name, "err", err)
		}
		if err == nil {
			until := now.Add(f.opts.LeaseTTL - f.leaseMargin())
			f.mu.Lock()
			for k, u := range f.held {
				if u.After(now) { // a lapsed lease may be another broker's by now
					f.held[k] = until
				}
			}
			f.mu.Unlock()
		}
		b.checkLapsed(now)
	}
}

// checkLapsed stops the processes of pairs whose lease this broker can no
// longer count on (the store was out of reach too long), before another
// broker can take them over: two processes on one session would both write
// its file. It looks a sixth of leaseTTL ahead, so a late tick still
// comes before the lease itself expires in the store.
func (b *Broker) checkLapsed(now time.Time) {
	f := b.fleet
	var lapsed []pairKey
	f.mu.Lock()
	for k, u := range f.held {
		if u.Before(now.Add(f.opts.LeaseTTL / 6)) {
			lapsed = append(lapsed, k)
		}
	}
	f.mu.Unlock()
	for _, k := range lapsed {
		p := b.existingPair(k.from, k.to)
		if p == nil {
			continue
		}
		f.mu.Lock()
		delete(f.held, k) // so mayDeliver asks the store
		f.mu.Unlock()
		actx, cancel := context.WithTimeout(b.ctx, f.opts.LeaseTTL/6)
		ok, _ := b.mayDeliver(actx, p)
		cancel()
		if ok || b.ctx.Err() != nil {
			continue
		}
		p.mu.Lock()
		busy, running := p.busy, p.cl != nil
		if busy {
			// The turn's end is not this broker's to record: the pair's
			// next owner settles the message from the session file.
			p.leaseLost = true
		}
		p.mu.Unlock()
		if running {
			b.log.Warn("lost the pair's fleet lease; stopping its claude so the broker that takes it over is the only one on the session", "pair", k, "busy", busy)
			// Its process is killed at once; recording that waits for the
			// store, which must not hold up the other pairs' check.
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				p.stopProcess(b, "lost the fleet lease")
			}()
		}
	}
}

// testStoreDown, set by tests only, makes the broker's lease and heartbeat
// writes fail as if the store were out of reach.
var testStoreDown func(b *Broker) bool

var errStoreDownForTest = errors.New("store out of reach (test)")

// listenLoop acts on the notes every broker's store writes send: a message
// queued for a team this broker runs wakes its pair; a finished message
// wakes its local waiters; after a reconnection (notes may have been
// missed) everything is looked at again.
func (b *Broker) listenLoop(notes <-chan models.Note) {
	defer b.wg.Done()
	for n := range notes {
		if testDropNote != nil && testDropNote(b, n) {
			continue
		}
		switch n.Kind {
		case models.NoteQueued:
			if _, ok := b.config().Team(n.Pair.To); ok {
				if p, err := b.pairFor(n.Pair.From, n.Pair.To); err == nil {
					p.poke()
				}
			}
		case models.NoteFinished:
			b.settleWaiters(n.MessageID)
		case models.NoteResync:
			b.log.Info("fleet notifications reconnected; looking for missed messages")
			if err := b.kickPending(b.ctx); err != nil && b.ctx.Err() == nil {
				b.log.Warn("look for queued messages after a reconnection", "err", err)
			}
			b.mu.Lock()
			ids := make([]uint64, 0, len(b.waiters))
			for id := range b.waiters {
				ids = append(ids, id)
			}
			b.mu.Unlock()
			for _, id := range ids {
				b.settleWaiters(id)
			}
		}
		b.changed()
	}
}

// testDropNote, set by tests only, drops the notes it returns true for, as
// a lost notification would.
var testDropNote func(b *Broker, n models.Note) bool

// settleWaiters tells a message's local waiters its outcome when another
// broker (or this one) has finished it.
func (b *Broker) settleWaiters(id uint64) {
	b.mu.Lock()
	_, waited := b.waiters[id]
	b.mu.Unlock()
	if !waited {
		return
	}
	m, err := b.store.MessageByID(b.ctx, id)
	if err != nil {
		if b.ctx.Err() == nil {
			b.log.Warn("read a message another broker finished", "id", id, "err", err)
		}
		return
	}
	if m.Status.Final() {
		b.notify(id, m, nil)
	}
}

// mayDeliver reports whether this broker holds p's lease now, taking it when
// it is free; when another broker holds it, wait is how long until that
// lease would expire.
func (b *Broker) mayDeliver(ctx context.Context, p *pair) (ok bool, wait time.Duration) {
	f := b.fleet
	if f == nil {
		return true, 0
	}
	now := time.Now()
	f.mu.Lock()
	until, cached := f.held[p.key]
	f.mu.Unlock()
	if cached && now.Before(until) {
		return true, 0
	}
	var (
		l    models.Lease
		held bool
		err  = errStoreDownForTest
	)
	if testStoreDown == nil || !testStoreDown(b) {
		l, held, err = b.store.AcquireLease(ctx, models.Pair{From: p.key.from, To: p.key.to}, f.opts.Name, now, f.opts.LeaseTTL)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err != nil:
		delete(f.held, p.key)
		if ctx.Err() == nil {
			b.log.Warn("take the pair's lease; delivery waits", "pair", p.key, "err", err)
		}
		return false, f.leaseMargin()
	case held:
		f.held[p.key] = now.Add(f.opts.LeaseTTL - f.leaseMargin())
		return true, 0
	default:
		delete(f.held, p.key)
		wait = max(l.ExpiresAt.Sub(now)+10*time.Millisecond, 10*time.Millisecond)
		b.log.Debug("pair delivered by another broker", "pair", p.key, "owner", l.Owner, "expires", l.ExpiresAt)
		return false, wait
	}
}

// teamHome is where a team this broker does not run is run in the fleet.
type teamHome struct {
	Broker    string
	Alive     bool
	Heartbeat time.Time
}

// fleetTeams returns the teams other brokers list and do not appear in this
// broker's config, each with the broker that runs it (a live one when
// several list it). It is empty on an unshared store.
func (b *Broker) fleetTeams(ctx context.Context) (map[string]teamHome, error) {
	f := b.fleet
	if f == nil {
		return nil, nil
	}
	recs, err := b.store.Brokers(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the fleet's brokers: %w", err)
	}
	cfg := b.config()
	now := time.Now()
	out := make(map[string]teamHome)
	for _, r := range recs {
		if r.Name == f.opts.Name {
			continue
		}
		alive := r.Alive(now, f.opts.LeaseTTL)
		for _, t := range r.TeamNames() {
			if _, own := cfg.Team(t); own {
				continue
			}
			if cur, ok := out[t]; ok && (cur.Alive || !alive) {
				continue
			}
			out[t] = teamHome{Broker: r.Name, Alive: alive, Heartbeat: r.HeartbeatAt}
		}
	}
	return out, nil
}

// route checks a pair as it arrives from a caller. For a team this broker
// does not run, it returns where the fleet runs it (nil home: a team of
// this broker's own).
func (b *Broker) route(ctx context.Context, from, to string) (*teamHome, error) {
	err := b.checkPair(from, to)
	if b.fleet == nil || !errors.Is(err, ErrUnknownTeam) {
		return nil, err
	}
	others, ferr := b.fleetTeams(ctx)
	if ferr != nil {
		return nil, fmt.Errorf("%w (and the fleet's teams could not be read: %v)", err, ferr)
	}
	if h, ok := others[to]; ok {
		return &h, nil
	}
	return nil, b.unknownTeamIn(others, to)
}

// checkHere is checkPair for the tools that act on a pair's process or
// session file, which only the broker running the team can reach: a team
// another broker runs is named with that broker.
func (b *Broker) checkHere(ctx context.Context, from, to string) error {
	home, err := b.route(ctx, from, to)
	if err != nil || home == nil {
		return err
	}
	return fmt.Errorf("team %s is run by broker %s of the fleet, which alone has its processes and session files: ask that broker (its switchboard CLI or MCP server)", to, home.Broker)
}

// unknownTeamIn is unknownTeam listing the fleet's teams as well.
func (b *Broker) unknownTeamIn(others map[string]teamHome, name string) error {
	if b.fleet == nil {
		return b.unknownTeam(name)
	}
	names := slices.Concat(b.config().TeamNames(), slices.Collect(mapKeys(others)))
	slices.Sort(names)
	return fmt.Errorf("%w %q; teams in the fleet are: %s", ErrUnknownTeam, name, strings.Join(slices.Compact(names), ", "))
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// deadNote says that the broker running a team is not alive.
func (h teamHome) deadNote(team string) string {
	return fmt.Sprintf("team %s is run by broker %s, which is not alive (last heartbeat %s ago); the message stays queued until that broker is back or the message expires",
		team, h.Broker, time.Since(h.Heartbeat).Round(time.Second))
}

// fleetNote is message_status's note on a message still queued for a team
// whose broker is not alive; "" otherwise.
func (b *Broker) fleetNote(ctx context.Context, m *models.Message) string {
	if b.fleet == nil || m.Status.Final() {
		return ""
	}
	if _, own := b.config().Team(m.ToTeam); own {
		return ""
	}
	others, err := b.fleetTeams(ctx)
	if err != nil {
		return ""
	}
	if h, ok := others[m.ToTeam]; ok && !h.Alive {
		return h.deadNote(m.ToTeam)
	}
	return ""
}

// fleetInfo lists the teams other brokers run, for list_teams.
func (b *Broker) fleetInfo(ctx context.Context) []TeamInfo {
	others, err := b.fleetTeams(ctx)
	if err != nil {
		b.log.Warn("list the fleet's teams", "err", err)
		return nil
	}
	var out []TeamInfo
	for _, name := range slices.Sorted(mapKeys(others)) {
		out = append(out, fleetTeamInfo(name, others[name]))
	}
	return out
}

func fleetTeamInfo(name string, h teamHome) TeamInfo {
	return TeamInfo{Name: name, Where: "broker " + h.Broker, Broker: h.Broker, BrokerAlive: ptr(h.Alive)}
}

// ownInfo marks a team of this broker's own config, in a fleet.
func (b *Broker) ownInfo(ti *TeamInfo) {
	if b.fleet != nil {
		ti.Broker, ti.BrokerAlive = b.fleet.opts.Name, ptr(true)
	}
}

// reregister updates the broker's record after a reload and picks up
// messages queued for teams it now runs.
func (b *Broker) reregister() {
	f := b.fleet
	if f == nil {
		return
	}
	if err := b.register(b.ctx, f); err != nil {
		b.log.Warn("update this broker's teams in the shared store; other brokers see the old list until the next reload", "err", err)
	}
	if err := b.kickPending(b.ctx); err != nil {
		b.log.Warn("look for queued messages after a reload", "err", err)
	}
}

// decidedElsewhere refuses, in a fleet, a decision on a permission request
// another live broker's Claude waits for: that broker alone would hear of
// it (its turn waits in memory), so recording it here would show a
// decision the team never got.
func (b *Broker) decidedElsewhere(ctx context.Context, id uint64) error {
	f := b.fleet
	if f == nil {
		return nil
	}
	b.perms.mu.Lock()
	_, here := b.perms.waits[id]
	b.perms.mu.Unlock()
	if here {
		return nil
	}
	r, err := b.store.PermissionByID(ctx, id)
	if err != nil || r.Status != models.PermissionPending {
		return nil // DecidePermission says what is wrong
	}
	leases, err := b.store.Leases(ctx)
	if err != nil {
		return fmt.Errorf("find which broker of the fleet waits for permission request %d: %w", id, err)
	}
	now := time.Now()
	for _, l := range leases {
		if l.FromTeam == r.FromTeam && l.ToTeam == r.ToTeam && l.Owner != f.opts.Name && now.Before(l.ExpiresAt) {
			return fmt.Errorf("permission request %d (team %s) waits on broker %s of the fleet: decide it there (its switchboard approve/deny, permissions_decide or dashboard)", id, r.ToTeam, l.Owner)
		}
	}
	return nil
}

// pairElsewhere refuses, in a fleet, to act on a session whose lease
// another broker holds: its process runs there, and a second one here (or
// its session deleted from under it) would break the conversation.
func (b *Broker) pairElsewhere(ctx context.Context, from, to string) error {
	f := b.fleet
	if f == nil {
		return nil
	}
	leases, err := b.store.Leases(ctx)
	if err != nil {
		return fmt.Errorf("find which broker of the fleet runs the %s->%s session: %w", from, to, err)
	}
	now := time.Now()
	for _, l := range leases {
		if l.FromTeam == from && l.ToTeam == to && l.Owner != f.opts.Name && now.Before(l.ExpiresAt) {
			return fmt.Errorf("the %s->%s session is run by broker %s of the fleet, which holds it while it is alive: do this there", from, to, l.Owner)
		}
	}
	return nil
}
