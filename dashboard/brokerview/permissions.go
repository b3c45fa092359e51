package brokerview

import (
	"context"
	"time"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/dashboard"
	"github.com/switchboard-mcp/switchboard/models"
)

// recentDecisions is how many decided requests the page lists.
const recentDecisions = 50

// Permissions lists the pending requests (the broker's permissions_pending)
// and the recent decisions (the store's rows).
func (v *View) Permissions(ctx context.Context) (dashboard.Permissions, error) {
	pending, err := v.b.PendingPermissions(ctx, "")
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
		p := &pending[i]
		out.Pending = append(out.Pending, request(p.ID, p.MessageID, p.From, p.To, p.Tool, p.Input, p.Created, timeout))
	}
	for i := range decided {
		r := &decided[i]
		d := dashboard.PermissionDecision{
			PermissionRequest: request(r.ID, r.MessageID, r.FromTeam, r.ToTeam, r.Tool, r.Input, r.CreatedAt, timeout),
			Allow:             r.Status == models.PermissionAllowed, Reason: r.Reason, DecidedBy: r.DecidedBy,
		}
		if r.DecidedAt != nil {
			d.Decided = *r.DecidedAt
		}
		out.Recent = append(out.Recent, d)
	}
	return out, nil
}

func request(id, msg uint64, from, to, tool, input string, created time.Time, timeout time.Duration) dashboard.PermissionRequest {
	pr := dashboard.PermissionRequest{
		ID: itoa(id), Team: to, From: from, To: to, MessageID: itoa(msg),
		Tool: tool, Input: clip(input, 400), Created: created,
	}
	if timeout > 0 {
		pr.Deadline = created.Add(timeout)
	}
	return pr
}

// waitingPairs reports whether a pair's Claude waits for a permission
// decision, as team_status says.
func (v *View) waitingPairs(context.Context) func(broker.PairStatus) bool {
	return func(ps broker.PairStatus) bool { return ps.Waiting != nil }
}

// Decide answers a pending request as the operator, as permissions_decide
// does.
func (v *View) Decide(ctx context.Context, id string, allow bool, reason string) error {
	n, err := parseID(id)
	if err != nil {
		return err
	}
	_, err = v.b.DecidePermission(ctx, n, allow, Operator, reason)
	return err
}
