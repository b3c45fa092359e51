package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/models"
)

// Who decides a team's tool permissions, by its grantPermission:
//
//   - yes: allowed at once; no: denied at once, naming the team and its
//     allowedTools.
//   - ask (the default): a pending row waits for an operator
//     (DecidePermission: `switchboard approve|deny`, permissions_decide,
//     the dashboard) until settings.permissionTimeout denies it.
//   - forward: the asker decides. A configured team decides by its own
//     grantPermission; a person whose MCP client is waiting on send_message
//     and can elicit is asked (form elicitation); anyone else (quick_message,
//     the CLI, a client without the capability) falls back to ask.
//
// Every request and decision is a models.PermissionRequest row.

// elicitFunc asks the MCP client behind a waiting send_message.
type elicitFunc func(ctx context.Context, params *mcp.ElicitParams) (*mcp.ElicitResult, error)

// Who decided, as the rows record it.
const (
	decidedByMode    = "mode"
	decidedByTimeout = "timeout"
	decidedBySelf    = "switchboard"
)

// permissions is the broker's live permission state: the waits that an
// operator's decision can end, and the change hooks.
type permissions struct {
	mu      sync.Mutex
	waits   map[uint64]chan models.PermissionRequest // by row id
	hooks   map[int]func(models.PermissionRequest)
	nextKey int
}

// PermissionWait is a pair's pending permission request, as team_status,
// list_teams and the dashboard show it.
type PermissionWait struct {
	RequestID uint64    `json:"requestId"`
	From      string    `json:"fromTeam"`
	To        string    `json:"toTeam"`
	MessageID uint64    `json:"messageId"`
	Tool      string    `json:"tool"`
	Since     time.Time `json:"since"`
	// WaitedSeconds is how long it has waited when the status was taken.
	WaitedSeconds int64  `json:"waitedSeconds"`
	State         string `json:"state"` // always "waiting for permission"
}

// WaitingForPermission is the state of a pair whose Claude waits for a
// tool-permission decision.
const WaitingForPermission = "waiting for permission"

// Permission is one permission request row as tools and the dashboard show it.
type Permission struct {
	ID        uint64                  `json:"id"`
	MessageID uint64                  `json:"messageId"`
	From      string                  `json:"fromTeam"`
	To        string                  `json:"toTeam"`
	Tool      string                  `json:"tool"`
	Input     string                  `json:"input,omitempty"`
	Mode      models.PermissionMode   `json:"mode"`
	Status    models.PermissionStatus `json:"status"`
	DecidedBy string                  `json:"decidedBy,omitempty"`
	Reason    string                  `json:"reason,omitempty"`
	Created   time.Time               `json:"createdAt"`
	Decided   *time.Time              `json:"decidedAt,omitempty"`
	// LatencyMS is how long the decision took.
	LatencyMS int64 `json:"latencyMs,omitempty"`
}

func permissionOf(r *models.PermissionRequest) Permission {
	p := Permission{ID: r.ID, MessageID: r.MessageID, From: r.FromTeam, To: r.ToTeam, Tool: r.Tool, Input: r.Input,
		Mode: r.Mode, Status: r.Status, DecidedBy: r.DecidedBy, Reason: r.Reason, Created: r.CreatedAt, Decided: r.DecidedAt}
	if r.DecidedAt != nil {
		p.LatencyMS = r.DecidedAt.Sub(r.CreatedAt).Milliseconds()
	}
	return p
}

// startPermissions closes the requests a previous daemon left pending (the
// processes that asked died with it) and warns about the old mechanism.
func (b *Broker) startPermissions(ctx context.Context, started time.Time) error {
	if b.store.Shared() {
		// Pending requests in a shared store may be another broker's,
		// whose Claude still waits for the decision.
		return b.warnPromptTool()
	}
	if n, err := b.store.ExpirePendingPermissions(ctx, started); err != nil {
		return err
	} else if n > 0 {
		b.log.Info("expired permission requests left pending by an earlier run", "count", n)
	}
	return b.warnPromptTool()
}

func (b *Broker) warnPromptTool() error {
	var old []string
	for _, name := range b.config().TeamNames() {
		if t, _ := b.config().Team(name); t.PermissionPromptTool != "" {
			old = append(old, name+" ("+t.PermissionPromptTool+")")
		}
	}
	if len(old) > 0 {
		b.log.Warn("permissionPromptTool is deprecated and ignored: switchboard answers every team's permission prompts itself over Claude's stdio, by grantPermission (yes, no, ask, forward)", "teams", strings.Join(old, ", "))
	}
	return nil
}

