package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/hosts"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/internal/pgtest"
	"github.com/switchboard-mcp/switchboard/local"
	"github.com/switchboard-mcp/switchboard/models"
)

// One PostgreSQL cluster serves the fleet tests; each test gets its own
// database (the other tests of the package never start it).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// fleetTTL is the tests' leaseTTL: short, so a dead broker's pairs pass
// over quickly, yet long enough that a loaded machine's late heartbeat
// does not lose a live broker its pairs.
const fleetTTL = 2 * time.Second

// fleetHarness runs several brokers in this process on one Postgres
// database, as brokers on several machines would: each has its own store
// connection, config and runner; team directories and the fake claude's
// config dir are shared, as a remote team reachable from both would be.
type fleetHarness struct {
	t         *testing.T
	root      string
	dsn       string
	bin       string
	env       []string
	configDir string
	members   map[string]*fleetMember
}

type fleetMember struct {
	name  string
	store *models.Store
	b     *Broker
	rec   *recorder
	logs  *LogRing
}

func newFleet(t *testing.T) *fleetHarness {
	t.Helper()
	f := &fleetHarness{t: t, root: t.TempDir(), dsn: pgtest.DSN(t), members: map[string]*fleetMember{}}
	f.bin, f.env, f.configDir = fakeBackend.setup(t, f.root)
	return f
}

// start runs broker name with the given teams.
func (f *fleetHarness) start(name string, teams ...string) *fleetMember {
	t := f.t
	t.Helper()
	cfg := f.config(name, teams...)
	ctx := context.Background()
	st, err := models.Open(ctx, models.Options{DSN: f.dsn, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	m := &fleetMember{name: name, store: st, rec: &recorder{Runner: local.New(local.Options{Env: f.env})}, logs: NewLogRing(1000)}
	log := slog.New(m.logs.Handler(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))).With("broker", name)
	// Every team's Claude gets switchboard's tools, as serve wires them.
	hs := hosts.New(hosts.Options{Local: m.rec, LocalConfigDir: f.configDir, CredentialDir: filepath.Join(f.root, "run-"+name)})
	t.Cleanup(func() { hs.Close() }) // after the broker's own cleanup
	m.b, err = New(ctx, cfg, Options{Store: st, Logger: log, Logs: m.logs, ServeSessions: hs.ServeMCP,
		Hosts: hostsOf(hs),
		Fleet: FleetOptions{Name: name, LeaseTTL: fleetTTL, Version: "test", ConfigFile: filepath.Join(f.root, name+".yaml")}})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	f.members[name] = m
	t.Cleanup(func() { m.close(false) })
	return m
}

// config is broker name's config, running teams.
func (f *fleetHarness) config(name string, teams ...string) *configs.Config {
	t := f.t
	t.Helper()
	var y strings.Builder
	fmt.Fprintf(&y, "settings:\n  healthCheckInterval: 1h\nteams:\n")
	for _, team := range teams {
		dir := filepath.Join(f.root, "teams", team+" dir")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&y, "  %s:\n    path: %q\n    claudePath: %q\n    description: the %s team\n", team, dir, f.bin, team)
	}
	cfg, err := configs.Parse([]byte(y.String()), filepath.Join(f.root, name+".yaml"))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y.String())
	}
	return cfg
}

// close stops the broker: cleanly, or as a killed broker stops, leaving its
// record and leases to expire.
func (m *fleetMember) close(crash bool) {
	if m.b == nil {
		return
	}
	if crash {
		m.b.fleet.mu.Lock()
		m.b.fleet.crashed = true
		m.b.fleet.mu.Unlock()
	}
	m.b.Close()
	m.store.Close()
	m.b = nil
}

// claudes counts the claude processes the broker started.
func (m *fleetMember) claudes() int {
	m.rec.mu.Lock()
	defer m.rec.mu.Unlock()
	n := 0
	for _, a := range m.rec.argvs {
		if !strings.HasPrefix(a, "sh -c "+reapScript) {
			n++
		}
	}
	return n
}

