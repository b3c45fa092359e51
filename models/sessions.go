package models

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Compaction thresholds: a session is compacted once its context is large,
// or moderately large and old.
const (
	CompactMaxMessages = 500
	CompactOldMessages = 100
	CompactOldAge      = 7 * 24 * time.Hour
)

// recentExpr is when a session was last active; idx_sessions_recent indexes
// exactly this expression, so keep the two in step.
const recentExpr = "COALESCE(last_used_at, created_at)"

// GetOrCreateSession returns the session of the pair, creating it with a new
// session id when there is none. created reports whether this call created
// it. Concurrent callers for the same pair all get the same row.
func (s *Store) GetOrCreateSession(ctx context.Context, from, to string) (*Session, bool, error) {
	if from == "" || to == "" {
		return nil, false, fmt.Errorf("get or create session %s->%s: team names must not be empty", from, to)
	}
	db := s.db.WithContext(ctx)
	// A lost race (another caller inserted the pair) or, absurdly, a UUID
	// collision makes the insert a no-op; the next lookup settles both.
	for range 3 {
		sess, err := s.SessionByPair(ctx, from, to)
		if err == nil {
			return sess, false, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, false, fmt.Errorf("get or create session: %w", err)
		}
		sess = &Session{
			FromTeam:     from,
			ToTeam:       to,
			SessionID:    NewSessionID(),
			Status:       SessionActive,
			ProcessState: ProcessStopped,
		}
		res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(sess)
		if res.Error != nil {
			return nil, false, fmt.Errorf("create session %s->%s: %w", from, to, res.Error)
		}
		if res.RowsAffected == 1 {
			return sess, true, nil
		}
	}
	return nil, false, fmt.Errorf("create session %s->%s: insert kept conflicting", from, to)
}

// SessionByPair returns the session of the pair.
func (s *Store) SessionByPair(ctx context.Context, from, to string) (*Session, error) {
	var sess Session
	err := s.read(ctx).Where("from_team = ? AND to_team = ?", from, to).Take(&sess).Error
	if err != nil {
		return nil, fmt.Errorf("session %s->%s: %w", from, to, notFound(err))
	}
	return &sess, nil
}

// SessionByID returns the session with the given Claude session id.
func (s *Store) SessionByID(ctx context.Context, sessionID string) (*Session, error) {
	var sess Session
	err := s.read(ctx).Where("session_id = ?", sessionID).Take(&sess).Error
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", sessionID, notFound(err))
	}
	return &sess, nil
}

// SessionFilter narrows ListSessions; zero fields do not filter.
type SessionFilter struct {
	// Team matches sessions from or to the team.
	Team     string
	FromTeam string
	ToTeam   string
	Status   SessionStatus
	// Since keeps sessions last used (or, never used, created) at or after it.
	Since time.Time
	// Limit caps the result; zero or less means no cap.
	Limit int
}

// ListSessions returns the sessions matching f, most recently used first.
func (s *Store) ListSessions(ctx context.Context, f SessionFilter) ([]Session, error) {
	var out []Session
	if err := s.listSessions(ctx, f).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

// listSessions is ListSessions's query (plan_test.go explains it).
func (s *Store) listSessions(ctx context.Context, f SessionFilter) *gorm.DB {
	q := s.filterSessions(ctx, f)
	if f.Team != "" && f.Since.IsZero() && f.Limit > 0 {
		// With Since, filterSessions's range scans already read only the
		// team's recent rows, and measured faster than teamNewest.
		q = s.teamNewest(ctx, f)
	}
	if f.Limit > 0 {
		q = q.Limit(f.Limit)
	}
	return q.Order(recentExpr + " DESC").Order("id DESC")
}

// CountSessions counts the sessions ListSessions would return without a
// Limit, without loading them.
func (s *Store) CountSessions(ctx context.Context, f SessionFilter) (int64, error) {
	var n int64
	if err := s.filterSessions(ctx, f).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count sessions: %w", err)
	}
	return n, nil
}