// OnPermissionChange calls f after every permission request is created or
// decided (for the dashboard's live view), until remove is called. f must
// not block.
func (b *Broker) OnPermissionChange(f func(Permission)) (remove func()) {
	b.perms.mu.Lock()
	defer b.perms.mu.Unlock()
	if b.perms.hooks == nil {
		b.perms.hooks = make(map[int]func(models.PermissionRequest))
	}
	k := b.perms.nextKey
	b.perms.nextKey++
	b.perms.hooks[k] = func(r models.PermissionRequest) { f(permissionOf(&r)) }
	return func() {
		b.perms.mu.Lock()
		delete(b.perms.hooks, k)
		b.perms.mu.Unlock()
	}
}

func (b *Broker) permissionChanged(r *models.PermissionRequest) {
	defer b.changed()
	b.perms.mu.Lock()
	hooks := make([]func(models.PermissionRequest), 0, len(b.perms.hooks))
	for _, h := range b.perms.hooks {
		hooks = append(hooks, h)
	}
	b.perms.mu.Unlock()
	for _, h := range hooks {
		h(*r)
	}
}

// PendingPermissions lists the requests waiting for a decision, of team
// (either side of the pair) or of every team when team is "".
func (b *Broker) PendingPermissions(ctx context.Context, team string) ([]Permission, error) {
	if team != "" {
		if _, ok := b.config().Team(team); !ok {
			if b.fleet == nil {
				return nil, b.unknownTeam(team)
			}
			// In a fleet, another broker's team: its requests are in the
			// shared store too.
			if _, err := b.route(ctx, Operator, team); err != nil {
				return nil, err
			}
		}
	}
	rows, err := b.store.PendingPermissions(ctx, team)
	if err != nil {
		return nil, err
	}
	out := make([]Permission, 0, len(rows))
	for i := range rows {
		out = append(out, permissionOf(&rows[i]))
	}
	return out, nil
}

// DecidePermission allows or denies pending request id; by names who
// decided and reason is the denial text the model reads. Exactly one
// decision wins: a request already decided, timed out or withdrawn is an
// error saying how it ended.
func (b *Broker) DecidePermission(ctx context.Context, id uint64, allow bool, by, reason string) (*Permission, error) {
	if !allow && strings.TrimSpace(reason) == "" {
		reason = "denied by " + by
	}
	if err := b.decidedElsewhere(ctx, id); err != nil {
		return nil, err
	}
	r, err := b.store.DecidePermission(ctx, id, allow, by, reason)
	if errors.Is(err, models.ErrNotFound) {
		return nil, fmt.Errorf("no permission request %d; list the pending ones with permissions_pending or switchboard approvals", id)
	}
	if errors.Is(err, models.ErrAlreadyDecided) {
		if cur, cerr := b.store.PermissionByID(ctx, id); cerr == nil {
			return nil, fmt.Errorf("permission request %d is no longer pending: %s by %s (%s); this decision is ignored", id, cur.Status, cur.DecidedBy, cur.Reason)
		}
	}
	if err != nil {
		return nil, err
	}
	b.log.Info("permission decided", "request", id, "team", r.ToTeam, "tool", r.Tool, "status", r.Status, "by", by)
	b.perms.mu.Lock()
	ch := b.perms.waits[id]
	b.perms.mu.Unlock()
	if ch != nil {
		select {
		case ch <- *r:
		default:
		}
	}
	b.permissionChanged(r)
	p := permissionOf(r)
	return &p, nil
}

// permitFor returns the decider for the prompts of a pair's process.
func (b *Broker) permitFor(p *pair, sessionID string) func(context.Context, *toolPrompt) promptAnswer {
	return func(ctx context.Context, req *toolPrompt) promptAnswer { return b.permit(ctx, p, sessionID, req) }
}

