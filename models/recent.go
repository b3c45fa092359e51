package models

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// RecentFilter selects the latest messages for a live view (the dashboard's
// Messages); zero fields do not filter.
type RecentFilter struct {
	// Team matches messages sent by or to the team.
	Team   string
	Status MessageStatus
	// Limit caps the result: zero or less means DefaultRecentLimit, and it
	// is never more than MaxRecentLimit (a page refreshes this every few
	// seconds; it must stay a bounded read however old the store is).
	Limit int
}

const (
	DefaultRecentLimit = 100
	MaxRecentLimit     = 1000
)

// RecentMessages returns the newest messages matching f, newest first.
//
// It reads at most Limit rows per side from an index in id order. With a
// team, "from or to the team" is two range scans (idx_messages_from_recent,
// idx_messages_to_recent), each stopped at Limit, merged: a plain OR would
// read every message of the team (or walk the whole table backwards) and
// sort, on both engines, and a team asked thousands of times a day would
// make the dashboard's poll slower every day.
func (s *Store) RecentMessages(ctx context.Context, f RecentFilter) ([]Message, error) {
	q, err := s.recentQuery(ctx, f)
	if err != nil {
		return nil, err
	}
	var out []Message
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("recent messages: %w", err)
	}
	return out, nil
}

func (s *Store) recentQuery(ctx context.Context, f RecentFilter) (*gorm.DB, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultRecentLimit
	}
	limit = min(limit, MaxRecentLimit)
	q := s.read(ctx).Model(&Message{})
	if f.Team == "" {
		if f.Status != "" {
			q = q.Where("status = ?", f.Status)
		}
		return q.Order("id DESC").Limit(limit), nil
	}
	side := func(col string) (string, []any) {
		sql := "SELECT id FROM messages WHERE " + col + " = ?"
		args := []any{f.Team}
		if f.Status != "" {
			sql += " AND status = ?"
			args = append(args, f.Status)
		}
		return "SELECT id FROM (" + sql + " ORDER BY id DESC LIMIT ?) AS " + col + "_side", append(args, limit)
	}
	fromSQL, fromArgs := side("from_team")
	toSQL, toArgs := side("to_team")
	return q.Where("id IN ("+fromSQL+" UNION "+toSQL+")", append(fromArgs, toArgs...)...).
		Order("id DESC").Limit(limit), nil
}

// QueueDepths counts the queued messages of every pair that has any: what
// a live view shows as each pair's queue. It reads idx_messages_status's
// queued range only, however many messages the store has answered.
func (s *Store) QueueDepths(ctx context.Context) (map[Pair]int64, error) {
	var rows []struct {
		FromTeam, ToTeam string
		N                int64
	}
	err := s.read(ctx).Model(&Message{}).
		Select("from_team, to_team, COUNT(*) AS n").
		Where("status = ?", MessageQueued).
		Group("from_team, to_team").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("queue depths: %w", err)
	}
	out := make(map[Pair]int64, len(rows))
	for _, r := range rows {
		out[Pair{From: r.FromTeam, To: r.ToTeam}] = r.N
	}
	return out, nil
}

// RecentPermissionDecisions returns the newest decided (allowed, denied or
// expired) permission requests, newest first, at most limit (zero or less
// means DefaultRecentLimit, never more than MaxRecentLimit).
func (s *Store) RecentPermissionDecisions(ctx context.Context, limit int) ([]PermissionRequest, error) {
	if limit <= 0 {
		limit = DefaultRecentLimit
	}
	var out []PermissionRequest
	err := s.read(ctx).Where("status <> ?", PermissionPending).
		Order("id DESC").Limit(min(limit, MaxRecentLimit)).Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("recent permission decisions: %w", err)
	}
	return out, nil
}
