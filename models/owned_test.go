package models

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestOwnedCleanup: a broker restarting after a crash settles the process
// states and pending permission requests of the pairs it may own (its
// teams, lease its own, free or expired) and leaves a live broker's alone.
func TestOwnedCleanup(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		now := time.Now()
		ttl := 15 * time.Second

		// Broker "laptop" runs api and ops; "desk" is alive and runs api too.
		type row struct {
			pair  Pair
			lease string        // owner, "" for none
			ago   time.Duration // when the lease was taken, before now
			owned bool          // what laptop may settle at now
		}
		rows := []row{
			{Pair{"web", "api"}, "laptop", 0, true},       // its own lease
			{Pair{"cli", "api"}, "", 0, true},             // free
			{Pair{"ops", "api"}, "desk", 2 * ttl, true},   // a dead broker's, expired
			{Pair{"web", "ops"}, "laptop", 2 * ttl, true}, // its own, expired
			{Pair{"db", "api"}, "desk", 0, false},         // desk holds it
			{Pair{"api", "web"}, "", 0, false},            // web is not laptop's team
			{Pair{"api", "db"}, "laptop", 0, false},       // nor db, lease or not
		}
		perms := map[Pair]*PermissionRequest{}
		for i, r := range rows {
			if r.lease != "" {
				if _, held, err := s.AcquireLease(ctx, r.pair, r.lease, now.Add(-r.ago), ttl); err != nil || !held {
					t.Fatalf("AcquireLease(%v, %s) = %v, %v", r.pair, r.lease, held, err)
				}
			}
			sess, _, err := s.GetOrCreateSession(ctx, r.pair.From, r.pair.To)
			if err != nil {
				t.Fatal(err)
			}
			mustDo(t, s.SetProcessState(ctx, sess.SessionID, ProcessBusy))
			perms[r.pair] = newPermission(t, s, uint64(i+1), r.pair.From, r.pair.To, "Write")
		}
		// A session already stopped and a request already decided are not
		// counted again.
		stopped, _, err := s.GetOrCreateSession(ctx, "docs", "api")
		if err != nil {
			t.Fatal(err)
		}
		decided := newPermission(t, s, 99, "docs", "api", "Bash")
		if _, err := s.DecidePermission(ctx, decided.ID, true, "alice", ""); err != nil {
			t.Fatal(err)
		}
		// A request made after the restart is the new run's own.
		before := time.Now()
		fresh := newPermission(t, s, 100, "web", "api", "Edit")
		if !fresh.CreatedAt.After(utc(before)) {
			fresh.CreatedAt = utc(before).Add(time.Microsecond) // the clock did not move: make it later
			mustDo(t, s.db.Model(fresh).Update("created_at", fresh.CreatedAt).Error)
		}

		laptop := Owned{Owner: "laptop", Teams: []string{"api", "ops"}, Now: now}
		wantOwned := 0
		for _, r := range rows {
			if r.owned {
				wantOwned++
			}
		}
		n, err := s.ResetOwnedProcessStates(ctx, laptop)
		if err != nil || n != int64(wantOwned) {
			t.Errorf("ResetOwnedProcessStates = %d, %v; want %d", n, err, wantOwned)
		}
		n, err = s.ExpireOwnedPermissions(ctx, laptop, before)
		if err != nil || n != int64(wantOwned) {
			t.Errorf("ExpireOwnedPermissions = %d, %v; want %d", n, err, wantOwned)
		}
		for _, r := range rows {
			sess, err := s.SessionByPair(ctx, r.pair.From, r.pair.To)
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.PermissionByID(ctx, perms[r.pair].ID)
			if err != nil {
				t.Fatal(err)
			}
			wantState, wantStatus := ProcessBusy, PermissionPending
			if r.owned {
				wantState, wantStatus = ProcessStopped, PermissionExpired
			}
			if sess.ProcessState != wantState || p.Status != wantStatus {
				t.Errorf("%s->%s (lease %q): process %s, request %s; want %s, %s", r.pair.From, r.pair.To, r.lease, sess.ProcessState, p.Status, wantState, wantStatus)
			}
			if r.owned && (p.DecidedBy != "switchboard" || p.DecidedAt == nil || p.Reason == "") {
				t.Errorf("expired request %+v: want decided by switchboard, when and why", p)
			}
		}
		if got, _ := s.SessionByID(ctx, stopped.SessionID); got.ProcessState != ProcessStopped {
			t.Errorf("stopped session is %s", got.ProcessState)
		}
		if got, _ := s.PermissionByID(ctx, decided.ID); got.Status != PermissionAllowed || got.DecidedBy != "alice" {
			t.Errorf("a decided request changed: %+v", got)
		}
		if got, _ := s.PermissionByID(ctx, fresh.ID); got.Status != PermissionPending {
			t.Errorf("a request made after the restart was expired: %+v", got)
		}

		// Again: nothing left to settle.
		if n, err := s.ResetOwnedProcessStates(ctx, laptop); err != nil || n != 0 {
			t.Errorf("second ResetOwnedProcessStates = %d, %v; want 0", n, err)
		}
		if n, err := s.ExpireOwnedPermissions(ctx, laptop, before); err != nil || n != 0 {
			t.Errorf("second ExpireOwnedPermissions = %d, %v; want 0", n, err)
		}
		// No teams: nothing, not an SQL error.
		if n, err := s.ResetOwnedProcessStates(ctx, Owned{Owner: "laptop", Now: now}); err != nil || n != 0 {
			t.Errorf("ResetOwnedProcessStates with no teams = %d, %v; want 0", n, err)
		}
		if n, err := s.ExpireOwnedPermissions(ctx, Owned{Owner: "laptop", Now: now}, before); err != nil || n != 0 {
			t.Errorf("ExpireOwnedPermissions with no teams = %d, %v; want 0", n, err)
		}
	})
}