// sendRunning sends text from web to api without waiting, and returns once
// the broker has written it to api's Claude: a turn in progress.
func (m *fleetMember) sendRunning(t *testing.T, text string) *Reply {
	t.Helper()
	ctx := context.Background()
	r, err := m.b.Send(ctx, SendRequest{From: "web", To: "api", Text: text, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message to be delivered", func() bool {
		msg, _ := m.b.Message(ctx, r.MessageID)
		return msg.Status == models.MessageRunning && msg.Delivered != nil
	})
	return r
}

// logged reports whether the broker logged msg.
func (m *fleetMember) logged(msg string) bool {
	for _, r := range m.logs.Records(time.Time{}, slog.LevelDebug, 0) {
		if r.Message == msg {
			return true
		}
	}
	return false
}

// credential returns the live credential of the from->to pair's process.
func (m *fleetMember) credential(t *testing.T, from, to string) *credential {
	t.Helper()
	h := &harness{t: t, b: m.b}
	return h.credential(from, to)
}

// userTurns returns the user entries of a pair's session file, read through
// broker m.
func (m *fleetMember) userTurns(t *testing.T, from, to string) []string {
	t.Helper()
	rep, err := m.b.Report(context.Background(), from, to, 0)
	if err != nil {
		t.Fatalf("report %s->%s on %s: %v", from, to, m.name, err)
	}
	var out []string
	for _, e := range rep.Entries {
		if e.Role == "user" {
			out = append(out, e.Text)
		}
	}
	return out
}

func TestFleetAskToTeamOnlyOtherBrokerRuns(t *testing.T) {
	f := newFleet(t)
	a := f.start("laptop", "web")
	b := f.start("desk", "api")
	ctx := context.Background()

	r, err := a.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "where is the auth code?", Wait: 2 * time.Minute})
	if err != nil {
		t.Fatalf("ask from laptop to desk's team: %v", err)
	}
	if r.Status != models.MessageAnswered || !strings.Contains(r.Answer, "where is the auth code?") {
		t.Fatalf("reply %+v: want desk's api team's answer", r)
	}
	if a.claudes() != 0 || b.claudes() != 1 {
		t.Fatalf("claude processes: laptop %d, desk %d; want the answer from desk's one process", a.claudes(), b.claudes())
	}
	// The other way round too, and the same message seen from both brokers.
	r2, err := b.b.Send(ctx, SendRequest{From: "api", To: "web", Text: "and the web side?", Wait: 2 * time.Minute})
	if err != nil || r2.Status != models.MessageAnswered {
		t.Fatalf("ask from desk to laptop's team: %+v, %v", r2, err)
	}
	if m, err := b.b.Message(ctx, r.MessageID); err != nil || m.Answer != r.Answer {
		t.Fatalf("message %d read on desk: %+v, %v; want the answer laptop got", r.MessageID, m, err)
	}

	// A team no broker runs is still unknown, and the error names the
	// fleet's teams.
	_, err = a.b.Send(ctx, SendRequest{From: "web", To: "nope", Text: "hi"})
	if !errors.Is(err, ErrUnknownTeam) || !strings.Contains(err.Error(), "api, web") {
		t.Fatalf("ask to a team nobody runs: %v; want unknown team listing api, web", err)
	}
}

