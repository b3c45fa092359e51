package models

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm/clause"
)

// CreateSessionWithID creates the pair's session under a session id the
// caller chose (a standby Claude process already started with it). When the
// pair has a session already, that one is returned and created is false: the
// caller must then not use its id.
func (s *Store) CreateSessionWithID(ctx context.Context, from, to, sessionID string) (sess *Session, created bool, err error) {
	return s.createWithID(ctx, from, to, sessionID, ProcessStopped, "", "")
}

// CreateAdoptedSession is CreateSessionWithID for a process that is
// already running under sessionID (a standby taken by a new pair): the row
// is created idle, with the process's launch command and the team's config
// snapshot, in the one statement, where a new pair's first ask used to wait
// for three writes (create, SetProcessState, SetLaunch).
func (s *Store) CreateAdoptedSession(ctx context.Context, from, to, sessionID, launchCommand, snapshot string) (sess *Session, created bool, err error) {
	return s.createWithID(ctx, from, to, sessionID, ProcessIdle, launchCommand, snapshot)
}

func (s *Store) createWithID(ctx context.Context, from, to, sessionID string, state ProcessState, launchCommand, snapshot string) (sess *Session, created bool, err error) {
	if from == "" || to == "" {
		return nil, false, fmt.Errorf("create session %s->%s: team names must not be empty", from, to)
	}
	if _, err := uuid.Parse(sessionID); err != nil {
		return nil, false, fmt.Errorf("create session %s->%s: %q is not a UUID", from, to, sessionID)
	}
	sess = &Session{
		FromTeam:     from,
		ToTeam:       to,
		SessionID:    sessionID,
		Status:       SessionActive,
		ProcessState: state,

		LaunchCommand:      launchCommand,
		TeamConfigSnapshot: snapshot,
	}
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(sess)
	if res.Error != nil {
		return nil, false, fmt.Errorf("create session %s->%s: %w", from, to, res.Error)
	}
	if res.RowsAffected == 1 {
		return sess, true, nil
	}
	existing, err := s.SessionByPair(ctx, from, to)
	if err != nil {
		// The conflict was on the session id, not the pair.
		return nil, false, fmt.Errorf("create session %s->%s with id %s: %w", from, to, sessionID, err)
	}
	return existing, false, nil
}