// TestOwnedCleanupOnePair: when desk dies and laptop takes one of its pairs
// over after the lease, laptop settles that pair alone; desk's other pairs
// wait for whoever takes them.
func TestOwnedCleanupOnePair(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		ttl := 15 * time.Second
		start := time.Now()
		pairs := []Pair{{"web", "api"}, {"cli", "api"}}
		var ids []uint64
		for i, p := range pairs {
			if _, held, err := s.AcquireLease(ctx, p, "desk", start, ttl); err != nil || !held {
				t.Fatalf("AcquireLease(%v) = %v, %v", p, held, err)
			}
			sess, _, err := s.GetOrCreateSession(ctx, p.From, p.To)
			if err != nil {
				t.Fatal(err)
			}
			mustDo(t, s.SetProcessState(ctx, sess.SessionID, ProcessBusy))
			ids = append(ids, newPermission(t, s, uint64(i+1), p.From, p.To, "Write").ID)
		}
		takeover := start.Add(ttl + time.Second)
		if _, held, err := s.AcquireLease(ctx, pairs[0], "laptop", takeover, ttl); err != nil || !held {
			t.Fatalf("take over %v = %v, %v", pairs[0], held, err)
		}
		// While desk's lease was valid, laptop may settle neither pair.
		o := Owned{Owner: "laptop", Teams: []string{"api"}, Now: start, Pair: &pairs[1]}
		if n, err := s.ResetOwnedProcessStates(ctx, o); err != nil || n != 0 {
			t.Errorf("ResetOwnedProcessStates of desk's live pair = %d, %v; want 0", n, err)
		}
		o.Pair = &pairs[0]
		o.Now = takeover
		n, err := s.ResetOwnedProcessStates(ctx, o)
		if err != nil || n != 1 {
			t.Errorf("ResetOwnedProcessStates(%v) = %d, %v; want 1", pairs[0], n, err)
		}
		n, err = s.ExpireOwnedPermissions(ctx, o, time.Now())
		if err != nil || n != 1 {
			t.Errorf("ExpireOwnedPermissions(%v) = %d, %v; want 1", pairs[0], n, err)
		}
		var states, statuses []string
		for i, p := range pairs {
			sess, err := s.SessionByPair(ctx, p.From, p.To)
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.PermissionByID(ctx, ids[i])
			if err != nil {
				t.Fatal(err)
			}
			states = append(states, string(sess.ProcessState))
			statuses = append(statuses, string(r.Status))
		}
		if want := []string{"stopped", "busy"}; !slices.Equal(states, want) {
			t.Errorf("process states %v = %v, want %v", pairs, states, want)
		}
		if want := []string{"expired", "pending"}; !slices.Equal(statuses, want) {
			t.Errorf("request statuses %v = %v, want %v", pairs, statuses, want)
		}
	})
}
