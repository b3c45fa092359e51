package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// A turn used to cost nine to ten statements: MarkDelivering,
// SetProcessState(busy), RecordUsage, SetProcessState(idle), SetStatus,
// RecordResponse, IncrementMessageCount (an update and a read),
// FinishMessage, and MessageByID to tell the waiters. BeginTurn and
// FinishTurn (EndTurn and CompleteMessage in one transaction) do the same
// in two writes and no read-back, with the same guarantees; the
// single-purpose methods stay for other callers.

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
	var sess *Session
	err := s.write(ctx, false, func(_ context.Context, db *gorm.DB) error {
		var err error
		sess, err = endTurn(db, sessionID, at)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("end turn for session %s: %w", sessionID, err)
	}
	return sess, nil
}

// endTurn is EndTurn's statement on db; a missing session is ErrNotFound.
func endTurn(db *gorm.DB, sessionID string, at time.Time) (*Session, error) {
	var sess Session
	// In SET, columns on the right are the row's values before the update,
	// on both engines, so status and last_error are tested as they were.
	res := db.Model(&sess).Clauses(clause.Returning{}).
		Where("session_id = ?", sessionID).
		Updates(map[string]any{
			"process_state":    ProcessIdle,
			"last_response_at": utc(at),
			"message_count":    gorm.Expr("message_count + 1"),
			"status":           gorm.Expr("CASE WHEN status = ? THEN ? ELSE status END", SessionError, SessionActive),
			"last_error":       gorm.Expr("CASE WHEN status = ? THEN '' ELSE last_error END", SessionError),
		})
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, ErrNotFound
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
	var m *Message
	err := s.write(ctx, false, func(_ context.Context, db *gorm.DB) error {
		var err error
		m, err = completeMessage(db, id, status, answer, errText, at, duration)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("complete message %d: %w", id, err)
	}
	return s.completed(ctx, id, m)
}

// FinishTurn is EndTurn and CompleteMessage in one write, one commit: the
// turn of session sessionID ended at at, and message id has its outcome.
// It returns the session as EndTurn does (nil when it no longer exists:
// a session deleted during the turn does not keep the message from its
// outcome) and the message as CompleteMessage does.
func (s *Store) FinishTurn(ctx context.Context, sessionID string, id uint64, status MessageStatus, answer, errText string, at time.Time, duration time.Duration) (*Session, *Message, bool, error) {
	if !status.Final() {
		return nil, nil, false, fmt.Errorf("finish turn: message %d: %q is not a final status", id, status)
	}
	var (
		sess *Session
		m    *Message
	)
	err := s.write(ctx, true, func(_ context.Context, tx *gorm.DB) error {
		var err error
		sess, err = endTurn(tx, sessionID, at)
		if errors.Is(err, ErrNotFound) {
			sess, err = nil, nil
		}
		if err != nil {
			return err
		}
		m, err = completeMessage(tx, id, status, answer, errText, at, duration)
		return err
	})
	if err != nil {
		return nil, nil, false, fmt.Errorf("finish turn: %w", err)
	}
	m, ok, err := s.completed(ctx, id, m)
	return sess, m, ok, err
}

// completeMessage is CompleteMessage's statement on db: the row it
// finished, or nil when it finished none.
func completeMessage(db *gorm.DB, id uint64, status MessageStatus, answer, errText string, at time.Time, duration time.Duration) (*Message, error) {
	var m Message
	res := db.Model(&m).Clauses(clause.Returning{}).
		Where("id = ? AND status IN ?", id, []MessageStatus{MessageQueued, MessageRunning}).
		Updates(map[string]any{
			"status":      status,
			"answer":      text(answer),
			"error":       text(errText),
			"finished_at": utc(at),
			"duration_ms": duration.Milliseconds(),
		})
	if res.Error != nil || res.RowsAffected == 0 {
		return nil, res.Error
	}
	return &m, nil
}

// completed turns completeMessage's outcome into CompleteMessage's: when
// it finished nothing, a read tells an already final message (nil, false)
// from a missing one (ErrNotFound).
func (s *Store) completed(ctx context.Context, id uint64, m *Message) (*Message, bool, error) {
	if m != nil {
		return m, true, nil
	}
	var n int64
	if err := s.read(ctx).Model(&Message{}).Where("id = ?", id).Count(&n).Error; err != nil {
		return nil, false, fmt.Errorf("complete message %d: %w", id, err)
	}
	if n == 0 {
		return nil, false, fmt.Errorf("complete message %d: %w", id, ErrNotFound)
	}
	return nil, false, nil
}