func (s *Store) filterSessions(ctx context.Context, f SessionFilter) *gorm.DB {
	if f.Team == "" || f.Since.IsZero() {
		q := whereTeams(s.read(ctx).Model(&Session{}), f.Team, f.FromTeam, f.ToTeam, string(f.Status))
		if !f.Since.IsZero() {
			q = q.Where(recentExpr+" >= ?", utc(f.Since))
		}
		return q
	}
	// The team matches either column. Written as a plain OR, SQLite's
	// planner, once ANALYZE has run, walks idx_sessions_recent through every
	// session since Since and filters them (13 ms at 100k sessions, where a
	// team has a handful): it cannot know the team is rare among them. The
	// union of two range scans, one per (team, recent) index, reads only
	// the team's own rows on both engines.
	q := whereTeams(s.read(ctx).Model(&Session{}), "", f.FromTeam, f.ToTeam, string(f.Status))
	since := utc(f.Since)
	return q.Where("id IN (SELECT id FROM sessions WHERE from_team = ? AND "+recentExpr+" >= ?"+
		" UNION SELECT id FROM sessions WHERE to_team = ? AND "+recentExpr+" >= ?)",
		f.Team, since, f.Team, since)
}

// teamNewest narrows a capped list of a team's sessions (no Since) to the newest
// Limit on each side, read from the end of the (team, recent) index: an OR
// of the two columns, or the union of filterSessions, reads and sorts every
// session of the team, which grew 1.97x from 10k to 100k sessions. The
// newest Limit of both sides are among the newest Limit of each, so the
// outer order and limit give the same rows. Every other filter goes inside
// both sides, as it must for that to hold.
func (s *Store) teamNewest(ctx context.Context, f SessionFilter) *gorm.DB {
	side := func(col string) *gorm.DB {
		// A statement of its own: the two sides must not share conditions.
		q := whereTeams(s.reader().Session(&gorm.Session{NewDB: true, Context: ctx}).Model(&Session{}).Select("id"), "", f.FromTeam, f.ToTeam, string(f.Status)).
			Where(col+" = ?", f.Team)
		return q.Order(recentExpr + " DESC").Order("id DESC").Limit(f.Limit)
	}
	return s.read(ctx).Model(&Session{}).
		Where("id IN (SELECT id FROM (?) AS f UNION SELECT id FROM (?) AS t)", side("from_team"), side("to_team"))
}

// updateSession applies values to the session with the given id and
// reports ErrNotFound when there is none.
func (s *Store) updateSession(ctx context.Context, what, sessionID string, values map[string]any) error {
	res := s.db.WithContext(ctx).Model(&Session{}).Where("session_id = ?", sessionID).Updates(values)
	if res.Error != nil {
		return fmt.Errorf("%s for session %s: %w", what, sessionID, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%s for session %s: %w", what, sessionID, ErrNotFound)
	}
	return nil
}

// RecordUsage notes that a message was sent into the session at at.
func (s *Store) RecordUsage(ctx context.Context, sessionID string, at time.Time) error {
	return s.updateSession(ctx, "record usage", sessionID, map[string]any{"last_used_at": utc(at)})
}

// RecordResponse notes that the session answered at at.
func (s *Store) RecordResponse(ctx context.Context, sessionID string, at time.Time) error {
	return s.updateSession(ctx, "record response", sessionID, map[string]any{"last_response_at": utc(at)})
}

// IncrementMessageCount adds one to the session's message count and returns
// the new count.
func (s *Store) IncrementMessageCount(ctx context.Context, sessionID string) (int, error) {
	var n int
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&Session{}).Where("session_id = ?", sessionID).
			Update("message_count", gorm.Expr("message_count + 1"))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return tx.Model(&Session{}).Where("session_id = ?", sessionID).
			Select("message_count").Scan(&n).Error
	})
	if err != nil {
		return 0, fmt.Errorf("increment message count for session %s: %w", sessionID, err)
	}
	return n, nil
}

// SetProcessState records the state of the session's Claude process.
func (s *Store) SetProcessState(ctx context.Context, sessionID string, state ProcessState) error {
	return s.updateSession(ctx, "set process state", sessionID, map[string]any{"process_state": state})
}

// SetStatus records the session's status and its last error ("" clears it).
func (s *Store) SetStatus(ctx context.Context, sessionID string, status SessionStatus, lastErr string) error {
	return s.updateSession(ctx, "set status", sessionID, map[string]any{"status": status, "last_error": text(lastErr)})
}

// SetLaunch records how the session's process was last started.
func (s *Store) SetLaunch(ctx context.Context, sessionID, launchCommand, snapshot string) error {
	return s.updateSession(ctx, "set launch", sessionID, map[string]any{
		"launch_command":       launchCommand,
		"team_config_snapshot": snapshot,
	})
}

