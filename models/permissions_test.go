package models

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func newPermission(t *testing.T, s *Store, msg uint64, from, to, tool string) *PermissionRequest {
	t.Helper()
	p := &PermissionRequest{MessageID: msg, SessionID: NewSessionID(), FromTeam: from, ToTeam: to,
		RequestID: "req-" + tool, Tool: tool, Input: `{"file_path":"/tmp/x"}`, Mode: PermissionAsk}
	mustDo(t, s.CreatePermissionRequest(context.Background(), p))
	return p
}

func TestPermissionRequestLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		p := newPermission(t, s, 7, "web", "api", "Write")
		if p.ID == 0 || p.Status != PermissionPending || p.CreatedAt.IsZero() {
			t.Fatalf("created request = %+v, want an id, pending, a creation time", p)
		}
		got, err := s.PermissionByID(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Tool != "Write" || got.RequestID != "req-Write" || got.Mode != PermissionAsk || got.DecidedAt != nil {
			t.Errorf("stored request = %+v", got)
		}

		decided, err := s.DecidePermission(ctx, p.ID, true, "alice", "looks fine")
		if err != nil {
			t.Fatal(err)
		}
		if decided.ID != p.ID || decided.Status != PermissionAllowed || decided.DecidedBy != "alice" ||
			decided.Reason != "looks fine" || decided.DecidedAt == nil || decided.Tool != "Write" || decided.MessageID != 7 {
			t.Errorf("DecidePermission returned %+v, want the whole decided row", decided)
		}
		again, err := s.PermissionByID(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if again.Status != PermissionAllowed || !timeEq(again.DecidedAt, decided.DecidedAt) {
			t.Errorf("stored after decision = %+v, returned %+v", again, decided)
		}

		if _, err := s.DecidePermission(ctx, p.ID, false, "bob", "no"); !errors.Is(err, ErrAlreadyDecided) {
			t.Errorf("second decision: %v, want ErrAlreadyDecided", err)
		}
		if got, _ := s.PermissionByID(ctx, p.ID); got.Status != PermissionAllowed || got.DecidedBy != "alice" {
			t.Errorf("second decision changed the row: %+v", got)
		}
		if _, err := s.DecidePermission(ctx, 9999, true, "alice", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("deciding a missing request: %v, want ErrNotFound", err)
		}
		if _, err := s.PermissionByID(ctx, 9999); !errors.Is(err, ErrNotFound) {
			t.Errorf("PermissionByID of a missing request: %v, want ErrNotFound", err)
		}
		if err := s.CreatePermissionRequest(ctx, &PermissionRequest{MessageID: 1}); err == nil {
			t.Error("CreatePermissionRequest without a request id and tool succeeded")
		}
	})
}

func TestPermissionInputClipped(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		// Two-byte runes with an odd offset, so a byte cut would split one.
		input := `{"content":"` + strings.Repeat("é", 3000) + `"}`
		p := &PermissionRequest{MessageID: 1, RequestID: "r", Tool: "Write", Input: input, Mode: PermissionAsk}
		mustDo(t, s.CreatePermissionRequest(ctx, p))
		got, err := s.PermissionByID(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Input) > MaxPermissionInput || !utf8.ValidString(got.Input) ||
			!strings.HasPrefix(input, strings.TrimSuffix(got.Input, "…")) || !strings.HasSuffix(got.Input, "…") {
			t.Errorf("stored input: %d bytes, valid UTF-8 %v, suffix %q", len(got.Input), utf8.ValidString(got.Input), got.Input[len(got.Input)-8:])
		}
		short := `{"command":"ls"}`
		q := &PermissionRequest{MessageID: 1, RequestID: "r2", Tool: "Bash", Input: short, Mode: PermissionAsk}
		mustDo(t, s.CreatePermissionRequest(ctx, q))
		if got, _ := s.PermissionByID(ctx, q.ID); got.Input != short {
			t.Errorf("short input stored as %q, want it unchanged", got.Input)
		}
	})
}

