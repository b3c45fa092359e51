package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/models"
	"github.com/switchboard-mcp/switchboard/proc"
)

// pair is the live state of one (fromTeam, toTeam) session: its process and
// its worker. Only the worker starts turns; mu guards the fields below it.
type pair struct {
	key  pairKey
	team *configs.Team
	kick chan struct{}
	// retire is closed when Reload drops or changes the team: the worker
	// finishes its current message, stops the process and closes gone.
	// after, when set, is an earlier pair's gone to wait for first.
	retire chan struct{}
	gone   chan struct{}
	after  <-chan struct{}

	// spawnMu is held by whoever is starting the pair's process.
	spawnMu sync.Mutex

	mu          sync.Mutex
	cl          *claude
	sess        *models.Session // the record ensureProcess last returned with cl
	state       models.ProcessState
	busy        bool
	current     uint64 // message being answered
	cancelled   bool   // session_cancel hit the current turn
	leaseLost   bool   // a fleet broker lost the pair's lease mid-turn (fleet.go)
	turnStarted bool   // Claude has begun the current turn
	lastUsed    time.Time
	lastReason  string
	waiting     *PermissionWait // a tool-permission prompt awaits a decision
}

func (p *pair) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *pair) idleSince(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cl == nil || p.busy {
		return 0
	}
	return now.Sub(p.lastUsed)
}

// idleLastUsed reports when an idle live process was last used.
func (p *pair) idleLastUsed() (time.Time, bool) {
	if !p.mu.TryLock() {
		return time.Time{}, false
	}
	defer p.mu.Unlock()
	return p.lastUsed, p.cl != nil && !p.busy
}

// stopIfIdle stops the process unless it is answering; it never waits for
// another goroutine holding the pair, so it is safe from eviction.
func (p *pair) stopIfIdle(b *Broker, reason string) bool {
	if !p.mu.TryLock() {
		return false
	}
	defer p.mu.Unlock()
	if p.cl == nil || p.busy {
		return false
	}
	p.stopLocked(b, reason)
	return true
}

// stopProcess stops the process even mid-turn; the turn then fails.
func (p *pair) stopProcess(b *Broker, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cl != nil {
		p.stopLocked(b, reason)
	}
}

// stopLocked stops the pair's process and returns once it has exited. The
// pair stays locked meanwhile, so no new process for the same session can
// start while the old one is still writing its session file.
func (p *pair) stopLocked(b *Broker, reason string) {
	cl := p.cl
	p.cl = nil
	p.state = models.ProcessStopped
	p.lastReason = reason
	cl.stop(3 * time.Second)
	b.setProcessState(cl.sessionID, models.ProcessStopped)
}

func (b *Broker) setProcessState(sessionID string, s models.ProcessState) {
	defer b.changed()
	b.storeWrite("record process state", b.store.SetProcessState(context.Background(), sessionID, s), "session", sessionID, "state", s)
}

// ensureProcess returns the pair's live process, starting one (and the
// session record) when there is none. With reserve, the pair is marked busy
// from the start, so eviction cannot stop the process between its start and
// the turn the caller is about to run; the caller then owes an idle() call.
//
// p.mu is not held while waiting for a pool slot or for the spawn: status,
// sleep, cancel and reboot take it and must never wait for a start (spawnMu
// keeps starts of one pair one at a time).
func (b *Broker) ensureProcess(ctx context.Context, p *pair, reserve bool) (cl *claude, sess *models.Session, err error) {
	p.spawnMu.Lock()
	defer p.spawnMu.Unlock()
	p.mu.Lock()
	locked := true
	defer func() {
		if !locked {
			p.mu.Lock()
		}
		if reserve {
			p.busy = err == nil
		}
		if err == nil {
			p.sess = sess
		}
		p.mu.Unlock()
	}()
	if reserve {
		p.busy = true
	}
	if p.cl != nil && p.cl.alive() && p.sess != nil && p.sess.SessionID == p.cl.sessionID {
		// The running process's record, as last read: Reboot and Delete
		// stop the process before they change or remove the record, and
		// BeginTurn finds the record by this id or writes nothing (the
		// worker then forgets it). A warm ask saves the read.
		return p.cl, p.sess, nil
	}
	sess, created, sb, err := b.sessionFor(ctx, p)
	if err != nil {
		return nil, nil, fmt.Errorf("session for %s: %w", p.key, err)
	}
	if p.cl != nil && p.cl.alive() && p.cl.sessionID == sess.SessionID {
		return p.cl, sess, nil
	}
	if p.cl != nil {
		// Died, or its session was rebooted: make sure it is gone first.
		p.stopLocked(b, "replaced")
	}
	if sb != nil {
		return b.adoptStandby(p, sb, sess), sess, nil
	}
	host, err := b.hosts.For(p.team)
	if err != nil {
		return nil, sess, fmt.Errorf("runner for team %s: %w", p.team.Name, err)
	}
	p.state = models.ProcessStarting
	p.mu.Unlock()
	locked = false
	b.setProcessState(sess.SessionID, models.ProcessStarting)
	if err := b.acquireSlot(ctx, p); err != nil {
		p.mu.Lock()
		locked = true
		p.state = models.ProcessStopped
		return nil, sess, err
	}
	cl, err = b.spawn(ctx, p, host, sess, created)
	p.mu.Lock()
	locked = true
	if err != nil {
		b.releaseSlot()
		p.state = models.ProcessError
		p.lastReason = err.Error()
		b.setProcessState(sess.SessionID, models.ProcessError)
		b.storeWrite("record session error", b.store.SetStatus(context.Background(), sess.SessionID, models.SessionError, err.Error()), "session", sess.SessionID)
		return nil, sess, err
	}
	if b.ctx.Err() != nil {
		// Close ran while this process started, and found nothing to stop.
		cl.stop(3 * time.Second)
		b.releaseSlot()
		p.state = models.ProcessStopped
		return nil, sess, ErrClosed
	}
	p.cl = cl
	p.state = models.ProcessIdle
	p.lastUsed = time.Now()
	b.setProcessState(sess.SessionID, models.ProcessIdle)
	// In b.wg, so that Close returns only once every watcher has finished
	// with the broker: its last act is a log line, which must not outlive
	// the broker's logger (a test's output, for one).
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.watch(p, cl)
	}()
	return cl, sess, nil
}

