package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// A turn used to cost nine to ten statements: MarkDelivering,
// SetProcessState(busy), RecordUsage, SetProcessState(idle), SetStatus,
// RecordResponse, IncrementMessageCount (an update and a read),
// FinishMessage, and MessageByID to tell the waiters. BeginTurn, EndTurn and
// CompleteMessage do the same in three writes and no read-back, with the
// same guarantees; the single-purpose methods stay for other callers.

// BeginTurn records, in one transaction, that message messageID is about to
// be written into session sessionID: the message as MarkDelivering leaves
// it (running, one more attempt, DeliveredAt = at), and the session busy and
// last used at at. Call it before writing, as MarkDelivering. A message
// already final is ErrFinished; a missing message or session ErrNotFound;
// either way nothing is written.
func (s *Store) BeginTurn(ctx context.Context, messageID uint64, sessionID string, at time.Time) error {
	at = utc(at)
	err := s.write(ctx, true, func(ctx context.Context, tx *gorm.DB) error {
		st := &Store{db: tx}
		ok, err := st.updateUnfinished(ctx, messageID, map[string]any{
			"status":       MessageRunning,
			"session_id":   sessionID,
			"delivered_at": at,
			"attempts":     gorm.Expr("attempts + 1"),
		})
		if err == nil && !ok {
			err = ErrFinished
		}
		if err != nil {
			return fmt.Errorf("mark message %d delivering: %w", messageID, err)
		}
		return st.updateSession(ctx, "mark busy", sessionID, map[string]any{
			"process_state": ProcessBusy,
			"last_used_at":  at,
		})
	})
	if err != nil {
		return fmt.Errorf("begin turn: %w", err)
	}
	return nil
}

// EndTurn records that session sessionID answered at at, in one statement,
// and returns the updated session (for ShouldCompact): the process is idle,
// LastResponseAt is at, MessageCount counts one more, and a session in error
// is active again with its last error cleared (it answers again: the
// earlier failure is history). A missing session is ErrNotFound.
func (s *Store) EndTurn(ctx context.Context, sessionID string, at time.Time) (*Session, error) {
	var (
		sess Session
		rows int64
	)
	// In SET, columns on the right are the row's values before the update,
	// on both engines, so status and last_error are tested as they were.
	err := s.write(ctx, false, func(_ context.Context, db *gorm.DB) error {
		res := db.Model(&sess).Clauses(clause.Returning{}).
			Where("session_id = ?", sessionID).
			Updates(map[string]any{
				"process_state":    ProcessIdle,
				"last_response_at": utc(at),
				"message_count":    gorm.Expr("message_count + 1"),
				"status":           gorm.Expr("CASE WHEN status = ? THEN ? ELSE status END", SessionError, SessionActive),
				"last_error":       gorm.Expr("CASE WHEN status = ? THEN '' ELSE last_error END", SessionError),
			})
		rows = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return nil, fmt.Errorf("end turn for session %s: %w", sessionID, err)
	}
	if rows == 0 {
		return nil, fmt.Errorf("end turn for session %s: %w", sessionID, ErrNotFound)
	}
	return &sess, nil
}

// CompleteMessage is FinishMessage returning the finished row, in one
// statement: when this call finished message id it returns the row as
// stored (what MessageByID would read) and true; when the message was
// already final it returns nil and false, and nothing changed. A missing
// message is ErrNotFound.
func (s *Store) CompleteMessage(ctx context.Context, id uint64, status MessageStatus, answer, errText string, at time.Time, duration time.Duration) (*Message, bool, error) {
	if !status.Final() {
		return nil, false, fmt.Errorf("complete message %d: %q is not a final status", id, status)
	}
	var (
		m    Message
		rows int64
	)
	err := s.write(ctx, false, func(_ context.Context, db *gorm.DB) error {
		res := db.Model(&m).Clauses(clause.Returning{}).
			Where("id = ? AND status IN ?", id, []MessageStatus{MessageQueued, MessageRunning}).
			Updates(map[string]any{
				"status":      status,
				"answer":      text(answer),
				"error":       text(errText),
				"finished_at": utc(at),
				"duration_ms": duration.Milliseconds(),
			})
		rows = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return nil, false, fmt.Errorf("complete message %d: %w", id, err)
	}
	if rows == 1 {
		return &m, true, nil
	}
	// Already final, or missing: a read tells which.
	var n int64
	if err := s.read(ctx).Model(&Message{}).Where("id = ?", id).Count(&n).Error; err != nil {
		return nil, false, fmt.Errorf("complete message %d: %w", id, err)
	}
	if n == 0 {
		return nil, false, fmt.Errorf("complete message %d: %w", id, ErrNotFound)
	}
	return nil, false, nil
}
