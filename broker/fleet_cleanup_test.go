package broker

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/models"
)

// kill stops the broker as SIGKILL would, as far as the store can tell: its
// connection goes first, so nothing its shutdown writes (the waiting
// permission request denied, its processes' states stopped, its record
// stopped and leases released) reaches the store.
func (m *fleetMember) kill() {
	if m.b == nil {
		return
	}
	m.store.Close()
	m.close(true)
}

// askWrite sends, through m, a message whose answer needs to Write a file in
// to's directory: with the default grantPermission (ask), to's Claude waits
// for a decision with its turn running.
func (f *fleetHarness) askWrite(m *fleetMember, from, to string) uint64 {
	f.t.Helper()
	path := filepath.Join(f.root, "teams", to+" dir", from+".txt")
	r, err := m.b.Send(context.Background(), SendRequest{From: from, To: to, NoWait: true,
		Text: fakeapi.Tool("Write", map[string]string{"file_path": path, "content": "hi"})})
	if err != nil {
		f.t.Fatal(err)
	}
	return r.MessageID
}

// pendingOf waits for the pending permission request of message id, read
// in store.
func pendingOf(t *testing.T, store *models.Store, id uint64) models.PermissionRequest {
	t.Helper()
	var rows []models.PermissionRequest
	waitFor(t, fmt.Sprintf("message %d's permission request", id), func() bool {
		rows, _ = store.PermissionsForMessage(context.Background(), id)
		return len(rows) == 1 && rows[0].Status == models.PermissionPending
	})
	return rows[0]
}