// spawn starts Claude for a session: --resume when its file exists on the
// team's host, --session-id when it does not (new, or deleted behind our back).
//
// A session record created just now has no file yet, and not looking saves a
// remote team's first start an SFTP round trip on a fresh connection.
func (b *Broker) spawn(ctx context.Context, p *pair, runner Host, sess *models.Session, created bool) (*claude, error) {
	exists := false
	if !created {
		// A process an earlier run started may still run for the session
		// (a remote one outlives its killed daemon until its channel
		// closes), and may not have written the file yet: stop it before
		// looking, or it writes the file, or a copy of a message, after.
		// Two processes must never write one session.
		b.reapStale(ctx, runner, sess.SessionID)
		file, err := runner.SessionFile(ctx, sess.SessionID)
		if err != nil {
			return nil, err
		}
		_, statErr := runner.Files().Stat(ctx, file)
		exists = statErr == nil
		if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
			return nil, fmt.Errorf("check session file %s on %s: %w", file, runner.Where(), statErr)
		}
		if !exists && sess.MessageCount > 0 {
			note := fmt.Sprintf("session file %s was missing on %s; started a new conversation under the same session id", file, runner.Where())
			b.log.Warn(note, "pair", p.key, "session", sess.SessionID)
			b.storeWrite("record missing session file", b.store.SetStatus(ctx, sess.SessionID, models.SessionActive, note), "session", sess.SessionID)
		}
	}
	args := b.claudeArgs(p.team, sess.SessionID, exists)
	spec := proc.Spec{Dir: p.team.Path, Command: runner.Claude(), Args: args, Env: p.team.Env, Nice: b.config().Settings.ClaudeNice}
	// switchboard's own tools, with a credential for this process (askback.go).
	cred, askArgs := b.issueCredential(ctx, p, runner)
	args = append(args, askArgs...)
	spec.Args = args
	spawnTimeout := b.config().Settings.SpawnTimeout.Duration
	sctx, cancel := context.WithTimeout(ctx, spawnTimeout)
	defer cancel()
	cl, err := startClaude(sctx, runner, spec, sess.SessionID, b.permitFor(p, sess.SessionID))
	if err != nil {
		b.revoke(cred)
		if sctx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("start claude for team %s on %s: no process within spawnTimeout %s: %w", p.team.Name, runner.Where(), spawnTimeout, err)
		}
		return nil, fmt.Errorf("start claude for team %s on %s: %w", p.team.Name, runner.Where(), err)
	}
	b.bindCredential(cl, cred)
	snap, _ := json.Marshal(p.team)
	launch := spec.Command + " " + strings.Join(args, " ")
	if err := b.store.SetLaunch(ctx, sess.SessionID, launch, string(snap)); err != nil {
		b.log.Warn("record launch command", "session", sess.SessionID, "err", err)
	}
	b.log.Info("started claude", "pair", p.key, "session", sess.SessionID, "resume", exists, "where", runner.Where(), "pid", cl.p.Pid())
	return cl, nil
}

// watch notices the process exiting, for whatever reason, and frees its
// pool slot at once: the slot must not wait for the pair's lock, which a
// stopper may hold while it starts the next process.
func (b *Broker) watch(p *pair, cl *claude) {
	<-cl.done
	b.releaseSlot()
	p.mu.Lock()
	if p.cl == cl {
		p.cl = nil
		p.state = models.ProcessStopped
	}
	p.mu.Unlock()
	b.revokeFor(cl)
	b.changed()
	b.log.Debug("claude exited", "pair", p.key, "session", cl.sessionID, "err", cl.err)
}