func TestFleetTeamsShowBrokerAndAlive(t *testing.T) {
	f := newFleet(t)
	a := f.start("laptop", "web")
	b := f.start("desk", "api")
	ctx := context.Background()

	brokerOf := func(m *fleetMember) map[string]string {
		out := map[string]string{}
		for _, ti := range m.b.TeamsContext(ctx) {
			alive := "?"
			if ti.BrokerAlive != nil {
				alive = fmt.Sprint(*ti.BrokerAlive)
			}
			out[ti.Name] = ti.Broker + " alive=" + alive
		}
		return out
	}
	want := map[string]string{"web": "laptop alive=true", "api": "desk alive=true"}
	if got := brokerOf(a); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("list_teams on laptop: %v, want %v", got, want)
	}
	st, err := a.b.Status(ctx, "api")
	if err != nil || len(st) != 1 || st[0].Broker != "desk" || !st[0].Reachable {
		t.Fatalf("team_status api on laptop: %+v, %v; want run by desk, reachable", st, err)
	}

	// desk stops: its team is still listed, as not alive, and an ask for
	// it is queued and says so at once.
	b.close(false)
	want["api"] = "desk alive=false"
	if got := brokerOf(a); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("list_teams on laptop after desk stopped: %v, want %v", got, want)
	}
	st, err = a.b.Status(ctx, "")
	if err != nil || len(st) != 2 || st[1].Name != "api" || st[1].Reachable || !strings.Contains(st[1].Problem, "desk") {
		t.Fatalf("team_status on laptop after desk stopped: %+v, %v; want api unreachable, run by desk", st, err)
	}
	r, err := a.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "anyone there?", Wait: 2 * time.Minute})
	if err != nil || r.Status != models.MessageQueued || !strings.Contains(r.Note, "desk, which is not alive") {
		t.Fatalf("ask for a dead broker's team: %+v, %v; want it queued with a note naming desk", r, err)
	}
	if m, _ := a.b.Message(ctx, r.MessageID); !strings.Contains(m.Note, "not alive") {
		t.Fatalf("message_status of it: %+v; want the note", m)
	}
	// desk comes back and answers it.
	b = f.start("desk", "api")
	waitFor(t, "desk to answer the message queued while it was down", func() bool {
		m, _ := a.b.Message(ctx, r.MessageID)
		return m.Status == models.MessageAnswered
	})
}