// rowsOf is what a user sees of a pair in the store: its process state and
// the status (and decider) of a permission request.
func rowsOf(t *testing.T, store *models.Store, from, to string, request uint64) string {
	t.Helper()
	ctx := context.Background()
	s, err := store.SessionByPair(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if request == 0 {
		return string(s.ProcessState)
	}
	r, err := store.PermissionByID(ctx, request)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%s, request %s", s.ProcessState, r.Status)
	if r.DecidedBy != "" {
		out += " by " + r.DecidedBy
	}
	return out
}

func TestFleetRestartSettlesOnlyItsOwnRows(t *testing.T) {
	f := newFleet(t)
	a := f.start("laptop", "web", "api")
	b := f.start("desk", "db")
	ctx := context.Background()

	// laptop: one pair answered (its process idle), one whose Claude waits
	// for permission to Write (busy). desk: one pair waiting the same way.
	if r, err := a.b.Send(ctx, SendRequest{From: "cli", To: "api", Text: "hello", Wait: 2 * time.Minute}); err != nil || r.Status != models.MessageAnswered {
		t.Fatalf("ask on laptop: %+v, %v", r, err)
	}
	aMsg := f.askWrite(a, "web", "api")
	bMsg := f.askWrite(b, "ops", "db")
	aReq, bReq := pendingOf(t, b.store, aMsg), pendingOf(t, b.store, bMsg)
	waitFor(t, "both Claudes busy", func() bool {
		return rowsOf(t, b.store, "web", "api", 0) == "busy" && rowsOf(t, b.store, "ops", "db", 0) == "busy"
	})

	a.kill()
	// What the killed run left: a process state for processes that are
	// gone, and a request nobody can answer any more.
	if got, want := rowsOf(t, b.store, "cli", "api", 0), "idle"; got != want {
		t.Fatalf("cli->api after laptop was killed: %s, want %s (left as it was)", got, want)
	}
	if got, want := rowsOf(t, b.store, "web", "api", aReq.ID), "busy, request pending"; got != want {
		t.Fatalf("web->api after laptop was killed: %s, want %s (left as it was)", got, want)
	}

	a = f.start("laptop", "web", "api")
	// Settled while laptop started, before any of its workers ran: the
	// idle pair has no queued message, so nothing here changes it again.
	if got, want := rowsOf(t, b.store, "cli", "api", 0), "stopped"; got != want {
		t.Errorf("cli->api after laptop's restart: %s, want %s", got, want)
	}
	if got, want := rowsOf(t, b.store, "web", "api", aReq.ID), "request expired by switchboard"; !strings.HasSuffix(got, want) {
		t.Errorf("web->api after laptop's restart: %s, want its old %s", got, want)
	}
	// desk's rows are desk's: its Claude still waits, and desk's operator
	// can still decide.
	if got, want := rowsOf(t, b.store, "ops", "db", bReq.ID), "busy, request pending"; got != want {
		t.Errorf("desk's ops->db after laptop's restart: %s, want %s (untouched)", got, want)
	}
	if pending, err := b.b.PendingPermissions(ctx, "db"); err != nil || len(pending) != 1 || pending[0].ID != bReq.ID {
		t.Errorf("permissions_pending db on desk: %+v, %v; want desk's request %d", pending, err, bReq.ID)
	}
	if _, err := b.b.DecidePermission(ctx, bReq.ID, true, "operator", ""); err != nil {
		t.Fatalf("desk deciding its own request after laptop's restart: %v", err)
	}
	for _, id := range []uint64{bMsg, aMsg} {
		waitFor(t, fmt.Sprintf("message %d answered", id), func() bool {
			m, _ := b.b.Message(ctx, id)
			return m.Status == models.MessageAnswered
		})
	}
	if pending, _ := a.b.PendingPermissions(ctx, ""); len(pending) != 0 {
		t.Errorf("pending after both answered: %+v, want none", pending)
	}
}

func TestFleetTakeoverSettlesDeadBrokersPair(t *testing.T) {
	f := newFleet(t)
	// Both run api (one directory, as one remote team reachable from both
	// machines); only desk runs db.
	a := f.start("laptop", "web", "api")
	ctx := context.Background()
	aMsg := f.askWrite(a, "web", "api")
	aReq := pendingOf(t, a.store, aMsg)
	waitFor(t, "laptop's Claude busy", func() bool { return rowsOf(t, a.store, "web", "api", 0) == "busy" })

	b := f.start("desk", "web", "api", "db")
	// desk started while laptop held web->api: that pair is not desk's to
	// settle, though desk runs api.
	if got, want := rowsOf(t, b.store, "web", "api", aReq.ID), "busy, request pending"; got != want {
		t.Fatalf("laptop's web->api after desk started: %s, want %s (untouched)", got, want)
	}
	bMsg := f.askWrite(b, "ops", "db")
	bReq := pendingOf(t, b.store, bMsg)
	waitFor(t, "desk's Claude busy", func() bool { return rowsOf(t, b.store, "ops", "db", 0) == "busy" })

	a.kill()
	// desk takes web->api over once laptop's lease runs out, and settles
	// what laptop left on that pair first.
	waitFor(t, "laptop's request settled by the takeover", func() bool {
		r, err := b.store.PermissionByID(ctx, aReq.ID)
		return err == nil && r.Status != models.PermissionPending
	})
	if got, want := rowsOf(t, b.store, "web", "api", aReq.ID), "request expired by switchboard"; !strings.HasSuffix(got, want) {
		t.Errorf("web->api after desk took it over: %s, want laptop's %s", got, want)
	}
	if ls, _ := b.store.Leases(ctx); !hasLease(ls, "web", "api", "desk") {
		t.Errorf("leases after the takeover: %+v; want web->api held by desk", ls)
	}
	// Only that pair: desk's own waiting request stays as it is.
	if got, want := rowsOf(t, b.store, "ops", "db", bReq.ID), "busy, request pending"; got != want {
		t.Errorf("desk's ops->db after its takeover of web->api: %s, want %s (untouched)", got, want)
	}
	waitFor(t, "desk to answer laptop's message", func() bool {
		m, _ := b.b.Message(ctx, aMsg)
		return m.Status == models.MessageAnswered
	})
	if _, err := b.b.DecidePermission(ctx, bReq.ID, true, "operator", ""); err != nil {
		t.Fatalf("desk deciding its own request: %v", err)
	}
	waitFor(t, "desk's own message answered", func() bool {
		m, _ := b.b.Message(ctx, bMsg)
		return m.Status == models.MessageAnswered
	})
}

func hasLease(ls []models.Lease, from, to, owner string) bool {
	for _, l := range ls {
		if l.FromTeam == from && l.ToTeam == to {
			return l.Owner == owner
		}
	}
	return false
}