// Two people (or a person and the timeout) deciding the same request at
// once: exactly one decision is taken, on both engines.
func TestDecidePermissionConcurrent(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		const rounds, deciders = 5, 8
		for range rounds {
			p := newPermission(t, s, 1, "web", "api", "Write")
			start := make(chan struct{})
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				wins   []*PermissionRequest
				losses int
			)
			for i := range deciders {
				wg.Go(func() {
					<-start
					d, err := s.DecidePermission(ctx, p.ID, i%2 == 0, "decider", "")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins = append(wins, d)
					case errors.Is(err, ErrAlreadyDecided):
						losses++
					default:
						t.Errorf("DecidePermission: %v", err)
					}
				})
			}
			close(start)
			wg.Wait()
			if len(wins) != 1 || losses != deciders-1 {
				t.Fatalf("%d decisions won and %d lost, want 1 and %d", len(wins), losses, deciders-1)
			}
			got, err := s.PermissionByID(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != wins[0].Status {
				t.Errorf("stored status %q, but the winner decided %q", got.Status, wins[0].Status)
			}
		}
	})
}

func TestPendingPermissions(t *testing.T) {
	eachBackend(t, func(t *testing.T, newStore func(testing.TB) *Store) {
		ctx := context.Background()
		s := newStore(t)
		a := newPermission(t, s, 1, "web", "api", "Write")
		b := newPermission(t, s, 1, "web", "api", "Bash")
		c := newPermission(t, s, 2, "cli", "db", "Edit")
		d := newPermission(t, s, 3, "api", "web", "Write")
		if _, err := s.DecidePermission(ctx, b.ID, false, "alice", "no shell"); err != nil {
			t.Fatal(err)
		}
		ids := func(ps []PermissionRequest, err error) []uint64 {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			var out []uint64
			for _, p := range ps {
				out = append(out, p.ID)
			}
			return out
		}
		for _, tt := range []struct {
			team string
			want []uint64
		}{
			{"", []uint64{a.ID, c.ID, d.ID}},
			{"api", []uint64{a.ID, d.ID}},
			{"db", []uint64{c.ID}},
			{"nobody", nil},
		} {
			if got := ids(s.PendingPermissions(ctx, tt.team)); !slices.Equal(got, tt.want) {
				t.Errorf("PendingPermissions(%q) = %v, want %v", tt.team, got, tt.want)
			}
		}
		if got := ids(s.PermissionsForMessage(ctx, 1)); !slices.Equal(got, []uint64{a.ID, b.ID}) {
			t.Errorf("PermissionsForMessage(1) = %v, want %v (decided ones too)", got, []uint64{a.ID, b.ID})
		}

		// A restart: what was pending before it can no longer be answered.
		later := newPermission(t, s, 4, "web", "api", "Write")
		n, err := s.ExpirePendingPermissions(ctx, later.CreatedAt)
		if err != nil || n != 3 {
			t.Fatalf("ExpirePendingPermissions = %d, %v; want 3", n, err)
		}
		if got := ids(s.PendingPermissions(ctx, "")); !slices.Equal(got, []uint64{later.ID}) {
			t.Errorf("pending after expiry = %v, want only %d", got, later.ID)
		}
		got, _ := s.PermissionByID(ctx, a.ID)
		if got.Status != PermissionExpired || got.DecidedAt == nil || got.Reason == "" {
			t.Errorf("expired request = %+v", got)
		}
		if got, _ := s.PermissionByID(ctx, b.ID); got.Status != PermissionDenied {
			t.Errorf("a decided request was expired: %+v", got)
		}
		if _, err := s.DecidePermission(ctx, a.ID, true, "alice", ""); !errors.Is(err, ErrAlreadyDecided) {
			t.Errorf("deciding an expired request: %v, want ErrAlreadyDecided", err)
		}
		if n, _ := s.ExpirePendingPermissions(ctx, time.Now().Add(time.Hour)); n != 1 {
			t.Errorf("second expiry = %d, want 1", n)
		}
	})
}
