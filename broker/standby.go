package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/models"
	"github.com/switchboard-mcp/switchboard/proc"
)

// Standby Claude processes (settings.standby, team.standby): a first ask to
// a team costs a whole Claude Code start, about 1 s locally and 2 s over SSH.
// A standby process is started ahead of need in the team's path on its host
// with a fresh --session-id, warmed, and handed to the next new pair (a pair
// with no session record yet), whose record then gets that id.
//
// Rules, and why:
//   - A standby takes a free pool slot only; it never evicts a live pair, and
//     it is the first thing evicted when a pair needs a slot.
//   - It is warmed up without a request to the Messages API (warmUp,
//     claude_warm.go): a prompt that a hook added for it alone blocks, then
//     a local context-usage summary; /cost where Claude does not list that
//     hook as sure to block. Either writes a session file holding no
//     message (a system line, or local-command lines), which the transcript
//     reader skips; a later restart of the adopted session therefore uses
//     --resume.
//   - The replacement starts once the adopting pair's first turn is over, so
//     the two do not share the CPU when the answer matters most.
//   - The idle timeout stops a standby that waited that long; the team is
//     refilled at the next new pair to it, not at once, so an unused team does
//     not keep restarting processes.
//   - A retired or evicted standby that was never adopted has its session file
//     removed: nobody will resume it.
type standby struct {
	cl      *claude
	team    string
	host    Host
	launch  string
	started time.Time
	owner   *pair       // set (under standbyPool.mu) when a pair adopts it
	cred    *credential // its ask-back credential, or nil
	// warmedBy says how it was warmed up (claude_warm.go): a prompt a hook
	// blocked, or /cost where Claude did not list the hook as sure to block.
	warmedBy string
	gone     chan struct{} // closed once its slot is released or passed on
}

// standbyPool holds the ready standby processes of every team.
type standbyPool struct {
	mu       sync.Mutex
	ready    map[string][]*standby // team -> warmed and unclaimed, oldest first
	starting map[string]int        // team -> starts in flight
	gen      map[string]int        // team -> bumped by retireStandby
	closed   bool
	wg       sync.WaitGroup // starters and watchers
}

func (s *standbyPool) init() {
	if s.ready == nil {
		s.ready = map[string][]*standby{}
		s.starting = map[string]int{}
		s.gen = map[string]int{}
	}
}

// Standby reports how many standby processes are ready for team.
func (b *Broker) Standby(team string) int {
	b.standby.mu.Lock()
	defer b.standby.mu.Unlock()
	return len(b.standby.ready[team])
}

// fillAllStandby starts the standby processes every team asks for.
func (b *Broker) fillAllStandby() {
	for _, name := range b.config().TeamNames() {
		if t, ok := b.config().Team(name); ok {
			b.fillStandby(t)
		}
	}
}

// fillStandby starts as many processes as team lacks, in the background.
func (b *Broker) fillStandby(t *configs.Team) {
	want := t.EffectiveStandby(b.config().Settings)
	if want <= 0 {
		return
	}
	s := &b.standby
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if s.closed {
		return
	}
	for n := len(s.ready[t.Name]) + s.starting[t.Name]; n < want; n++ {
		s.starting[t.Name]++
		s.wg.Add(1)
		go b.startStandby(t, s.gen[t.Name])
	}
}