// permit decides one prompt by the team's grantPermission. ctx ends when
// Claude withdraws the prompt or exits.
func (b *Broker) permit(ctx context.Context, p *pair, sessionID string, req *toolPrompt) promptAnswer {
	p.mu.Lock()
	msgID := p.current
	p.mu.Unlock()
	team := p.team
	if msgID == 0 {
		b.log.Warn("permission prompt outside a message's turn; denied", "pair", p.key, "tool", req.ToolName)
		return promptAnswer{Message: fmt.Sprintf("team %s: switchboard denies tools outside a message's turn", team.Name)}
	}
	row := &models.PermissionRequest{
		MessageID: msgID, SessionID: sessionID, FromTeam: p.key.from, ToTeam: p.key.to,
		RequestID: req.RequestID, Tool: req.ToolName, Input: string(req.Input),
		Mode: models.PermissionMode(team.GrantPermission),
	}
	mode, by := team.GrantPermission, decidedByMode
	var elicit elicitFunc
	noMsg := b.noMessage(team)
	if mode == string(models.PermissionForward) {
		mode, by, elicit = b.forwardTo(p.key.from, msgID)
		noMsg = fmt.Sprintf("team %s leaves tool permissions to the asking team %s, which does not grant them (grantPermission: no); team %s may use only the tools its allowedTools lists: %s",
			team.Name, p.key.from, team.Name, orNone(team.AllowedTools))
	}
	switch mode {
	case string(models.PermissionYes):
		return b.decideNow(row, true, by, "grantPermission: yes")
	case string(models.PermissionNo):
		return b.decideNow(row, false, by, noMsg)
	}
	return b.await(ctx, p, row, elicit)
}

// forwardTo resolves forward for a message from from: a configured team's
// own yes or no decides; otherwise the waiting asker is elicited when it
// can be, and an operator is asked when it cannot.
func (b *Broker) forwardTo(from string, msgID uint64) (mode, by string, elicit elicitFunc) {
	if t, ok := b.config().Team(from); ok {
		switch t.GrantPermission {
		case string(models.PermissionYes), string(models.PermissionNo):
			return t.GrantPermission, "team " + from + " (grantPermission: " + t.GrantPermission + ")", nil
		case string(models.PermissionAsk):
			return string(models.PermissionAsk), "", nil
		}
	}
	b.mu.Lock()
	for _, w := range b.waiters[msgID] {
		if w.elicit != nil {
			elicit = w.elicit
			break
		}
	}
	b.mu.Unlock()
	return string(models.PermissionAsk), "", elicit
}

