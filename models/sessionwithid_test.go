package models

import (
	"context"
	"testing"
)

func TestCreateSessionWithID(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		first, second := NewSessionID(), NewSessionID()
		sess, created, err := s.CreateSessionWithID(ctx, "web", "api", first)
		if err != nil || !created || sess.SessionID != first || sess.Status != SessionActive {
			t.Fatalf("first create = %+v, %v, %v; want created with id %s", sess, created, err, first)
		}
		// The pair has a session: the caller's id is not used.
		sess, created, err = s.CreateSessionWithID(ctx, "web", "api", second)
		if err != nil || created || sess.SessionID != first {
			t.Fatalf("second create = %+v, %v, %v; want the existing session %s", sess, created, err, first)
		}
		// Another pair cannot take an id in use.
		if _, created, err := s.CreateSessionWithID(ctx, "cli", "api", first); err == nil || created {
			t.Fatalf("reusing session id %s for another pair: created %v, err %v; want an error", first, created, err)
		}
		if _, _, err := s.CreateSessionWithID(ctx, "cli", "api", "not-a-uuid"); err == nil {
			t.Fatal("a session id that is not a UUID was accepted")
		}
		got, _, err := s.GetOrCreateSession(ctx, "web", "api")
		if err != nil || got.SessionID != first {
			t.Fatalf("GetOrCreateSession after = %+v, %v", got, err)
		}
	})
}

// A standby taken by a new pair is running already: its record is created
// idle and with its launch, as SessionByPair shows it, and an existing
// pair's record is left as it was.
func TestCreateAdoptedSession(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		id := NewSessionID()
		sess, created, err := s.CreateAdoptedSession(ctx, "web", "api", id, "claude --session-id "+id, `{"name":"api"}`)
		if err != nil || !created || sess.SessionID != id {
			t.Fatalf("create = %+v, %v, %v; want created with id %s", sess, created, err, id)
		}
		got, err := s.SessionByPair(ctx, "web", "api")
		if err != nil || got.ProcessState != ProcessIdle || got.LaunchCommand != "claude --session-id "+id || got.TeamConfigSnapshot != `{"name":"api"}` || got.Status != SessionActive {
			t.Fatalf("stored = %+v, %v; want idle, active, with the launch command and snapshot", got, err)
		}
		other := NewSessionID()
		again, created, err := s.CreateAdoptedSession(ctx, "web", "api", other, "claude --session-id "+other, "{}")
		if err != nil || created || again.SessionID != id || again.LaunchCommand != "claude --session-id "+id {
			t.Fatalf("second create = %+v, %v, %v; want the existing record untouched", again, created, err)
		}
	})
}
