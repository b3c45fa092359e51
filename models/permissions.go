package models

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"gorm.io/gorm/clause"
)

// PermissionMode is how a team's tool-permission prompts are answered.
type PermissionMode string

// Permission modes (the team's grantPermission setting).
const (
	PermissionYes     PermissionMode = "yes"
	PermissionNo      PermissionMode = "no"
	PermissionAsk     PermissionMode = "ask"
	PermissionForward PermissionMode = "forward"
)

// PermissionStatus is where a permission request is. Only pending changes.
type PermissionStatus string

// Permission request statuses.
const (
	PermissionPending PermissionStatus = "pending"
	PermissionAllowed PermissionStatus = "allowed"
	PermissionDenied  PermissionStatus = "denied"
	PermissionExpired PermissionStatus = "expired"
)

// MaxPermissionInput caps PermissionRequest.Input in bytes: the tool input
// is shown to a person deciding, not replayed, and a Write's content can be
// megabytes.
const MaxPermissionInput = 4 << 10

// ErrAlreadyDecided is returned (wrapped) when a permission request that is
// no longer pending would be decided again.
var ErrAlreadyDecided = errors.New("permission request already decided")

// PermissionRequest is one tool-permission prompt from a team's Claude
// (a control request in stream-json) and its decision, kept so that every
// request and who decided it can be looked at afterwards.
type PermissionRequest struct {
	ID uint64 `gorm:"primaryKey;autoIncrement"`
	// MessageID is the message whose turn asked.
	MessageID uint64 `gorm:"not null;index"`
	SessionID string `gorm:"not null"`
	FromTeam  string `gorm:"not null"`
	// ToTeam is the team whose Claude asked.
	ToTeam string `gorm:"not null"`
	// RequestID is Claude's control request id, to answer it by.
	RequestID string `gorm:"not null"`
	Tool      string `gorm:"not null"`
	// Input is the tool's input as JSON, clipped to MaxPermissionInput
	// bytes (so it may no longer parse).
	Input  string
	Mode   PermissionMode   `gorm:"not null"`
	Status PermissionStatus `gorm:"not null;index"`
	// DecidedBy says who decided: a user, "mode" for the team's setting,
	// "timeout", a client name.
	DecidedBy string
	Reason    string
	CreatedAt time.Time
	DecidedAt *time.Time
}

// clipBytes returns s cut to at most max bytes on a rune boundary, ending
// in "…" when it was cut.
func clipBytes(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// CreatePermissionRequest stores p and sets its ID and CreatedAt. Status
// defaults to pending; Input is clipped to MaxPermissionInput.
func (s *Store) CreatePermissionRequest(ctx context.Context, p *PermissionRequest) error {
	if p.MessageID == 0 || p.RequestID == "" || p.Tool == "" {
		return fmt.Errorf("create permission request: message id, request id and tool must be set (got %d, %q, %q)", p.MessageID, p.RequestID, p.Tool)
	}
	p.ID = 0
	if p.Status == "" {
		p.Status = PermissionPending
	}
	p.Input = clipBytes(text(p.Input), MaxPermissionInput)
	p.CreatedAt = s.db.NowFunc()
	if p.DecidedAt != nil {
		at := utc(*p.DecidedAt)
		p.DecidedAt = &at
	}
	if err := s.db.WithContext(ctx).Create(p).Error; err != nil {
		return fmt.Errorf("create permission request for message %d: %w", p.MessageID, err)
	}
	return nil
}

// PermissionByID returns the permission request with the given id.
func (s *Store) PermissionByID(ctx context.Context, id uint64) (*PermissionRequest, error) {
	var p PermissionRequest
	if err := s.read(ctx).Take(&p, id).Error; err != nil {
		return nil, fmt.Errorf("permission request %d: %w", id, notFound(err))
	}
	return &p, nil
}

// DecidePermission allows or denies pending request id, recording by and
// reason, and returns the decided row. Exactly one decision wins: a request
// that is no longer pending (decided, expired) is ErrAlreadyDecided, on
// both engines, however many callers race; a missing one is ErrNotFound.
func (s *Store) DecidePermission(ctx context.Context, id uint64, allow bool, by, reason string) (*PermissionRequest, error) {
	status := PermissionDenied
	if allow {
		status = PermissionAllowed
	}
	var p PermissionRequest
	// One conditional UPDATE … RETURNING: the row lock (Postgres) or the
	// single writer (SQLite) makes the status check and the write atomic,
	// and the caller gets the row without a second read.
	res := s.db.WithContext(ctx).Model(&p).Clauses(clause.Returning{}).
		Where("id = ? AND status = ?", id, PermissionPending).
		Updates(map[string]any{
			"status":     status,
			"decided_by": by,
			"reason":     text(reason),
			"decided_at": s.db.NowFunc(),
		})
	if res.Error != nil {
		return nil, fmt.Errorf("decide permission request %d: %w", id, res.Error)
	}
	if res.RowsAffected == 1 {
		return &p, nil
	}
	cur, err := s.PermissionByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("decide permission request %d: %w", id, err)
	}
	return nil, fmt.Errorf("decide permission request %d: %w (%s by %q)", id, ErrAlreadyDecided, cur.Status, cur.DecidedBy)
}

// PendingPermissions returns the pending permission requests of team (as
// either side of the pair; "" means every team), oldest first.
func (s *Store) PendingPermissions(ctx context.Context, team string) ([]PermissionRequest, error) {
	q := whereTeams(s.read(ctx).Model(&PermissionRequest{}), team, "", "", string(PermissionPending))
	var out []PermissionRequest
	if err := q.Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("pending permission requests of %q: %w", team, err)
	}
	return out, nil
}

// PermissionsForMessage returns every permission request made while
// answering message messageID, oldest first.
func (s *Store) PermissionsForMessage(ctx context.Context, messageID uint64) ([]PermissionRequest, error) {
	var out []PermissionRequest
	if err := s.read(ctx).Where("message_id = ?", messageID).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("permission requests of message %d: %w", messageID, err)
	}
	return out, nil
}

// ExpirePendingPermissions marks requests still pending that were created
// before before as expired, and returns how many. At start-up (before = the
// start time) it closes the requests whose Claude process died with the
// previous daemon: nobody can answer them any more.
func (s *Store) ExpirePendingPermissions(ctx context.Context, before time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Model(&PermissionRequest{}).
		Where("status = ? AND created_at < ?", PermissionPending, utc(before)).
		Updates(s.expiredUnanswered())
	if res.Error != nil {
		return 0, fmt.Errorf("expire pending permission requests: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// expiredUnanswered is the update that expires a request whose asking
// process ended before anyone decided it.
func (s *Store) expiredUnanswered() map[string]any {
	return map[string]any{
		"status":     PermissionExpired,
		"decided_by": "switchboard",
		"reason":     "no decision before the process that asked ended",
		"decided_at": s.db.NowFunc(),
	}
}
