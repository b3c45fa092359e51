package models

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// readyCond selects the messages a pair's worker should handle next: queued
// ones whose backoff has passed, and running ones, which outside the worker
// that owns them are leftovers of a crash.
const readyCond = "status = ? OR (status = ? AND not_before <= ?)"

// EnqueueMessage stores m as queued and sets its ID. CreatedAt is now, and
// so is NotBefore unless set. A zero ExpiresAt means the message never
// expires.
func (s *Store) EnqueueMessage(ctx context.Context, m *Message) error {
	if m.FromTeam == "" || m.ToTeam == "" {
		return fmt.Errorf("enqueue message %s->%s: team names must not be empty", m.FromTeam, m.ToTeam)
	}
	now := s.db.NowFunc()
	m.ID = 0
	m.Status = MessageQueued // message_totals counts it when it turns final (totals.go)
	m.CreatedAt = now
	m.UpdatedAt = now
	if m.NotBefore.IsZero() {
		m.NotBefore = now
	}
	m.Text = text(m.Text)
	if m.Nonce == "" {
		m.Nonce = newNonce()
	}
	m.NotBefore = utc(m.NotBefore)
	m.ExpiresAt = utc(m.ExpiresAt)
	err := s.write(ctx, false, func(_ context.Context, db *gorm.DB) error {
		m.ID = 0 // a batch taken back is tried again (committer)
		return db.Create(m).Error
	})
	if err != nil {
		m.ID = 0 // set by an insert whose commit failed
		return fmt.Errorf("enqueue message %s->%s: %w", m.FromTeam, m.ToTeam, err)
	}
	return nil
}

// MessageByID returns the message with the given id.
func (s *Store) MessageByID(ctx context.Context, id uint64) (*Message, error) {
	var m Message
	if err := s.read(ctx).Take(&m, id).Error; err != nil {
		return nil, fmt.Errorf("message %d: %w", id, notFound(err))
	}
	return &m, nil
}

// NextMessage returns the head of the pair's queue: its oldest message that
// is running (a crash leftover, to be resumed or failed) or queued, or
// ErrNotFound. A head still in retry backoff is returned too, and the caller
// waits for its NotBefore: messages of one pair are delivered strictly in
// order, so a later message never overtakes one that is being retried.
func (s *Store) NextMessage(ctx context.Context, from, to string, now time.Time) (*Message, error) {
	m, _, err := s.QueueHead(ctx, from, to)
	return m, err
}

// QueueHead is NextMessage that also says whether another unfinished
// message of the pair follows the head, in the same statement: a worker
// that has just settled the only one need not read the queue again to find
// it empty.
func (s *Store) QueueHead(ctx context.Context, from, to string) (head *Message, more bool, err error) {
	var ms []Message
	err = s.queueHead(ctx, from, to).Find(&ms).Error
	if err == nil && len(ms) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return nil, false, fmt.Errorf("next message %s->%s: %w", from, to, notFound(err))
	}
	return &ms[0], len(ms) > 1, nil
}

// queueHead is QueueHead's query: the pair's first two unfinished messages,
// from idx_messages_unfinished, in id order.
func (s *Store) queueHead(ctx context.Context, from, to string) *gorm.DB {
	return s.read(ctx).Model(&Message{}).
		Where("to_team = ? AND from_team = ? AND "+unfinishedCond, to, from).
		Order("id").Limit(2)
}

// PendingPairs returns every pair for which NextMessage would return a
// message at now, sorted by from then to.
func (s *Store) PendingPairs(ctx context.Context, now time.Time) ([]Pair, error) {
	var rows []struct{ FromTeam, ToTeam string }
	err := s.read(ctx).Model(&Message{}).
		Distinct("from_team", "to_team").
		Where(readyCond, MessageRunning, MessageQueued, utc(now)).
		Order("from_team").Order("to_team").
		Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("pending pairs: %w", err)
	}
	pairs := make([]Pair, len(rows))
	for i, r := range rows {
		pairs[i] = Pair{From: r.FromTeam, To: r.ToTeam}
	}
	return pairs, nil
}

// updateUnfinished applies values to message id if it is not in a final
// state. It reports whether it did; a missing message is ErrNotFound.
func (s *Store) updateUnfinished(ctx context.Context, id uint64, values map[string]any) (bool, error) {
	db := s.db.WithContext(ctx)
	res := db.Model(&Message{}).
		Where("id = ? AND status IN ?", id, []MessageStatus{MessageQueued, MessageRunning}).
		Updates(values)
	if res.Error != nil {
		return false, res.Error
	}
	if res.RowsAffected > 0 {
		return true, nil
	}
	var n int64
	if err := db.Model(&Message{}).Where("id = ?", id).Count(&n).Error; err != nil {
		return false, err
	}
	if n == 0 {
		return false, ErrNotFound
	}
	return false, nil
}