func TestFleetHundredMessagesInPairOrderOnce(t *testing.T) {
	f := newFleet(t)
	a := f.start("laptop", "web", "api")
	b := f.start("desk", "db", "ops")
	ctx := context.Background()

	// Four pairs, two delivered by each broker, each fed from both.
	pairs := []struct{ from, to string }{{"web", "db"}, {"ops", "api"}, {"web", "api"}, {"ops", "db"}}
	senders := []*fleetMember{a, b}
	type sent struct {
		id   uint64
		text string
	}
	var ids []sent
	for i := range 100 {
		pr := pairs[i%len(pairs)]
		text := fmt.Sprintf("msg %d for %s->%s", i/len(pairs), pr.from, pr.to)
		r, err := senders[(i/len(pairs))%2].b.Send(ctx, SendRequest{From: pr.from, To: pr.to, Text: text, NoWait: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sent{r.MessageID, text})
	}
	waitFor(t, "all 100 messages answered", func() bool {
		for _, s := range ids {
			if m, _ := a.b.Message(ctx, s.id); m.Status != models.MessageAnswered {
				return false
			}
		}
		return true
	})
	for _, s := range ids {
		if m, _ := b.b.Message(ctx, s.id); !strings.Contains(m.Answer, s.text) {
			t.Fatalf("message %d %q answered %q", s.id, s.text, m.Answer)
		}
	}
	owner := map[string]*fleetMember{"api": a, "db": b}
	for _, pr := range pairs {
		turns := owner[pr.to].userTurns(t, pr.from, pr.to)
		if len(turns) != 25 {
			t.Fatalf("%s->%s session holds %d messages, want 25 (each once)", pr.from, pr.to, len(turns))
		}
		for i, text := range turns {
			if want := fmt.Sprintf("msg %d for %s->%s", i, pr.from, pr.to); !strings.Contains(text, want+"\n") && !strings.HasSuffix(text, want) {
				t.Fatalf("%s->%s session entry %d is %q, want %q", pr.from, pr.to, i, text, want)
			}
		}
	}
	if a.claudes() != 2 || b.claudes() != 2 {
		t.Fatalf("claude processes: laptop %d, desk %d; want 2 each (one per pair, on the broker running its team)", a.claudes(), b.claudes())
	}
}

func TestFleetDeadBrokersPairPassesOverAfterLease(t *testing.T) {
	f := newFleet(t)
	// Both brokers run api (one directory, as one remote team reachable
	// from both machines).
	a := f.start("laptop", "web", "api")
	ctx := context.Background()
	first := a.sendRunning(t, "SLEEP 60s\nfirst")
	b := f.start("desk", "web", "api")
	var later []uint64
	for i := range 3 {
		r, err := b.b.Send(ctx, SendRequest{From: "web", To: "api", Text: fmt.Sprintf("later %d", i), NoWait: true})
		if err != nil {
			t.Fatal(err)
		}
		later = append(later, r.MessageID)
	}
	// desk's worker has the pair's messages but not its lease: it must
	// leave them to laptop.
	waitFor(t, "desk to find the pair leased to laptop", func() bool { return b.logged("pair delivered by another broker") })
	if ls, _ := b.store.Leases(ctx); len(ls) != 1 || ls[0].Owner != "laptop" {
		t.Fatalf("leases while laptop answers: %+v; want web->api held by laptop", ls)
	}
	if n := b.claudes(); n != 0 {
		t.Fatalf("desk started %d claude processes while laptop held the pair; want none", n)
	}
	for _, id := range later {
		if m, _ := b.b.Message(ctx, id); m.Status != models.MessageQueued {
			t.Fatalf("message %d is %s while laptop still answers the first; want queued", id, m.Status)
		}
	}
	// Nor may desk start, reboot or delete the session laptop runs.
	if _, err := b.b.Wake(ctx, "web", "api"); err == nil || !strings.Contains(err.Error(), "run by broker laptop") {
		t.Fatalf("team_wake on desk for laptop's session: %v; want it refused, naming laptop", err)
	}
	if _, _, err := b.b.Reboot(ctx, "web", "api"); err == nil || !strings.Contains(err.Error(), "run by broker laptop") {
		t.Fatalf("session_reboot on desk for laptop's session: %v; want it refused, naming laptop", err)
	}
	if _, err := b.b.Delete(ctx, "web", "api", true); err == nil || !strings.Contains(err.Error(), "run by broker laptop") {
		t.Fatalf("session_delete on desk for laptop's session: %v; want it refused, naming laptop", err)
	}
	a.close(true) // killed mid-turn: no clean stop, the lease runs out

	for _, id := range append([]uint64{first.MessageID}, later...) {
		waitFor(t, fmt.Sprintf("desk to answer message %d", id), func() bool {
			m, _ := b.b.Message(ctx, id)
			return m.Status == models.MessageAnswered
		})
	}
	if ls, _ := b.store.Leases(ctx); len(ls) != 1 || ls[0].Owner != "desk" {
		t.Fatalf("leases after the takeover: %+v; want web->api held by desk", ls)
	}
	// The session file: "first" reached Claude once (the takeover asked for
	// its answer instead of sending it again), each later message once, in
	// order.
	turns := b.userTurns(t, "web", "api")
	var got []string
	for _, text := range turns {
		switch {
		case strings.Contains(text, "\nfirst"):
			got = append(got, "first")
		case strings.Contains(text, fmt.Sprintf("message %d from team", first.MessageID)):
			got = append(got, "resume first")
		default:
			for i := range 3 {
				if strings.Contains(text, fmt.Sprintf("later %d", i)) {
					got = append(got, fmt.Sprintf("later %d", i))
				}
			}
		}
	}
	if want := "[first resume first later 0 later 1 later 2]"; fmt.Sprint(got) != want {
		t.Fatalf("session turns %q\nread as %v, want %s", turns, got, want)
	}
}

func TestFleetLostNotificationsStillDeliver(t *testing.T) {
	// Every note is lost until the listeners reconnect: then the resync
	// alone must get the message delivered and its answer to the asker.
	var lose atomic.Bool
	lose.Store(true)
	testDropNote = func(_ *Broker, n models.Note) bool { return lose.Load() && n.Kind != models.NoteResync }
	t.Cleanup(func() { testDropNote = nil })

	f := newFleet(t)
	a := f.start("laptop", "web")
	f.start("desk", "api")
	ctx := context.Background()

	var (
		wg    sync.WaitGroup
		reply *Reply
		err   error
		id    atomic.Uint64
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		reply, err = a.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "did you hear me?", Wait: 2 * time.Minute,
			Accepted: func(i uint64) { id.Store(i) }})
	}()
	waitFor(t, "the message to be queued", func() bool { return id.Load() != 0 })
	// Make sure desk missed it: still queued once its note is gone by.
	if m, _ := a.b.Message(ctx, id.Load()); m.Status != models.MessageQueued {
		t.Fatalf("message is %s before any note arrived; want queued", m.Status)
	}
	lose.Store(false)
	// Cut both brokers' listener connections: they reconnect and resync.
	if err := a.store.DB().Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'switchboard-listen' AND datname = current_database()").Error; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err != nil || reply.Status != models.MessageAnswered || !strings.Contains(reply.Answer, "did you hear me?") {
		t.Fatalf("reply after lost notes: %+v, %v; want the answer", reply, err)
	}
}