// startStandby starts and warms one standby process for t, if a pool slot
// is free.
func (b *Broker) startStandby(t *configs.Team, gen int) {
	s := &b.standby
	defer s.wg.Done()
	done := func() {
		s.mu.Lock()
		s.starting[t.Name]--
		s.mu.Unlock()
	}
	select {
	case b.slots <- struct{}{}:
	default:
		done()
		b.log.Debug("no free process slot for a standby claude", "team", t.Name, "maxProcesses", cap(b.slots))
		return
	}
	sb, err := b.spawnStandby(b.ctx, t)
	if err != nil {
		b.releaseSlot()
		done()
		if b.ctx.Err() == nil {
			b.log.Warn("standby claude did not start; the next new pair starts its own", "team", t.Name, "err", err)
		}
		return
	}
	s.mu.Lock()
	s.starting[t.Name]--
	keep := !s.closed && s.gen[t.Name] == gen && b.ctx.Err() == nil
	if keep {
		s.ready[t.Name] = append(s.ready[t.Name], sb)
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go b.watchStandby(sb)
	if !keep {
		b.discardStandby(sb, "retired while starting")
		return
	}
	b.pulse() // a start waiting for a slot may evict it now
	b.log.Info("standby claude ready", "team", t.Name, "session", sb.cl.sessionID, "where", sb.host.Where(), "pid", sb.cl.p.Pid(), "warmedBy", sb.warmedBy)
}

// spawnStandby starts Claude for t under a new session id and warms it up
// without an API request (warmUp). Its ask-back credential and its
// permission prompts belong to a stand-in pair (from "", to t) until a pair
// adopts it: both refuse anything while no message is being answered.
func (b *Broker) spawnStandby(ctx context.Context, t *configs.Team) (*standby, error) {
	host, err := b.hosts.For(t)
	if err != nil {
		return nil, fmt.Errorf("runner for team %s: %w", t.Name, err)
	}
	id := models.NewSessionID()
	sb := &standby{team: t.Name, host: host, gone: make(chan struct{})}
	standIn := &pair{key: pairKey{"", t.Name}, team: t, kick: make(chan struct{}, 1), state: models.ProcessIdle}
	permit := func(ctx context.Context, req *toolPrompt) promptAnswer {
		b.standby.mu.Lock()
		owner := sb.owner
		b.standby.mu.Unlock()
		if owner == nil {
			owner = standIn
		}
		return b.permit(ctx, owner, id, req)
	}
	args := b.claudeArgs(t, id, false)
	cred, askArgs := b.issueCredential(ctx, standIn, host)
	args = append(args, askArgs...)
	spec := proc.Spec{Dir: t.Path, Command: host.Claude(), Args: args, Env: t.Env, Nice: b.config().Settings.ClaudeNice}
	sctx, cancel := context.WithTimeout(ctx, b.config().Settings.SpawnTimeout.Duration)
	defer cancel()
	cl, err := startClaude(sctx, host, spec, id, permit)
	if err != nil {
		b.revoke(cred)
		return nil, fmt.Errorf("start standby claude for team %s on %s: %w", t.Name, host.Where(), err)
	}
	b.bindCredential(cl, cred)
	sb.cl, sb.cred = cl, cred
	sb.launch, sb.started = spec.Command+" "+strings.Join(args, " "), time.Now()
	wctx, wcancel := context.WithTimeout(ctx, t.EffectiveSessionInitTimeout(b.config().Settings))
	defer wcancel()
	sb.warmedBy, err = warmUp(wctx, cl)
	if err != nil {
		cl.stop(3 * time.Second)
		b.revokeFor(cl)
		b.removeStandbyFile(host, id)
		return nil, fmt.Errorf("warm standby claude for team %s on %s: %w", t.Name, host.Where(), err)
	}
	return sb, nil
}

// watchStandby waits for the process to exit and frees its slot, or hands
// the process to the pair that adopted it.
func (b *Broker) watchStandby(sb *standby) {
	s := &b.standby
	defer s.wg.Done()
	<-sb.cl.done
	s.mu.Lock()
	owner := sb.owner
	if owner == nil {
		s.drop(sb)
	}
	s.mu.Unlock()
	if owner != nil {
		b.watch(owner, sb.cl) // frees the slot and revokes the credential
	} else {
		b.releaseSlot()
		b.revokeFor(sb.cl)
	}
	close(sb.gone)
}

// drop removes sb from the ready list; s.mu held.
func (s *standbyPool) drop(sb *standby) {
	list := s.ready[sb.team]
	for i, x := range list {
		if x == sb {
			s.ready[sb.team] = append(list[:i:i], list[i+1:]...)
			return
		}
	}
}

// discardStandby stops an unclaimed standby process, waits for its slot to
// be free again and removes its session file.
func (b *Broker) discardStandby(sb *standby, reason string) {
	sb.cl.stop(3 * time.Second)
	<-sb.gone
	b.removeStandbyFile(sb.host, sb.cl.sessionID)
	b.log.Info("stopped standby claude", "team", sb.team, "session", sb.cl.sessionID, "reason", reason)
}

func (b *Broker) removeStandbyFile(host Host, sessionID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if file, err := host.SessionFile(ctx, sessionID); err == nil {
		_ = host.Files().Remove(ctx, file)
	}
}

// sessionFor returns the pair's session record, as GetOrCreateSession does;
// a pair that has none takes a ready standby process of its team, if any,
// and its record gets that process's session id. The caller adopts sb.
func (b *Broker) sessionFor(ctx context.Context, p *pair) (sess *models.Session, created bool, sb *standby, err error) {
	if p.team.EffectiveStandby(b.config().Settings) <= 0 {
		sess, created, err = b.store.GetOrCreateSession(ctx, p.key.from, p.key.to)
		return sess, created, nil, err
	}
	sess, err = b.store.SessionByPair(ctx, p.key.from, p.key.to)
	if err == nil || !errors.Is(err, models.ErrNotFound) {
		return sess, false, nil, err
	}
	sb = b.takeStandby(p)
	if sb == nil {
		b.fillStandby(p.team) // refill a team whose standby ran out or idled out
		sess, created, err = b.store.GetOrCreateSession(ctx, p.key.from, p.key.to)
		return sess, created, nil, err
	}
	b.refillAfterTurn(p)
	// Created idle and with its launch record: the first ask waits for one
	// write, not three.
	snap, _ := json.Marshal(p.team)
	sess, created, err = b.store.CreateAdoptedSession(ctx, p.key.from, p.key.to, sb.cl.sessionID, sb.launch, string(snap))
	if err != nil || !created {
		b.returnStandby(sb)
		return sess, false, nil, err
	}
	return sess, true, sb, nil
}

// refillAfterTurn starts the replacement of the standby p just took once
// p's first turn is over: a Claude Code start costs seconds of CPU, and next
// to the first turn it would slow the very answer standby is there for.
func (b *Broker) refillAfterTurn(p *pair) {
	s := &b.standby
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		deadline := time.Now().Add(b.turnLimit())
		for busy := true; busy && time.Now().Before(deadline); {
			select {
			case <-b.ctx.Done():
				return
			case <-tick.C:
			}
			p.mu.Lock()
			busy = p.busy
			p.mu.Unlock()
		}
		b.fillStandby(p.team)
	}()
}