// ReplaceSessionID gives the pair's session a new session id and a fresh
// start (session_reboot): message count zero, status active, no last error.
func (s *Store) ReplaceSessionID(ctx context.Context, from, to, newSessionID string) (*Session, error) {
	if _, err := uuid.Parse(newSessionID); err != nil {
		return nil, fmt.Errorf("replace session id for %s->%s: %q is not a UUID", from, to, newSessionID)
	}
	res := s.db.WithContext(ctx).Model(&Session{}).
		Where("from_team = ? AND to_team = ?", from, to).
		Updates(map[string]any{
			"session_id":    newSessionID,
			"message_count": 0,
			"status":        SessionActive,
			"last_error":    "",
		})
	if res.Error != nil {
		return nil, fmt.Errorf("replace session id for %s->%s: %w", from, to, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, fmt.Errorf("replace session id for %s->%s: %w", from, to, ErrNotFound)
	}
	return s.SessionByPair(ctx, from, to)
}

// DeleteSession forgets the session. Its messages stay, for message_status.
func (s *Store) DeleteSession(ctx context.Context, sessionID string) error {
	res := s.db.WithContext(ctx).Where("session_id = ?", sessionID).Delete(&Session{})
	if res.Error != nil {
		return fmt.Errorf("delete session %s: %w", sessionID, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("delete session %s: %w", sessionID, ErrNotFound)
	}
	return nil
}

// StartCompaction marks the session as being compacted.
func (s *Store) StartCompaction(ctx context.Context, sessionID string) error {
	return s.updateSession(ctx, "start compaction", sessionID, map[string]any{"status": SessionCompacting})
}

// FinishCompaction records a completed compaction at at. The message count
// restarts from zero because it measures the context compaction just shrank;
// without that ShouldCompact would fire again on every message.
func (s *Store) FinishCompaction(ctx context.Context, sessionID string, at time.Time) error {
	return s.updateSession(ctx, "finish compaction", sessionID, map[string]any{
		"status":            SessionActive,
		"compaction_count":  gorm.Expr("compaction_count + 1"),
		"last_compacted_at": utc(at),
		"message_count":     0,
		"last_error":        "",
	})
}

// ShouldCompact reports whether the session's context is due for
// compaction: over CompactMaxMessages messages, or over CompactOldMessages
// and older than CompactOldAge. Age counts from the last compaction when
// there was one, from creation otherwise.
func ShouldCompact(s *Session, now time.Time) bool {
	if s.MessageCount > CompactMaxMessages {
		return true
	}
	since := s.CreatedAt
	if s.LastCompactedAt != nil {
		since = *s.LastCompactedAt
	}
	return s.MessageCount > CompactOldMessages && now.Sub(since) > CompactOldAge
}

// ResetProcessStates marks every session's process as stopped. At start-up
// no process survives the previous daemon, whatever the records say.
func (s *Store) ResetProcessStates(ctx context.Context) (int64, error) {
	res := s.db.WithContext(ctx).Model(&Session{}).
		Where("process_state <> ?", ProcessStopped).
		Update("process_state", ProcessStopped)
	if res.Error != nil {
		return 0, fmt.Errorf("reset process states: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// Stats is a summary of the store's contents, for team_status and doctor.
type Stats struct {
	Sessions               int64
	SessionsByStatus       map[SessionStatus]int64
	SessionsByProcessState map[ProcessState]int64
	MessagesByStatus       map[MessageStatus]int64
}

// Stats counts sessions and messages.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	st := Stats{
		SessionsByStatus:       map[SessionStatus]int64{},
		SessionsByProcessState: map[ProcessState]int64{},
		MessagesByStatus:       map[MessageStatus]int64{},
	}
	db := s.read(ctx)
	var rows []struct {
		Grp string
		N   int64
	}
	if err := db.Model(&Session{}).Select("status AS grp, COUNT(*) AS n").Group("status").Scan(&rows).Error; err != nil {
		return Stats{}, fmt.Errorf("stats: count sessions by status: %w", err)
	}
	for _, r := range rows {
		st.SessionsByStatus[SessionStatus(r.Grp)] = r.N
		st.Sessions += r.N
	}
	rows = rows[:0]
	if err := db.Model(&Session{}).Select("process_state AS grp, COUNT(*) AS n").Group("process_state").Scan(&rows).Error; err != nil {
		return Stats{}, fmt.Errorf("stats: count sessions by process state: %w", err)
	}
	for _, r := range rows {
		st.SessionsByProcessState[ProcessState(r.Grp)] = r.N
	}
	// From the totals, not a count of every message ever sent.
	msgs, err := s.MessageCounts(ctx, "")
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	maps.Copy(st.MessagesByStatus, msgs)
	return st, nil
}