// MarkDelivering records that message id is about to be written into
// session sessionID: it is running, counts one more attempt and carries
// DeliveredAt. Call it before writing, so a crash cannot hide a delivery.
func (s *Store) MarkDelivering(ctx context.Context, id uint64, sessionID string, at time.Time) error {
	ok, err := s.updateUnfinished(ctx, id, map[string]any{
		"status":       MessageRunning,
		"session_id":   sessionID,
		"delivered_at": utc(at),
		"attempts":     gorm.Expr("attempts + 1"),
	})
	if err == nil && !ok {
		err = ErrFinished
	}
	if err != nil {
		return fmt.Errorf("mark message %d delivering: %w", id, err)
	}
	return nil
}

// MarkRunning marks message id as taken by a worker, before delivery.
func (s *Store) MarkRunning(ctx context.Context, id uint64) error {
	ok, err := s.updateUnfinished(ctx, id, map[string]any{"status": MessageRunning})
	if err == nil && !ok {
		err = ErrFinished
	}
	if err != nil {
		return fmt.Errorf("mark message %d running: %w", id, err)
	}
	return nil
}

// FinishMessage gives message id its final status, answer or error. It
// only changes a message that is not already final, so a late or repeated
// finish (a timeout racing the answer) cannot overwrite the first outcome;
// updated reports whether this call was the one that finished it.
func (s *Store) FinishMessage(ctx context.Context, id uint64, status MessageStatus, answer, errText string, at time.Time, duration time.Duration) (updated bool, err error) {
	if !status.Final() {
		return false, fmt.Errorf("finish message %d: %q is not a final status", id, status)
	}
	updated, err = s.updateUnfinished(ctx, id, map[string]any{
		"status":      status,
		"answer":      text(answer),
		"error":       text(errText),
		"finished_at": utc(at),
		"duration_ms": duration.Milliseconds(),
	})
	if err != nil {
		return false, fmt.Errorf("finish message %d: %w", id, err)
	}
	return updated, nil
}

// RetryMessage puts message id back in the queue, not to be delivered before
// notBefore, recording why the attempt failed. The failed attempt counts in
// Attempts, which sets the caller's backoff.
func (s *Store) RetryMessage(ctx context.Context, id uint64, notBefore time.Time, errText string) error {
	ok, err := s.updateUnfinished(ctx, id, map[string]any{
		"status":       MessageQueued,
		"not_before":   utc(notBefore),
		"error":        text(errText),
		"delivered_at": nil,
		"attempts":     gorm.Expr("attempts + 1"),
	})
	if err == nil && !ok {
		err = ErrFinished
	}
	if err != nil {
		return fmt.Errorf("retry message %d: %w", id, err)
	}
	return nil
}

// PostponeMessage delays message id until notBefore, recording why, and
// leaves everything else alone: a message that may already have reached
// Claude keeps its DeliveredAt, so it is never taken for undelivered.
func (s *Store) PostponeMessage(ctx context.Context, id uint64, notBefore time.Time, errText string) error {
	ok, err := s.updateUnfinished(ctx, id, map[string]any{
		"not_before": utc(notBefore),
		"error":      text(errText),
		"attempts":   gorm.Expr("attempts + 1"),
	})
	if err == nil && !ok {
		err = ErrFinished
	}
	if err != nil {
		return fmt.Errorf("postpone message %d: %w", id, err)
	}
	return nil
}

// ExpireMessages marks queued messages whose ExpiresAt has passed at now as
// expired, keeping their last delivery error in the explanation, and returns
// how many it expired.
func (s *Store) ExpireMessages(ctx context.Context, now time.Time) (int64, error) {
	now = utc(now)
	var expired int64
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var due []Message
		err := tx.Select("id", "created_at", "expires_at", "error").
			Where("status = ? AND expires_at > ? AND expires_at <= ?", MessageQueued, time.Time{}, now).
			Order("id").Find(&due).Error
		if err != nil {
			return err
		}
		for _, m := range due {
			text := fmt.Sprintf("expired after %s without delivery", m.ExpiresAt.Sub(m.CreatedAt).Round(time.Second))
			if m.Error != "" {
				text += ": " + m.Error
			}
			res := tx.Model(&Message{}).Where("id = ? AND status = ?", m.ID, MessageQueued).
				Updates(map[string]any{"status": MessageExpired, "error": text, "finished_at": now})
			if res.Error != nil {
				return res.Error
			}
			expired += res.RowsAffected
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("expire messages: %w", err)
	}
	return expired, nil
}

// MessageFilter narrows ListMessages; zero fields do not filter.
type MessageFilter struct {
	// Team matches messages from or to the team.
	Team     string
	FromTeam string
	ToTeam   string
	Status   MessageStatus
	// Limit caps the result; zero or less means no cap.
	Limit int
}

// ListMessages returns the messages matching f, newest first.
func (s *Store) ListMessages(ctx context.Context, f MessageFilter) ([]Message, error) {
	q := whereTeams(s.read(ctx).Model(&Message{}), f.Team, f.FromTeam, f.ToTeam, string(f.Status))
	if f.Limit > 0 {
		q = q.Limit(f.Limit)
	}
	var out []Message
	if err := q.Order("id DESC").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return out, nil
}

// newNonce returns 16 random hex digits for Message.Nonce.
func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
