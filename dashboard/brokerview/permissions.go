package brokerview

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/dashboard"
	"github.com/switchboard-mcp/switchboard/models"
)

// recentDecisions is how many decided requests the page lists.
const recentDecisions = 50

// ErrDecideUnavailable is what Decide returns until the broker can hand a
// decision to the Claude process that waits for it.
var ErrDecideUnavailable = errors.New("deciding permission requests from the dashboard is not available yet in this build; answer them with the team's grantPermission setting")

// Permissions lists the pending requests and the recent decisions, from the
// store's permission rows.
func (v *View) Permissions(ctx context.Context) (dashboard.Permissions, error) {
	pending, err := v.store.PendingPermissions(ctx, "")
	if err != nil {
		return dashboard.Permissions{}, err
	}
	decided, err := v.store.RecentPermissionDecisions(ctx, recentDecisions)
	if err != nil {
		return dashboard.Permissions{}, err
	}
	timeout := v.b.Config().Settings.PermissionTimeout.Duration
	out := dashboard.Permissions{Pending: []dashboard.PermissionRequest{}, Recent: []dashboard.PermissionDecision{}}
	// Newest first, as the page lists them.
	for i := len(pending) - 1; i >= 0; i-- {
		out.Pending = append(out.Pending, requestOf(&pending[i], timeout))
	}
	for i := range decided {
		r := &decided[i]
		d := dashboard.PermissionDecision{PermissionRequest: requestOf(r, timeout), Allow: r.Status == models.PermissionAllowed, Reason: r.Reason, DecidedBy: r.DecidedBy}
		if r.DecidedAt != nil {
			d.Decided = *r.DecidedAt
		}
		out.Recent = append(out.Recent, d)
	}
	return out, nil
}

func requestOf(r *models.PermissionRequest, timeout time.Duration) dashboard.PermissionRequest {
	pr := dashboard.PermissionRequest{
		ID: itoa(r.ID), Team: r.ToTeam, From: r.FromTeam, To: r.ToTeam, MessageID: itoa(r.MessageID),
		Tool: r.Tool, Input: clip(r.Input, 400), Created: r.CreatedAt,
	}
	if timeout > 0 {
		pr.Deadline = r.CreatedAt.Add(timeout)
	}
	return pr
}

// waitingPairs reports whether a pair's turn waits for an operator: it
// has a pending permission request.
func (v *View) waitingPairs(ctx context.Context) func(broker.PairStatus) bool {
	set := make(map[models.Pair]bool)
	if pending, err := v.store.PendingPermissions(ctx, ""); err == nil {
		for _, r := range pending {
			set[models.Pair{From: r.FromTeam, To: r.ToTeam}] = true
		}
	}
	return func(ps broker.PairStatus) bool { return set[models.Pair{From: ps.From, To: ps.To}] }
}

// permissionChanges would signal on permission requests created or
// decided; this broker has no such hook yet, and the page's poll covers it.
func (v *View) permissionChanges(func()) (stop func()) { return func() {} }

// Decide answers a pending request as the operator.
func (v *View) Decide(ctx context.Context, id string, allow bool, reason string) error {
	if _, err := parseID(id); err != nil {
		return err
	}
	return ErrDecideUnavailable
}