// takeStandby claims the oldest live ready process of p's team for p.
func (b *Broker) takeStandby(p *pair) *standby {
	s := &b.standby
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.ready[p.team.Name]) > 0 {
		sb := s.ready[p.team.Name][0]
		s.ready[p.team.Name] = s.ready[p.team.Name][1:]
		if sb.cl.alive() {
			sb.owner = p
			return sb
		}
	}
	return nil
}

// returnStandby puts back a standby that was claimed but not adopted.
func (b *Broker) returnStandby(sb *standby) {
	s := &b.standby
	s.mu.Lock()
	defer s.mu.Unlock()
	sb.owner = nil
	if sb.cl.alive() && !s.closed {
		s.ready[sb.team] = append([]*standby{sb}, s.ready[sb.team]...)
		return
	}
	if !sb.cl.alive() {
		return // its watcher saw it exit while it was claimed
	}
	go b.discardStandby(sb, "broker shutting down")
}

// adoptStandby makes sb the pair's process; p.mu held, sess already carries
// sb's session id and was created idle with sb's launch (sessionFor).
func (b *Broker) adoptStandby(p *pair, sb *standby, sess *models.Session) *claude {
	if sb.cred != nil {
		// The credential now acts for the pair's messages. Under asks.mu:
		// every MCP request takes it (token check) before it reads c.p.
		b.asks.mu.Lock()
		sb.cred.p = p
		b.asks.mu.Unlock()
	}
	p.cl = sb.cl
	p.state = models.ProcessIdle
	p.lastUsed = time.Now()
	b.changed() // the record was created idle, with its launch (sessionFor)
	b.log.Info("took standby claude", "pair", p.key, "session", sess.SessionID, "where", sb.host.Where(), "pid", sb.cl.p.Pid(), "waited", time.Since(sb.started).Round(time.Millisecond))
	return sb.cl
}

// evictStandby stops the oldest unclaimed standby process, if there is one,
// and returns once its slot is free: standby processes go before any pair's.
func (b *Broker) evictStandby() bool {
	s := &b.standby
	s.mu.Lock()
	var victim *standby
	for _, list := range s.ready {
		for _, sb := range list {
			if victim == nil || sb.started.Before(victim.started) {
				victim = sb
			}
		}
	}
	if victim != nil {
		s.drop(victim)
	}
	s.mu.Unlock()
	if victim == nil {
		return false
	}
	b.discardStandby(victim, "maxProcesses reached; standby goes first")
	return true
}

// expireStandby stops standby processes that waited longer than their
// team's idle timeout.
func (b *Broker) expireStandby(now time.Time) {
	s := &b.standby
	s.mu.Lock()
	var old []*standby
	for team, list := range s.ready {
		t, ok := b.config().Team(team)
		if !ok {
			continue
		}
		idle := t.EffectiveIdleTimeout(b.config().Settings)
		for _, sb := range list {
			if idle > 0 && now.Sub(sb.started) > idle {
				old = append(old, sb)
			}
		}
	}
	for _, sb := range old {
		s.drop(sb)
	}
	s.mu.Unlock()
	for _, sb := range old {
		b.discardStandby(sb, "idle timeout")
	}
}

// retireStandby stops team's standby processes, including those still
// starting, and starts new ones from the team's current config. A config
// reload calls it for every team whose settings changed, after b.cfg holds
// the new config, so no pair adopts a process started with the old flags.
func (b *Broker) retireStandby(team string) {
	s := &b.standby
	s.mu.Lock()
	s.init()
	s.gen[team]++
	old := s.ready[team]
	delete(s.ready, team)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, sb := range old {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.discardStandby(sb, "team config changed")
		}()
	}
	wg.Wait()
	if t, ok := b.config().Team(team); ok {
		b.fillStandby(t)
	}
}

// closeStandby stops every unclaimed standby process and waits for the
// starters and watchers; Close calls it after the pairs' processes stopped.
func (b *Broker) closeStandby() {
	s := &b.standby
	s.mu.Lock()
	s.closed = true
	var all []*standby
	for _, list := range s.ready {
		all = append(all, list...)
	}
	s.ready = map[string][]*standby{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, sb := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.discardStandby(sb, "broker shutting down")
		}()
	}
	wg.Wait()
	s.wg.Wait()
}
