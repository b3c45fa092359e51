package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLeases(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		ttl := 15 * time.Second
		p := Pair{From: "web", To: "api"}

		acquire := func(owner string, at time.Time, wantHeld bool, wantOwner string) Lease {
			t.Helper()
			l, held, err := s.AcquireLease(ctx, p, owner, at, ttl)
			if err != nil {
				t.Fatal(err)
			}
			if held != wantHeld || l.Owner != wantOwner {
				t.Fatalf("AcquireLease(%s at %v) = owner %q, held %v; want owner %q, held %v", owner, at, l.Owner, held, wantOwner, wantHeld)
			}
			return l
		}

		l := acquire("laptop", now, true, "laptop")
		if !l.ExpiresAt.Equal(now.Add(ttl)) || l.FromTeam != "web" || l.ToTeam != "api" {
			t.Errorf("lease = %+v, want web->api until %v", l, now.Add(ttl))
		}
		// Another broker cannot take a live lease, and learns until when.
		l = acquire("desk", now.Add(ttl/2), false, "laptop")
		if !l.ExpiresAt.Equal(now.Add(ttl)) {
			t.Errorf("refused lease expires %v, want %v unchanged", l.ExpiresAt, now.Add(ttl))
		}
		// The owner renews it.
		l = acquire("laptop", now.Add(ttl/2), true, "laptop")
		if !l.ExpiresAt.Equal(now.Add(ttl / 2).Add(ttl)) {
			t.Errorf("renewed lease expires %v, want %v", l.ExpiresAt, now.Add(ttl/2).Add(ttl))
		}
		// Once expired, another broker takes it.
		later := l.ExpiresAt.Add(time.Millisecond)
		acquire("desk", later, true, "desk")
		acquire("laptop", later, false, "desk")

		// Only the owner releases it.
		mustDo(t, s.ReleaseLease(ctx, p, "laptop"))
		if ls, _ := s.Leases(ctx); len(ls) != 1 || ls[0].Owner != "desk" {
			t.Fatalf("after a release by a non-owner, leases = %+v, want desk's kept", ls)
		}
		mustDo(t, s.ReleaseLease(ctx, p, "desk"))
		if ls, _ := s.Leases(ctx); len(ls) != 0 {
			t.Fatalf("after the owner's release, leases = %+v, want none", ls)
		}
		acquire("laptop", later, true, "laptop")

		// Pairs are leased independently.
		other := Pair{From: "api", To: "web"}
		if _, held, err := s.AcquireLease(ctx, other, "desk", later, ttl); err != nil || !held {
			t.Fatalf("AcquireLease(other pair) = held %v, %v; want held", held, err)
		}
		ls, err := s.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != 2 || ls[0].FromTeam != "api" || ls[0].Owner != "desk" || ls[1].FromTeam != "web" || ls[1].Owner != "laptop" {
			t.Errorf("Leases = %+v, want api->web by desk, web->api by laptop", ls)
		}
	})
}

func TestBrokerRegistry(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		ttl := 15 * time.Second
		laptop := BrokerRecord{Name: "laptop", Host: "laptop.lan", PID: 100, ConfigFile: "/home/me/switchboard.yaml",
			Teams: `["web","api"]`, Version: "v1"}
		mustDo(t, s.RegisterBroker(ctx, laptop, now, ttl))

		// The same name from another process, while the first is alive.
		intruder := laptop
		intruder.Host, intruder.PID = "desk.lan", 200
		err := s.RegisterBroker(ctx, intruder, now.Add(time.Second), ttl)
		if !errors.Is(err, ErrBrokerNameTaken) {
			t.Fatalf("RegisterBroker(same name, other host) = %v, want ErrBrokerNameTaken", err)
		}
		for _, want := range []string{"laptop.lan", "100", "settings.fleet.name"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		samePIDOtherHost := laptop
		samePIDOtherHost.Host = "desk.lan"
		if err := s.RegisterBroker(ctx, samePIDOtherHost, now, ttl); !errors.Is(err, ErrBrokerNameTaken) {
			t.Errorf("RegisterBroker(same pid, other host) = %v, want ErrBrokerNameTaken", err)
		}

		// A reload registers again with the new team list.
		laptop.Teams = `["web","api","docs"]`
		mustDo(t, s.RegisterBroker(ctx, laptop, now.Add(2*time.Second), ttl))
		mustDo(t, s.RegisterBroker(ctx, BrokerRecord{Name: "desk", Host: "desk.lan", PID: 200, Teams: `["db"]`}, now, ttl))

		brokers, err := s.Brokers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(brokers) != 2 || brokers[0].Name != "desk" || brokers[1].Name != "laptop" {
			t.Fatalf("Brokers = %+v, want desk and laptop", brokers)
		}
		got := brokers[1]
		if names := got.TeamNames(); strings.Join(names, ",") != "web,api,docs" {
			t.Errorf("TeamNames = %v, want the reloaded web, api, docs", names)
		}
		if got.Host != "laptop.lan" || got.PID != 100 || got.ConfigFile != laptop.ConfigFile || got.Version != "v1" ||
			!got.HeartbeatAt.Equal(now.Add(2*time.Second)) || got.StoppedAt != nil {
			t.Errorf("laptop's record = %+v", got)
		}
		if !got.Alive(now.Add(2*time.Second+ttl-time.Millisecond), ttl) || got.Alive(now.Add(2*time.Second+ttl), ttl) {
			t.Errorf("Alive is not 'heartbeat younger than ttl'")
		}

		// The heartbeat renews the broker's leases and no other's.
		p, q := Pair{From: "web", To: "api"}, Pair{From: "web", To: "db"}
		if _, held, err := s.AcquireLease(ctx, p, "laptop", now, ttl); err != nil || !held {
			t.Fatalf("AcquireLease = %v, %v", held, err)
		}
		if _, held, err := s.AcquireLease(ctx, q, "desk", now, ttl); err != nil || !held {
			t.Fatalf("AcquireLease = %v, %v", held, err)
		}
		beat := now.Add(10 * time.Second)
		mustDo(t, s.HeartbeatBroker(ctx, "laptop", beat, ttl))
		leases, _ := s.Leases(ctx)
		for _, l := range leases {
			want := now.Add(ttl)
			if l.Owner == "laptop" {
				want = beat.Add(ttl)
			}
			if !l.ExpiresAt.Equal(want) {
				t.Errorf("after laptop's heartbeat, %s's lease expires %v, want %v", l.Owner, l.ExpiresAt, want)
			}
		}
		if err := s.HeartbeatBroker(ctx, "nobody", beat, ttl); !errors.Is(err, ErrNotFound) {
			t.Errorf("HeartbeatBroker(unknown) = %v, want ErrNotFound", err)
		}

		// Once desk's heartbeat is older than ttl, its name is free again.
		if err := s.RegisterBroker(ctx, BrokerRecord{Name: "desk", Host: "new.lan", PID: 300}, now.Add(ttl), ttl); err != nil {
			t.Errorf("RegisterBroker over a dead broker = %v, want it taken over", err)
		}

		// A clean stop releases the leases at once and frees the name.
		mustDo(t, s.StopBroker(ctx, "laptop", beat))
		if _, held, err := s.AcquireLease(ctx, p, "desk", beat, ttl); err != nil || !held {
			t.Errorf("after laptop stopped, AcquireLease by desk = held %v, %v; want held", held, err)
		}
		brokers, _ = s.Brokers(ctx)
		if brokers[1].StoppedAt == nil || !brokers[1].StoppedAt.Equal(beat) || brokers[1].Alive(beat, ttl) {
			t.Errorf("stopped laptop = %+v, want StoppedAt %v and not alive", brokers[1], beat)
		}
		mustDo(t, s.RegisterBroker(ctx, intruder, beat, ttl))
	})
}

