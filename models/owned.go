package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// A broker that starts after a crash settles what its dead run left: the
// process states it recorded (no process survives it) and the permission
// requests still pending (nobody can answer them). On SQLite it owns every
// row (ResetProcessStates, ExpirePendingPermissions); in a fleet the same
// rows may be another live broker's, whose Claude still runs or waits, so
// the clean-up is limited to what this broker may own (Owned).

// Owned selects the rows a broker of a fleet may settle as its own: those of
// pairs whose ToTeam is one of Teams and whose lease is Owner's, free, or
// expired at Now (the same test AcquireLease uses to take a pair over). A
// pair another broker holds a lease on until Now or later is left alone:
// that broker may be alive, and its process and requests are its own.
type Owned struct {
	Owner string
	Teams []string
	Now   time.Time
	// Pair, when set, narrows the selection to that one pair (a pair taken
	// over from a dead broker).
	Pair *Pair
}

// where narrows q, on table (which has from_team and to_team columns), to
// o's rows. The lease test is a subquery of the same statement, so a lease
// taken by another broker while it runs cannot be half seen.
func (o Owned) where(q *gorm.DB, table string) *gorm.DB {
	q = q.Where(table+".to_team IN ?", o.Teams).
		Where("NOT EXISTS (SELECT 1 FROM leases WHERE leases.from_team = "+table+".from_team AND leases.to_team = "+table+".to_team"+
			" AND leases.owner <> ? AND leases.expires_at >= ?)", o.Owner, utc(o.Now))
	if o.Pair != nil {
		q = q.Where(table+".from_team = ? AND "+table+".to_team = ?", o.Pair.From, o.Pair.To)
	}
	return q
}

// ResetOwnedProcessStates is ResetProcessStates for a broker of a fleet: it
// marks the processes of o's sessions stopped, in one statement, and returns
// how many it changed.
func (s *Store) ResetOwnedProcessStates(ctx context.Context, o Owned) (int64, error) {
	if len(o.Teams) == 0 {
		return 0, nil
	}
	res := o.where(s.db.WithContext(ctx).Model(&Session{}), "sessions").
		Where("process_state <> ?", ProcessStopped).
		Update("process_state", ProcessStopped)
	if res.Error != nil {
		return 0, fmt.Errorf("reset the process states of broker %s: %w", o.Owner, res.Error)
	}
	return res.RowsAffected, nil
}

// ExpireOwnedPermissions is ExpirePendingPermissions for a broker of a
// fleet: it expires o's requests still pending that were created before
// before, in one statement, and returns how many.
func (s *Store) ExpireOwnedPermissions(ctx context.Context, o Owned, before time.Time) (int64, error) {
	if len(o.Teams) == 0 {
		return 0, nil
	}
	res := o.where(s.db.WithContext(ctx).Model(&PermissionRequest{}), "permission_requests").
		Where("status = ? AND created_at < ?", PermissionPending, utc(before)).
		Updates(s.expiredUnanswered())
	if res.Error != nil {
		return 0, fmt.Errorf("expire the pending permission requests of broker %s: %w", o.Owner, res.Error)
	}
	return res.RowsAffected, nil
}
