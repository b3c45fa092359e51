package broker

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"time"

	"github.com/switchboard-mcp/switchboard/configs"
)

// ReloadResult says what a Reload changed.
type ReloadResult struct {
	Added, Removed, Changed []string
	// NeedRestart names settings that changed in the file but keep their
	// old value until the daemon restarts (the socket, the store, the pool
	// size, ...).
	NeedRestart []string
}

// Empty reports whether the reload changed nothing.
func (r ReloadResult) Empty() bool {
	return len(r.Added)+len(r.Removed)+len(r.Changed)+len(r.NeedRestart) == 0
}

// Reload switches the broker to cfg, a loaded (defaulted and validated)
// config, without disturbing pairs of teams that did not change: their
// processes keep running. A changed team's pairs finish the message they
// are answering, stop their process and start again with the new settings
// on next use; a removed team's pairs stop the same way and its queued
// messages stay queued (and are delivered if the team comes back). Settings
// that are read per use (timeouts, messageTTL, maxMessageBytes, ...) apply
// at once; the others are kept at their running value and listed in
// NeedRestart.
func (b *Broker) Reload(cfg *configs.Config) (ReloadResult, error) {
	if cfg == nil {
		return ReloadResult{}, errors.New("reload: no config")
	}
	b.reloadMu.Lock()
	defer b.reloadMu.Unlock()
	old := b.config()
	next := *cfg
	next.Teams = make(map[string]*configs.Team, len(cfg.Teams))
	var res ReloadResult
	for name, t := range cfg.Teams {
		prev, ok := old.Team(name)
		switch {
		case !ok:
			res.Added = append(res.Added, name)
			next.Teams[name] = t
		case reflect.DeepEqual(*prev, *t):
			// The same pointer, so live pairs and cached hosts stay valid.
			next.Teams[name] = prev
		default:
			res.Changed = append(res.Changed, name)
			next.Teams[name] = t
		}
	}
	for _, name := range old.TeamNames() {
		if _, ok := cfg.Teams[name]; !ok {
			res.Removed = append(res.Removed, name)
		}
	}
	res.NeedRestart = keepRestartSettings(&old.Settings, &next.Settings)
	slices.Sort(res.Added)
	slices.Sort(res.Changed)

	var retiring []*pair
	b.mu.Lock()
	b.cfg.Store(&next)
	for k, p := range b.pairs {
		if slices.Contains(res.Changed, k.to) || slices.Contains(res.Removed, k.to) {
			delete(b.pairs, k)
			b.retired[k] = p
			retiring = append(retiring, p)
		}
	}
	b.mu.Unlock()
	for _, p := range retiring {
		close(p.retire)
	}
	for _, name := range res.Removed {
		b.logQueuedFor(name)
	}
	// Standby processes were started with the old team's flags (or for a
	// team that is gone); added teams get theirs now.
	for _, name := range slices.Concat(res.Changed, res.Removed) {
		b.retireStandby(name)
	}
	for _, name := range res.Added {
		if t, ok := b.config().Team(name); ok {
			b.fillStandby(t)
		}
	}
	b.reregister()
	return res, nil
}

// keepRestartSettings copies into next the settings that only a restart
// applies, and names those that differ.
func keepRestartSettings(old, next *configs.Settings) []string {
	var changed []string
	keep := func(name string, o, n any, restore func()) {
		if !reflect.DeepEqual(o, n) {
			changed = append(changed, name)
			restore()
		}
	}
	keep("database", old.Database, next.Database, func() { next.Database = old.Database })
	keep("socket", old.Socket, next.Socket, func() { next.Socket = old.Socket })
	keep("httpAddr", old.HTTPAddr, next.HTTPAddr, func() { next.HTTPAddr = old.HTTPAddr })
	keep("sshConfig", old.SSHConfig, next.SSHConfig, func() { next.SSHConfig = old.SSHConfig })
	keep("maxProcesses", old.MaxProcesses, next.MaxProcesses, func() { next.MaxProcesses = old.MaxProcesses })
	keep("healthCheckInterval", old.HealthCheckInterval, next.HealthCheckInterval, func() { next.HealthCheckInterval = old.HealthCheckInterval })
	keep("logLevel", old.LogLevel, next.LogLevel, func() { next.LogLevel = old.LogLevel })
	keep("dashboard", old.Dashboard, next.Dashboard, func() { next.Dashboard = old.Dashboard })
	keep("fleet", old.Fleet, next.Fleet, func() { next.Fleet = old.Fleet })
	return changed
}

// logQueuedFor says, per asking team, that messages for a removed team stay
// queued.
func (b *Broker) logQueuedFor(team string) {
	horizon := time.Now().Add(b.config().Settings.MessageTTL.Duration)
	pairs, err := b.store.PendingPairs(b.ctx, horizon)
	if err != nil {
		b.log.Warn("list queued messages of a removed team", "team", team, "err", err)
		return
	}
	for _, pp := range pairs {
		if pp.To == team {
			b.log.Warn("team removed from the config; its queued messages stay queued until it is configured again or they expire",
				"from", pp.From, "to", team)
		}
	}
}

func (p *pair) retired() bool {
	select {
	case <-p.retire:
		return true
	default:
		return false
	}
}

// waitPrevious waits until the retired pair this one replaces has stopped
// its process, so one session never has two; false when the broker closes.
func (b *Broker) waitPrevious(p *pair) bool {
	if p.after == nil {
		return true
	}
	select {
	case <-p.after:
		return true
	case <-b.ctx.Done():
		return false
	}
}

// workerExit ends a pair's worker. A retired pair stops its process, and
// hands any queued messages to the pair that replaces it.
func (b *Broker) workerExit(p *pair) {
	defer close(p.gone)
	if !p.retired() {
		return
	}
	p.stopProcess(b, "team changed or removed in the config")
	b.mu.Lock()
	if b.retired[p.key] == p {
		delete(b.retired, p.key)
	}
	b.mu.Unlock()
	if b.ctx.Err() != nil {
		return
	}
	if _, ok := b.config().Team(p.key.to); !ok {
		// Its last turn is over: another broker may take the pair now.
		b.releaseLease(p.key)
		return
	}
	pending, err := b.store.PendingPairs(context.Background(), time.Now())
	if err != nil {
		b.log.Warn("look for queued messages after a reload", "pair", p.key, "err", err)
		return
	}
	for _, pp := range pending {
		if pp.From == p.key.from && pp.To == p.key.to {
			if next, err := b.pairFor(pp.From, pp.To); err == nil {
				next.poke()
			}
		}
	}
}