func TestFleetReloadUpdatesTeams(t *testing.T) {
	f := newFleet(t)
	a := f.start("laptop", "web")
	b := f.start("desk", "api")
	ctx := context.Background()
	// A message for a team nobody runs yet is refused ...
	if _, err := a.b.Send(ctx, SendRequest{From: "web", To: "db", Text: "hi", NoWait: true}); !errors.Is(err, ErrUnknownTeam) {
		t.Fatalf("ask for db before any broker runs it: %v; want unknown team", err)
	}
	// ... until desk's reload adds it: laptop sees it at once.
	if _, err := b.b.Reload(f.config("desk", "api", "db")); err != nil {
		t.Fatal(err)
	}
	r, err := a.b.Send(ctx, SendRequest{From: "web", To: "db", Text: "now db is here", Wait: 2 * time.Minute})
	if err != nil || r.Status != models.MessageAnswered || !strings.Contains(r.Answer, "now db is here") {
		t.Fatalf("ask for db after desk's reload: %+v, %v; want desk's answer", r, err)
	}
}

func TestFleetTeamLeavingConfigReleasesItsPairs(t *testing.T) {
	f := newFleet(t)
	a := f.start("laptop", "web", "api")
	ctx := context.Background()
	if r, err := a.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "first on laptop", Wait: 2 * time.Minute}); err != nil || r.Status != models.MessageAnswered {
		t.Fatalf("ask on laptop: %+v, %v", r, err)
	}
	b := f.start("desk", "api")
	// laptop gives api up while alive: desk must get the pair without
	// waiting for laptop to stop.
	if _, err := a.b.Reload(f.config("laptop", "web")); err != nil {
		t.Fatal(err)
	}
	r, err := a.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "second, on desk", Wait: 2 * time.Minute})
	if err != nil || r.Status != models.MessageAnswered || !strings.Contains(r.Answer, "second, on desk") {
		t.Fatalf("ask after laptop dropped api: %+v, %v; want desk's answer", r, err)
	}
	if b.claudes() != 1 {
		t.Fatalf("desk started %d claude processes, want 1", b.claudes())
	}
	// Tools that need the team's processes or files point to its broker.
	if _, err := a.b.Cancel(ctx, "web", "api"); err == nil || !strings.Contains(err.Error(), "run by broker desk") {
		t.Fatalf("session_cancel on laptop for desk's team: %v; want it to name desk", err)
	}
}

func TestFleetPermissionDecidedOnTheBrokerThatWaits(t *testing.T) {
	f := newFleet(t)
	a := f.start("laptop", "web")
	b := f.start("desk", "api")
	ctx := context.Background()
	path := filepath.Join(f.root, "teams", "api dir", "fleet.txt")
	r, err := a.b.Send(ctx, SendRequest{From: "web", To: "api", NoWait: true,
		Text: fakeapi.Tool("Write", map[string]string{"file_path": path, "content": "hi"})})
	if err != nil {
		t.Fatal(err)
	}
	var pending []Permission
	waitFor(t, "desk's api to ask for Write", func() bool {
		pending, err = a.b.PendingPermissions(ctx, "api") // seen from laptop too
		return err == nil && len(pending) == 1
	})
	// laptop cannot decide for desk's waiting Claude, and says where to.
	if _, err := a.b.DecidePermission(ctx, pending[0].ID, true, "operator", ""); err == nil || !strings.Contains(err.Error(), "waits on broker desk") {
		t.Fatalf("decision on laptop: %v; want it refused, naming desk", err)
	}
	if _, err := b.b.DecidePermission(ctx, pending[0].ID, true, "operator", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the answer after the permission", func() bool {
		m, _ := a.b.Message(ctx, r.MessageID)
		return m.Status == models.MessageAnswered
	})
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("api's Claude did not write after desk allowed it: %v", err)
	}
}