func (b *Broker) noMessage(t *configs.Team) string {
	return fmt.Sprintf("team %s does not grant tool permissions (grantPermission: no); it may use only the tools its allowedTools lists: %s", t.Name, orNone(t.AllowedTools))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// decideNow records a request decided by the mode itself.
func (b *Broker) decideNow(row *models.PermissionRequest, allow bool, by, reason string) promptAnswer {
	now := time.Now()
	row.Status, row.DecidedBy, row.Reason, row.DecidedAt = models.PermissionDenied, by, reason, &now
	if allow {
		row.Status = models.PermissionAllowed
	}
	if err := b.store.CreatePermissionRequest(context.Background(), row); err != nil {
		b.log.Error("record permission decision", "team", row.ToTeam, "tool", row.Tool, "err", err)
	} else {
		b.permissionChanged(row)
	}
	b.log.Info("permission "+string(row.Status), "team", row.ToTeam, "from", row.FromTeam, "tool", row.Tool, "by", by, "message", row.MessageID)
	if allow {
		return promptAnswer{Allow: true}
	}
	return promptAnswer{Message: reason}
}

// await stores a pending request and waits for an operator, the elicited
// asker, the permission timeout or the prompt's withdrawal.
func (b *Broker) await(ctx context.Context, p *pair, row *models.PermissionRequest, elicit elicitFunc) promptAnswer {
	if err := b.store.CreatePermissionRequest(context.Background(), row); err != nil {
		b.log.Error("record permission request; denied", "team", row.ToTeam, "tool", row.Tool, "err", err)
		return promptAnswer{Message: fmt.Sprintf("switchboard could not record the permission request for %s: %v", row.Tool, err)}
	}
	ch := make(chan models.PermissionRequest, 1)
	b.perms.mu.Lock()
	if b.perms.waits == nil {
		b.perms.waits = make(map[uint64]chan models.PermissionRequest)
	}
	b.perms.waits[row.ID] = ch
	b.perms.mu.Unlock()
	p.mu.Lock()
	p.waiting = &PermissionWait{RequestID: row.ID, From: row.FromTeam, To: row.ToTeam, MessageID: row.MessageID, Tool: row.Tool, Since: row.CreatedAt, State: WaitingForPermission}
	p.mu.Unlock()
	defer func() {
		b.perms.mu.Lock()
		delete(b.perms.waits, row.ID)
		b.perms.mu.Unlock()
		p.mu.Lock()
		if p.waiting != nil && p.waiting.RequestID == row.ID {
			p.waiting = nil
		}
		p.mu.Unlock()
		b.changed() // the pair answers again
	}()
	b.log.Info("permission request waiting", "request", row.ID, "team", row.ToTeam, "from", row.FromTeam, "tool", row.Tool, "message", row.MessageID)
	b.permissionChanged(row)
	b.progress(row.MessageID, fmt.Sprintf("%s: team %s wants to use %s (request %d); decide with `switchboard approve %d` or `switchboard deny %d`, or permissions_decide",
		WaitingForPermission, row.ToTeam, row.Tool, row.ID, row.ID, row.ID))

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if elicit != nil {
		go b.elicit(wctx, row, elicit)
	}
	var timeout <-chan time.Time
	limit := b.config().Settings.PermissionTimeout.Duration
	if limit > 0 {
		t := time.NewTimer(limit)
		defer t.Stop()
		timeout = t.C
	}
	var decided *models.PermissionRequest
	select {
	case r := <-ch:
		decided = &r
	case <-timeout:
		decided = b.closeWait(row, decidedByTimeout, fmt.Sprintf("no decision within permissionTimeout %s: team %s may not use %s", limit, row.ToTeam, row.Tool))
	case <-ctx.Done():
		decided = b.closeWait(row, decidedBySelf, "cancelled: "+context.Cause(ctx).Error())
	case <-b.ctx.Done():
		decided = b.closeWait(row, decidedBySelf, "cancelled: the broker is shutting down")
	}
	if decided.Status == models.PermissionAllowed {
		return promptAnswer{Allow: true}
	}
	return promptAnswer{Message: decided.Reason}
}

// closeWait denies a request nobody decided; when a decision won the race,
// that decision is returned instead.
func (b *Broker) closeWait(row *models.PermissionRequest, by, reason string) *models.PermissionRequest {
	r, err := b.store.DecidePermission(context.Background(), row.ID, false, by, reason)
	if err == nil {
		b.log.Info("permission denied", "request", row.ID, "team", row.ToTeam, "tool", row.Tool, "by", by, "reason", reason)
		b.permissionChanged(r)
		return r
	}
	if cur, cerr := b.store.PermissionByID(context.Background(), row.ID); cerr == nil && cur.Status != models.PermissionPending {
		return cur
	}
	b.log.Error("record permission denial", "request", row.ID, "err", err)
	return &models.PermissionRequest{Status: models.PermissionDenied, Reason: reason}
}

// elicit asks the waiting asker's MCP client; accept allows, decline or
// cancel denies. A client that fails the elicitation leaves the request to
// an operator, as ask does.
func (b *Broker) elicit(ctx context.Context, row *models.PermissionRequest, elicit elicitFunc) {
	msg := fmt.Sprintf("Team %s, answering your message %d, wants to use the tool %s with this input:\n%s\nAllow it?",
		row.ToTeam, row.MessageID, row.Tool, clip(row.Input, 2000))
	res, err := elicit(ctx, &mcp.ElicitParams{Mode: "form", Message: msg,
		RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{}}})
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		b.log.Warn("forward: the asker could not be asked; waiting for an operator instead", "request", row.ID, "err", err)
		return
	}
	by := "asker " + row.FromTeam + " (elicitation)"
	allow := res.Action == "accept"
	reason := ""
	if !allow {
		reason = fmt.Sprintf("the asker (%s) did not allow %s: %s", row.FromTeam, row.Tool, res.Action)
	}
	if _, err := b.DecidePermission(context.Background(), row.ID, allow, by, reason); err != nil {
		b.log.Info("elicited decision not used", "request", row.ID, "err", err)
	}
}

// clip shortens s to at most n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// permissionsOf lists the permission rows of a message.
func (b *Broker) permissionsOf(ctx context.Context, id uint64) []Permission {
	rows, err := b.store.PermissionsForMessage(ctx, id)
	if err != nil {
		b.log.Warn("read permission requests", "message", id, "err", err)
		return nil
	}
	var out []Permission
	for i := range rows {
		out = append(out, permissionOf(&rows[i]))
	}
	return out
}

// waitingOf is the pair's pending permission, with its age, or nil.
func (p *pair) waitingOf(now time.Time) *PermissionWait {
	if p.waiting == nil {
		return nil
	}
	w := *p.waiting
	w.WaitedSeconds = int64(now.Sub(w.Since).Seconds())
	return &w
}

// waitingFor lists the live pairs to team that wait for a permission.
func (b *Broker) waitingFor(team string) []PermissionWait {
	b.mu.Lock()
	pairs := make([]*pair, 0, len(b.pairs))
	for k, p := range b.pairs {
		if k.to == team {
			pairs = append(pairs, p)
		}
	}
	b.mu.Unlock()
	var out []PermissionWait
	now := time.Now()
	for _, p := range pairs {
		p.mu.Lock()
		if w := p.waitingOf(now); w != nil {
			out = append(out, *w)
		}
		p.mu.Unlock()
	}
	return out
}