func TestBrokerRecordTeamNames(t *testing.T) {
	for _, tc := range []struct{ teams, want string }{
		{`["a","b"]`, "a,b"},
		{`[]`, ""},
		{``, ""},
		{`not json`, ""},
	} {
		if got := strings.Join(BrokerRecord{Teams: tc.teams}.TeamNames(), ","); got != tc.want {
			t.Errorf("TeamNames(%q) = %q, want %q", tc.teams, got, tc.want)
		}
	}
}

func TestCheckSchema(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		opts := b.options(t)
		s := openWith(t, opts)
		mustDo(t, s.CheckSchema(ctx))
		if s.Shared() {
			// What lets the next Open skip the trigger's DDL.
			var current bool
			if err := s.DB().Raw(notifyCurrent, notifyBody).Scan(&current).Error; err != nil || !current {
				t.Errorf("trigger current after Open = %v, %v; want true", current, err)
			}
		}
		if d, err := s.RoundTrip(ctx, 3); err != nil || d <= 0 {
			t.Errorf("RoundTrip = %v, %v; want a positive duration", d, err)
		}
		mustDo(t, s.DB().Exec("DROP TABLE leases").Error)
		want := []string{"table leases"}
		if s.Shared() {
			mustDo(t, s.DB().Exec("DROP TRIGGER switchboard_notify ON messages").Error)
			want = append(want, "trigger switchboard_notify")
		}
		err := s.CheckSchema(ctx)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("CheckSchema after dropping %v = %v, want it named", want, err)
			}
		}
		// The next Open migrates it back.
		mustDo(t, openWith(t, opts).CheckSchema(ctx))
	})
}

// Brokers racing for one name or one pair: exactly one wins each, on both
// engines (one upsert each, no read-then-write).
func TestFleetRaces(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		now := time.Now()
		ttl := time.Minute
		const n = 8
		var wg sync.WaitGroup
		registered, leased := make([]error, n), make([]bool, n)
		for i := range n {
			wg.Go(func() {
				r := BrokerRecord{Name: "shared", Host: "h", PID: 1000 + i}
				registered[i] = s.RegisterBroker(ctx, r, now, ttl)
				_, held, err := s.AcquireLease(ctx, Pair{From: "web", To: "api"}, fmt.Sprintf("b%d", i), now, ttl)
				if err != nil {
					t.Errorf("AcquireLease: %v", err)
				}
				leased[i] = held
			})
		}
		wg.Wait()
		wins, holders := 0, 0
		for i := range n {
			switch {
			case registered[i] == nil:
				wins++
			case !errors.Is(registered[i], ErrBrokerNameTaken):
				t.Errorf("RegisterBroker: %v, want nil or ErrBrokerNameTaken", registered[i])
			}
			if leased[i] {
				holders++
			}
		}
		if wins != 1 || holders != 1 {
			t.Errorf("%d brokers registered the name and %d hold the lease; want 1 and 1", wins, holders)
		}
	})
}