func TestFleetBrokerCutOffFromStoreStopsItsTurnBeforeTakeover(t *testing.T) {
	var down atomic.Pointer[Broker]
	testStoreDown = func(b *Broker) bool { return down.Load() == b }
	t.Cleanup(func() { testStoreDown = nil })

	f := newFleet(t)
	a := f.start("laptop", "web", "api")
	ctx := context.Background()
	first := a.sendRunning(t, "SLEEP 60s\nfirst")
	b := f.start("desk", "web", "api")
	// laptop can no longer renew its lease: it must stop its claude before
	// the lease expires and desk takes the session over.
	down.Store(a.b)
	waitFor(t, "desk to take the pair over and answer", func() bool {
		m, _ := b.b.Message(ctx, first.MessageID)
		return m.Status == models.MessageAnswered
	})
	p := a.b.existingPair("web", "api")
	p.mu.Lock()
	stillRunning := p.cl != nil
	p.mu.Unlock()
	if stillRunning {
		t.Fatal("laptop's claude still runs the session desk took over")
	}
	// laptop is back: the pair stays desk's, and nothing is answered twice.
	down.Store(nil)
	r, err := a.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "after the outage", Wait: 2 * time.Minute})
	if err != nil || r.Status != models.MessageAnswered {
		t.Fatalf("ask after the outage: %+v, %v", r, err)
	}
	if a.claudes() != 1 || b.claudes() != 1 {
		t.Fatalf("claude processes: laptop %d, desk %d; want laptop's first only, desk's since", a.claudes(), b.claudes())
	}
	var got []string
	for _, text := range b.userTurns(t, "web", "api") {
		switch {
		case strings.Contains(text, "\nfirst"):
			got = append(got, "first")
		case strings.Contains(text, fmt.Sprintf("message %d from team", first.MessageID)):
			got = append(got, "resume first")
		case strings.Contains(text, "after the outage"):
			got = append(got, "after")
		}
	}
	if want := "[first resume first after]"; fmt.Sprint(got) != want {
		t.Fatalf("session turns read as %v, want %s", got, want)
	}
}

func TestFleetAskBackToAnotherBrokersTeam(t *testing.T) {
	f := newFleet(t)
	a := f.start("laptop", "web", "db")
	b := f.start("desk", "api")
	ctx := context.Background()
	// web (laptop) asks api (desk); api's Claude, answering, asks db,
	// which laptop runs.
	held, err := a.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "SLEEP 60s\nhold on", NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "desk's api to answer web", func() bool {
		m, _ := a.b.Message(ctx, held.MessageID)
		return m.Status == models.MessageRunning
	})
	url, token := mcpConfigOf(t, b.credential(t, "web", "api"))
	api := sessionClient(t, url, token)
	text, isErr := call(t, api, "send_message", map[string]any{"toTeam": "db", "message": "REPLY db says v2", "timeout": 120000})
	if isErr || !strings.Contains(text, "db says v2") {
		t.Fatalf("api (desk) asking db (laptop): %v %q; want db's answer", isErr, text)
	}
	msgs, err := b.store.ListMessages(ctx, models.MessageFilter{FromTeam: "api", ToTeam: "db", Limit: 1})
	if err != nil || len(msgs) != 1 || msgs[0].Chain != "web → api" || msgs[0].ParentID != held.MessageID {
		t.Fatalf("api->db message: %+v %v; want it in web's ask chain", msgs, err)
	}
	// The chain rule holds across brokers: api may not ask web back.
	if text, isErr := call(t, api, "send_message", map[string]any{"toTeam": "web", "message": "REPLY loop"}); !isErr || !strings.Contains(text, "would loop") {
		t.Fatalf("api asking web, which waits on it: %v %q; want the loop refused", isErr, text)
	}
}
