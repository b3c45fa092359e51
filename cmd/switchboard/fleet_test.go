package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/hosts/claudepath"
	"github.com/switchboard-mcp/switchboard/internal/claudetest"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/internal/fakeclaude/fakeclaudebin"
	"github.com/switchboard-mcp/switchboard/internal/pgtest"
	"github.com/switchboard-mcp/switchboard/internal/poll"
	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
	"github.com/switchboard-mcp/switchboard/models"
)

// fleetLeaseTTL is the fleet's leaseTTL in these tests: short, so a killed
// daemon's pairs pass on within the test, and long enough that a live
// daemon's heartbeat (every leaseTTL/3) never misses it on a busy machine.
const fleetLeaseTTL = 5 * time.Second

// joinFleet turns w's config into one broker of a fleet: the store is the
// shared Postgres database dsn instead of w's own SQLite file, and the
// broker's name in the fleet is name. Call it before w's daemon starts.
func (w *world) joinFleet(dsn, name string) {
	w.t.Helper()
	data, err := os.ReadFile(w.config)
	if err != nil {
		w.t.Fatal(err)
	}
	db := regexp.MustCompile(`(?m)^  database: \{ path: [^}]*\}\n`)
	if !db.Match(data) {
		w.t.Fatalf("no database line to replace in %s:\n%s", w.config, data)
	}
	fleet := fmt.Sprintf("  fleet: { name: %s, leaseTTL: %s }\n", name, fleetLeaseTTL)
	if name == "" {
		fleet = fmt.Sprintf("  fleet: { leaseTTL: %s }\n", fleetLeaseTTL) // the default name: the host's
	}
	y := db.ReplaceAllLiteralString(string(data), fmt.Sprintf("  database: { dsn: %q }\n", dsn)+fleet)
	mustWrite(w.t, w.config, y, 0o600)
}

// twoBrokers makes two worlds whose teams run claude: A with teamsA and B
// with teamsB, brokers named laptop and workstation of the fleet in the
// Postgres database dsn. Their daemons are not started.
func twoBrokers(t *testing.T, dsn, claude string, teamsA, teamsB []string) (a, b *world) {
	t.Helper()
	a, b = newWorldWith(t, claude, teamsA...), newWorldWith(t, claude, teamsB...)
	a.joinFleet(dsn, "laptop")
	b.joinFleet(dsn, "workstation")
	return a, b
}

// startDaemon starts w's daemon as a user's first command does, and returns
// its pid.
func (w *world) startDaemon() int {
	w.t.Helper()
	if r := w.run("", "teams"); r.code != 0 {
		w.t.Fatalf("switchboard teams (starting the daemon): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	pid := w.daemonPID()
	if pid == 0 || !alive(pid) {
		w.t.Fatalf("no live daemon after the first command (pid %d)", pid)
	}
	return pid
}

// killDaemon SIGKILLs w's daemon, as a machine that loses power would stop
// it, and waits until it is gone.
func (w *world) killDaemon() {
	w.t.Helper()
	pid := w.daemonPID()
	if pid == 0 || !alive(pid) {
		w.t.Fatalf("no live daemon to kill (pid %d)", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		w.t.Fatal(err)
	}
	waitFor(w.t, fmt.Sprintf("the killed daemon %d to go", pid), func() bool { return !alive(pid) })
}

// fleetTeam is what list_teams and team_status say about a team's broker.
type fleetTeam struct {
	Name        string `json:"name"`
	Broker      string `json:"broker"`
	BrokerAlive bool   `json:"brokerAlive"`
	Problem     string `json:"problem"`
}

// fleetTeams calls tool (list_teams or team_status) and returns its teams
// by name.
func fleetTeams(t *testing.T, sess *mcp.ClientSession, tool string, args map[string]any) map[string]fleetTeam {
	t.Helper()
	out, isErr := callTool(t, sess, tool, args)
	if isErr {
		t.Fatalf("%s: %s", tool, out)
	}
	var res struct {
		Teams []fleetTeam `json:"teams"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%s result %q: %v", tool, out, err)
	}
	m := map[string]fleetTeam{}
	for _, tm := range res.Teams {
		m[tm.Name] = tm
	}
	return m
}

// messageReply is message_status's result.
type messageReply struct {
	ID        uint64 `json:"messageId"`
	Status    string `json:"status"`
	Answer    string `json:"response"`
	Error     string `json:"error"`
	SessionID string `json:"sessionId"`
}

// settled waits until message id is final and returns it.
func settled(t *testing.T, sess *mcp.ClientSession, id uint64) messageReply {
	t.Helper()
	var r messageReply
	waitFor(t, fmt.Sprintf("message %d to be settled", id), func() bool {
		out, isErr := callTool(t, sess, "message_status", map[string]any{"messageId": id})
		return !isErr && json.Unmarshal([]byte(out), &r) == nil && r.Status != "queued" && r.Status != "running"
	})
	return r
}

// quick queues a message without waiting and returns its id.
func quick(t *testing.T, sess *mcp.ClientSession, to, message string) (uint64, string) {
	t.Helper()
	out, isErr := callTool(t, sess, "quick_message", map[string]any{"toTeam": to, "message": message})
	var id uint64
	if _, err := fmt.Sscanf(out, "Message %d for", &id); isErr || err != nil || id == 0 {
		t.Fatalf("quick_message to %s: %s", to, out)
	}
	return id, out
}

// openStore opens the fleet's shared store as a person checking it would.
func openStore(t *testing.T, dsn string) *models.Store {
	t.Helper()
	st, err := models.Open(context.Background(), models.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Two machines, one Postgres: a question asked on the laptop (daemon A,
// team web) goes to a team only the workstation (daemon B) runs, and B's
// Claude Code answers it in B's directory. list_teams on A names the broker
// of every team and whether it is alive; once B is killed A says so, a
// message to B's team waits in the queue, and B answers it when it is back.
func TestFleetAskAnsweredByOtherDaemon(t *testing.T) {
	t.Parallel() // its own worlds, database and daemons
	needsRealClaude(t)
	dsn := pgtest.DSN(t) // first: its database is dropped after the daemons stop
	a := newWorld(t, "web")
	b := newWorld(t, "api")
	// A's dsn carries a password from the environment, as a user's would
	// (the test cluster trusts every local connection, so any password
	// works); it must never show in a log or an answer.
	const password = "fleet-secret-4c1d"
	a.env = append(a.env, "SB_PGPASSWORD="+password)
	a.joinFleet(strings.Replace(dsn, "postgres:///", "postgres://postgres:${SB_PGPASSWORD}@/", 1), "laptop")
	b.joinFleet(dsn, "workstation")
	b.startDaemon()
	sess := a.proxy("web", nil)
	ctx := context.Background()

	res, err := send(ctx, sess, "api", "which port does the api listen on?")
	if err != nil || res.IsError {
		t.Fatalf("ask from A to B's team: %v %s", err, text(res))
	}
	if ans := text(res); !strings.Contains(ans, "which port does the api listen on?") || !strings.Contains(ans, "CWD: "+b.teamDir("api")) {
		t.Fatalf("answer %q: want the question echoed from B's %s", ans, b.teamDir("api"))
	}
	if _, argv := b.claudeStarts(); len(argv) != 1 {
		t.Errorf("B started %d claude processes, want 1: %q", len(argv), argv)
	}
	if _, argv := a.claudeStarts(); len(argv) != 0 {
		t.Errorf("A started claude for a team it does not run: %q", argv)
	}

	// The terminal on A: `switchboard ask` from web's directory.
	r := a.runIn(a.teamDir("web"), a.env, "", "ask", "api", "and from the terminal?")
	if r.code != 0 || !strings.Contains(r.stdout, "and from the terminal?") || !strings.Contains(r.stdout, "CWD: "+b.teamDir("api")) {
		t.Errorf("switchboard ask on A: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	teams := fleetTeams(t, sess, "list_teams", nil)
	for name, want := range map[string]fleetTeam{"web": {Broker: "laptop", BrokerAlive: true}, "api": {Broker: "workstation", BrokerAlive: true}} {
		if got := teams[name]; got.Broker != want.Broker || got.BrokerAlive != want.BrokerAlive {
			t.Errorf("list_teams on A: %s = %+v, want broker %s alive %v", name, got, want.Broker, want.BrokerAlive)
		}
	}
	if got := fleetTeams(t, sess, "team_status", map[string]any{"team": "api"})["api"]; got.Broker != "workstation" || !got.BrokerAlive {
		t.Errorf("team_status api on A = %+v, want broker workstation alive", got)
	}

	// `switchboard teams` on A, as a person checks.
	if r := a.run("", "teams"); r.code != 0 || !regexp.MustCompile(`(?m)^api +broker workstation +idle +1$`).MatchString(r.stdout) {
		t.Errorf("switchboard teams on A: exit %d, %q %q; want api run by broker workstation, idle", r.code, r.stdout, r.stderr)
	}
	b.killDaemon()
	waitFor(t, "list_teams on A to show the workstation dead", func() bool {
		api := fleetTeams(t, sess, "list_teams", nil)["api"]
		return api.Broker == "workstation" && !api.BrokerAlive
	})
	if got := fleetTeams(t, sess, "team_status", map[string]any{"team": "api"})["api"]; got.Broker != "workstation" || got.BrokerAlive {
		t.Errorf("team_status api on A after B was killed = %+v, want broker workstation not alive", got)
	}
	if got := fleetTeams(t, sess, "list_teams", nil)["web"]; got.Broker != "laptop" || !got.BrokerAlive {
		t.Errorf("list_teams on A after B was killed: web = %+v, want broker laptop alive", got)
	}

	if r := a.run("", "teams"); r.code != 0 || !regexp.MustCompile(`(?m)^api +broker workstation +unreachable +1$`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, "api: broker workstation, which runs this team, is not alive") {
		t.Errorf("switchboard teams on A after B was killed: exit %d, %q %q; want api unreachable, its broker not alive", r.code, r.stdout, r.stderr)
	}
	// A message to a team whose broker is dead is kept, and the reply says
	// why nobody answers yet.
	id, out := quick(t, sess, "api", "are you back?")
	if !strings.Contains(out, "workstation") || !strings.Contains(out, "not alive") {
		t.Errorf("quick_message to the dead broker's team = %q, want it to name broker workstation as not alive", out)
	}
	b.startDaemon()
	if m := settled(t, sess, id); m.Status != "answered" || !strings.Contains(m.Answer, "are you back?") || !strings.Contains(m.Answer, "CWD: "+b.teamDir("api")) {
		t.Errorf("the message queued while B was down: %+v, want it answered by B once B is back", m)
	}
	waitFor(t, "list_teams on A to show the workstation alive again", func() bool {
		return fleetTeams(t, sess, "list_teams", nil)["api"].BrokerAlive
	})

	log, err := os.ReadFile(filepath.Join(a.root, "run", "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	status, doctor := a.run("", "status"), a.run("", "doctor")
	if !strings.Contains(doctor.stdout+doctor.stderr, "workstation") {
		t.Errorf("switchboard doctor on A does not list the workstation broker:\n%s%s", doctor.stdout, doctor.stderr)
	}
	for what, s := range map[string]string{"A's daemon.log": string(log), "switchboard status": status.stdout + status.stderr,
		"switchboard doctor": doctor.stdout + doctor.stderr} {
		if strings.Contains(s, password) {
			t.Errorf("%s shows the database password:\n%s", what, s)
		}
	}
}

// 100 messages across both daemons' teams, asked from both sides, some
// waited for (send_message) and most queued (quick_message): every one is
// answered once, by its own team, and each pair's session holds its
// messages once each in the order they were sent.
func TestFleetManyMessagesInPairOrder(t *testing.T) {
	t.Parallel() // its own worlds, database and daemons
	dsn := pgtest.DSN(t)
	claude := fakeclaudebin.Build(t) // 100 turns: the fake answers as the real one does, in milliseconds
	a, b := twoBrokers(t, dsn, claude, []string{"web", "alpha"}, []string{"ops", "beta"})
	a.startDaemon()
	b.startDaemon()

	type pairRun struct {
		asker    *world
		from, to string
		runner   *world
		ids      []uint64
		sess     *mcp.ClientSession
	}
	pairs := []*pairRun{
		{asker: a, from: "web", to: "alpha", runner: a},
		{asker: a, from: "web", to: "beta", runner: b},
		{asker: b, from: "ops", to: "alpha", runner: a},
		{asker: b, from: "ops", to: "beta", runner: b},
	}
	const perPair = 25
	token := func(p *pairRun, i int) string { return fmt.Sprintf("fleet-bulk %s->%s n=%03d", p.from, p.to, i) }
	var wg sync.WaitGroup
	errs := make(chan string, len(pairs)*perPair)
	for _, p := range pairs {
		p.sess = p.asker.proxy(p.from, nil)
	}
	for _, p := range pairs {
		wg.Go(func() {
			for i := range perPair {
				if i%5 == 4 {
					res, err := send(context.Background(), p.sess, p.to, token(p, i))
					if err != nil || res.IsError {
						errs <- fmt.Sprintf("send_message %s: %v %s", token(p, i), err, text(res))
						return
					}
					// The text is the answer; the id is in the structured result.
					var r messageReply
					if raw, err := json.Marshal(res.StructuredContent); err == nil {
						_ = json.Unmarshal(raw, &r)
					}
					if r.ID == 0 {
						errs <- fmt.Sprintf("send_message %s: no message id in %q", token(p, i), text(res))
						return
					}
					p.ids = append(p.ids, r.ID)
					continue
				}
				// Not callTool: t.Fatal must not be called off the test's goroutine.
				res, err := p.sess.CallTool(context.Background(), &mcp.CallToolParams{Name: "quick_message", Arguments: map[string]any{"toTeam": p.to, "message": token(p, i)}})
				var id uint64
				if err == nil {
					_, err = fmt.Sscanf(text(res), "Message %d for", &id)
				}
				if err != nil || res.IsError || id == 0 {
					errs <- fmt.Sprintf("quick_message %s: %v %s", token(p, i), err, text(res))
					return
				}
				p.ids = append(p.ids, id)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}

	for _, p := range pairs {
		session := ""
		for i, id := range p.ids {
			m := settled(t, p.sess, id)
			if m.Status != "answered" || !strings.Contains(m.Answer, token(p, i)) || !strings.Contains(m.Answer, fmt.Sprintf("[switchboard message %d ", id)) {
				t.Errorf("%s (message %d): %s %q %q, want its own answer", token(p, i), id, m.Status, m.Answer, m.Error)
			}
			if session == "" {
				session = m.SessionID
			} else if m.SessionID != session {
				t.Errorf("%s (message %d) went to session %s, the pair's others to %s", token(p, i), id, m.SessionID, session)
			}
		}
		if session == "" {
			continue
		}
		// The session file on the machine that runs the team: each message
		// once, in the order it was sent.
		file := claudepath.SessionFile(claudetest.ConfigDir(p.runner.env), p.runner.teamDir(p.to), session)
		var got []string
		for _, u := range userTexts(t, file) {
			if strings.Contains(u, "fleet-bulk ") {
				got = append(got, u)
			}
		}
		if len(got) != perPair {
			t.Errorf("%s->%s: the session file holds %d of the pair's messages, want %d: %q", p.from, p.to, len(got), perPair, got)
			continue
		}
		for i, u := range got {
			if !strings.Contains(u, token(p, i)) || !strings.Contains(u, fmt.Sprintf("[switchboard message %d from team %q ", p.ids[i], p.from)) {
				t.Errorf("%s->%s: session entry %d is %q, want %s (message %d): out of order or doubled", p.from, p.to, i, u, token(p, i), p.ids[i])
			}
		}
	}

	st, err := openStore(t, dsn).Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := st.MessagesByStatus[models.MessageAnswered]; n != int64(len(pairs)*perPair) || len(st.MessagesByStatus) != 1 {
		t.Errorf("the store's messages by status: %v, want all %d answered", st.MessagesByStatus, len(pairs)*perPair)
	}
}

// host is a build machine both daemons reach over the real sshd: its own
// HOME and Claude config (where the session files are), its own fake
// Messages API, and a claude wrapper that logs every start.
type host struct {
	srv    *sshdtest.Server
	api    *fakeapi.Server
	env    []string
	root   string
	claude string // the wrapper
	starts string
}

func newHost(t *testing.T) *host {
	t.Helper()
	return newHostWith(t, claudetest.Binary(t))
}

// newHostWith is newHost with the host's claude (the real one or the fake).
func newHostWith(t *testing.T, claude string) *host {
	t.Helper()
	h := &host{srv: sshdtest.Start(t), api: fakeapi.New(t)}
	root, err := os.MkdirTemp("", "sbh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	h.root = root
	h.env = claudetest.Env(t, h.api)
	h.claude = filepath.Join(root, "bin", "claude")
	h.starts = filepath.Join(root, "starts.log")
	mustWrite(t, h.claude, fmt.Sprintf("#!/bin/sh\necho \"$$ $*\" >> %q\nexec %q \"$@\"\n", h.starts, claude), 0o755)
	return h
}

func (h *host) teamDir(team string) string { return filepath.Join(h.root, "teams", team) }

// addTeam adds team, on this host over SSH, to w's config.
func (h *host) addTeam(w *world, team string) {
	w.t.Helper()
	if err := os.MkdirAll(h.teamDir(team), 0o755); err != nil {
		w.t.Fatal(err)
	}
	var env strings.Builder
	for _, kv := range h.env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ANTHROPIC_") || strings.HasPrefix(k, "DISABLE_") || strings.HasPrefix(k, "CLAUDE_") || k == "HOME" {
			fmt.Fprintf(&env, "      %s: %q\n", k, v)
		}
	}
	cfg, err := os.ReadFile(w.config)
	if err != nil {
		w.t.Fatal(err)
	}
	y := strings.Replace(string(cfg), "settings:\n", fmt.Sprintf("settings:\n  sshConfig: %q\n", h.srv.SSHConfig), 1) +
		fmt.Sprintf("  %s:\n    path: %q\n    ssh: %s\n    claudePath: %q\n    description: the %s team, over SSH\n    remoteOptions: { serverAliveInterval: 1s, serverAliveCountMax: 3 }\n    env:\n%s",
			team, h.teamDir(team), h.srv.Alias, h.claude, team, env.String())
	mustWrite(w.t, w.config, y, 0o600)
}

// claudeStarts is world.claudeStarts for the host's wrapper.
func (h *host) claudeStarts() (pids []int, argv []string) {
	return (&world{starts: h.starts}).claudeStarts()
}

// A team on a build host both daemons reach over SSH: B delivers the pair's
// messages (it holds the pair's lease) and is SIGKILLed while Claude is
// answering one asked on A; after the lease runs out A takes the pair over,
// resumes the same session, the asker waiting on A gets its answer, and every
// message reaches Claude once and is answered once, as the session file on
// the host shows.
func TestFleetRemoteTeamTakenOverAfterOwnerKilled(t *testing.T) {
	t.Parallel() // its own worlds, host, database and daemons
	needsRealClaude(t)
	dsn := pgtest.DSN(t)
	h := newHost(t)
	a, b := twoBrokers(t, dsn, worldClaude(t), []string{"web"}, []string{"web"})
	h.addTeam(a, "far")
	h.addTeam(b, "far")

	// The turn B is killed in: Claude is still streaming its answer.
	var slow atomic.Int32
	arrived := make(chan struct{})
	h.api.Script(func(req fakeapi.Request) fakeapi.Reply {
		reply := fakeapi.DefaultReply(req)
		if !req.HasToolResult && strings.Contains(req.UserText, "FLEET-MIDTURN") && slow.Add(1) == 1 {
			close(arrived)
			reply.Delay = 2 * time.Minute // ends early when the killed Claude goes away
		}
		return reply
	})

	// B alone at first: it delivers the pair's first message and so holds
	// the pair's lease.
	b.startDaemon()
	bs := b.proxy("web", nil)
	ctx := context.Background()
	res, err := send(ctx, bs, "far", "FLEET-FIRST where do the builds go?")
	if err != nil || res.IsError {
		t.Fatalf("first ask on B: %v %s", err, text(res))
	}
	if !strings.Contains(text(res), "CWD: "+h.teamDir("far")) {
		t.Fatalf("first answer %q: want it written in the host's %s", text(res), h.teamDir("far"))
	}
	a.startDaemon()
	as := a.proxy("web", nil)

	// Asked on A, where the asker waits for the answer; B, the lease
	// holder, delivers. Two more queue behind it.
	type result struct {
		res *mcp.CallToolResult
		err error
	}
	waited := make(chan result, 1)
	go func() {
		res, err := as.CallTool(ctx, &mcp.CallToolParams{Name: "send_message", Arguments: map[string]any{
			"toTeam": "far", "message": "FLEET-MIDTURN what broke the build?", "timeout": 0}})
		waited <- result{res, err}
	}()
	select {
	case <-arrived:
	case <-time.After(poll.Deadline):
		t.Fatal("the mid-turn message never reached Claude")
	}
	var ids []uint64
	for _, tok := range []string{"FLEET-AFTER-1", "FLEET-AFTER-2"} {
		id, _ := quick(t, as, "far", tok)
		ids = append(ids, id)
	}
	pids, argv := h.claudeStarts()
	if len(argv) != 1 {
		t.Fatalf("claude starts on the host before the kill: %q, want only B's", argv)
	}
	b.killDaemon()
	// B's Claude on the host dies with B's SSH connection, so it cannot
	// write into the session beside A's.
	waitFor(t, fmt.Sprintf("B's claude %d on the host to die with B", pids[0]), func() bool { return !alive(pids[0]) })

	// The asker on A gets its answer once A has taken the pair over.
	var w result
	select {
	case w = <-waited:
	case <-time.After(3 * poll.Deadline):
		t.Fatal("the asker on A got no answer after B was killed")
	}
	if w.err != nil || w.res.IsError {
		t.Fatalf("send_message on A while B was killed: %v %s", w.err, text(w.res))
	}
	var mid messageReply
	if raw, err := json.Marshal(w.res.StructuredContent); err != nil || json.Unmarshal(raw, &mid) != nil || mid.ID == 0 || mid.Status != "answered" {
		t.Fatalf("send_message on A while B was killed: %s %+v", text(w.res), w.res.StructuredContent)
	}
	ids = append([]uint64{mid.ID}, ids...)

	header := regexp.MustCompile(`\[switchboard message (\d+) `)
	session := ""
	for _, id := range ids {
		m := settled(t, as, id)
		if m.Status != "answered" {
			t.Errorf("message %d ended %s: %s", id, m.Status, m.Error)
			continue
		}
		for _, hd := range header.FindAllStringSubmatch(m.Answer, -1) {
			if hd[1] != fmt.Sprint(id) {
				t.Errorf("message %d got an answer to message %s: %q", id, hd[1], m.Answer)
			}
		}
		if !strings.Contains(m.Answer, fmt.Sprintf("[switchboard message %d ", id)) || !strings.Contains(m.Answer, "CWD: "+h.teamDir("far")) {
			t.Errorf("message %d's answer does not answer it on the host: %q", id, m.Answer)
		}
		session = m.SessionID
	}

	// A took the pair over: one new Claude, resuming B's session.
	_, argv = h.claudeStarts()
	if len(argv) != 2 {
		t.Fatalf("claude starts on the host: %q, want B's and then A's", argv)
	}
	id1, resumed1 := sessionArg(argv[0])
	id2, resumed2 := sessionArg(argv[1])
	if id1 == "" || resumed1 || id2 != id1 || !resumed2 || id1 != session {
		t.Errorf("claude starts = %q, want --session-id %s then --resume %s", argv, session, session)
	}
	leases, err := openStore(t, dsn).Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 1 || leases[0].FromTeam != "web" || leases[0].ToTeam != "far" || leases[0].Owner != "laptop" {
		t.Errorf("leases after the takeover: %+v, want web->far held by laptop", leases)
	}

	// The session file on the host: every message reached Claude once.
	first := regexp.MustCompile(`^\[switchboard message (\d+) from team "web" nonce [0-9a-f]{16}\]`)
	count := map[string]int{}
	for _, u := range userTexts(t, claudepath.SessionFile(claudetest.ConfigDir(h.env), h.teamDir("far"), session)) {
		if m := first.FindStringSubmatch(u); m != nil {
			count[m[1]]++
		}
	}
	if len(count) != len(ids)+1 {
		t.Errorf("the session file holds messages %v, want the first and %v once each", count, ids)
	}
	for _, id := range ids {
		if n := count[fmt.Sprint(id)]; n != 1 {
			t.Errorf("message %d reached Claude %d times, want exactly once", id, n)
		}
	}
}

// Two daemons on one machine, both with the default fleet name (the host
// name), as a user who copied the first config would start them: the second
// refuses to start and says which broker holds the name and how to choose
// another; the first goes on answering.
func TestFleetNameTakenRefused(t *testing.T) {
	t.Parallel() // its own worlds, database and daemons
	dsn := pgtest.DSN(t)
	claude := fakeclaudebin.Build(t)
	a := newWorldWith(t, claude, "web", "api")
	b := newWorldWith(t, claude, "ops")
	a.joinFleet(dsn, "")
	b.joinFleet(dsn, "")
	pid := a.startDaemon()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}

	r := b.run("", "teams")
	if r.code == 0 {
		t.Fatalf("a second daemon under the taken name %s started: %q", host, r.stdout)
	}
	for _, want := range []string{host, fmt.Sprint(pid), "settings.fleet.name"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the refused daemon's error %q does not name %q", r.stderr, want)
		}
	}
	if p := b.daemonPID(); p != 0 && alive(p) {
		t.Errorf("B's daemon %d runs under a taken name", p)
	}
	if r := a.run("", "ask", "--from", "web", "api", "still mine?"); r.code != 0 || !strings.Contains(r.stdout, "still mine?") {
		t.Errorf("ask on A after B was refused: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

// A team added to B's config while both daemons run shows on A and can be
// asked from A; once removed again, A no longer offers it.
func TestFleetReloadedTeamReachableFromOtherDaemon(t *testing.T) {
	t.Parallel() // its own worlds, database and daemons
	dsn := pgtest.DSN(t)
	claude := fakeclaudebin.Build(t)
	a, b := twoBrokers(t, dsn, claude, []string{"web"}, []string{"api"})
	b.startDaemon()
	sess := a.proxy("web", nil)
	ctx := context.Background()

	orig, err := os.ReadFile(b.config)
	if err != nil {
		t.Fatal(err)
	}
	docs := b.teamDir("docs")
	if err := os.MkdirAll(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, b.config, string(orig)+fmt.Sprintf("  docs:\n    path: %s\n    claudePath: %s\n    description: the docs team\n", docs, filepath.Join(b.root, "bin", "claude")))
	waitFor(t, "list_teams on A to show B's new team", func() bool {
		d := fleetTeams(t, sess, "list_teams", nil)["docs"]
		return d.Broker == "workstation" && d.BrokerAlive
	})
	res, err := send(ctx, sess, "docs", "where is the style guide?")
	if err != nil || res.IsError || !strings.Contains(text(res), "where is the style guide?") || !strings.Contains(text(res), "CWD: "+docs) {
		t.Fatalf("ask from A to B's new team: %v %q, want it answered in %s", err, text(res), docs)
	}

	replaceFile(t, b.config, string(orig))
	waitFor(t, "list_teams on A to drop the removed team", func() bool {
		_, ok := fleetTeams(t, sess, "list_teams", nil)["docs"]
		return !ok
	})
	out, isErr := callTool(t, sess, "send_message", map[string]any{"toTeam": "docs", "message": "still there?"})
	if !isErr || !strings.Contains(out, `unknown team "docs"`) || !strings.Contains(out, "api") || !strings.Contains(out, "web") {
		t.Errorf("ask from A to the removed team = %v %q, want unknown team with the fleet's teams listed", isErr, out)
	}
}

// Both daemons run the same remote team and are asked for it at the same
// time, from both sides: one of them takes the pair's lease and delivers
// every message, through one Claude process; each message reaches the
// session once, and each asker's messages in the order it sent them.
func TestFleetSharedRemoteTeamOneDeliverer(t *testing.T) {
	t.Parallel() // its own worlds, host, database and daemons
	dsn := pgtest.DSN(t)
	claude := fakeclaudebin.Build(t) // 30 turns: the fake answers as the real one does, in milliseconds
	h := newHostWith(t, claude)
	a, b := twoBrokers(t, dsn, claude, []string{"web"}, []string{"web"})
	h.addTeam(a, "far")
	h.addTeam(b, "far")
	a.startDaemon()
	b.startDaemon()
	sessions := map[string]*mcp.ClientSession{"laptop": a.proxy("web", nil), "workstation": b.proxy("web", nil)}

	const perAsker = 15
	ids := map[string][]uint64{}
	var mu sync.Mutex
	errs := make(chan string, 2*perAsker)
	var wg sync.WaitGroup
	for name, sess := range sessions {
		wg.Go(func() {
			for i := range perAsker {
				args := map[string]any{"toTeam": "far", "message": fmt.Sprintf("fleet-shared from %s n=%02d", name, i)}
				tool := "quick_message"
				if i%5 == 4 {
					tool, args["timeout"] = "send_message", 0
				}
				res, err := sess.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
				var r messageReply
				if err == nil && !res.IsError {
					if tool == "quick_message" {
						_, err = fmt.Sscanf(text(res), "Message %d for", &r.ID)
					} else if raw, merr := json.Marshal(res.StructuredContent); merr == nil {
						_ = json.Unmarshal(raw, &r)
					}
				}
				if err != nil || res.IsError || r.ID == 0 {
					errs <- fmt.Sprintf("%s on %s: %v %s", tool, name, err, text(res))
					return
				}
				mu.Lock()
				ids[name] = append(ids[name], r.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}

	session := ""
	for name, list := range ids {
		for i, id := range list {
			m := settled(t, sessions["laptop"], id)
			if m.Status != "answered" || !strings.Contains(m.Answer, fmt.Sprintf("fleet-shared from %s n=%02d", name, i)) {
				t.Errorf("message %d from %s: %s %q %q, want its own answer", id, name, m.Status, m.Answer, m.Error)
			}
			if session != "" && m.SessionID != session {
				t.Errorf("message %d went to session %s, others to %s", id, m.SessionID, session)
			}
			session = m.SessionID
		}
	}
	if _, argv := h.claudeStarts(); len(argv) != 1 {
		t.Errorf("claude starts on the host: %q, want one: the pair's lease holder's", argv)
	}
	leases, err := openStore(t, dsn).Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 1 || leases[0].FromTeam != "web" || leases[0].ToTeam != "far" {
		t.Errorf("leases: %+v, want one, for web->far", leases)
	}

	// The session file on the host: each message once, each asker's in order.
	first := regexp.MustCompile(`^\[switchboard message (\d+) from team "web" nonce [0-9a-f]{16}\]`)
	seen := map[uint64]int{}
	var order []uint64
	for _, u := range userTexts(t, claudepath.SessionFile(claudetest.ConfigDir(h.env), h.teamDir("far"), session)) {
		if m := first.FindStringSubmatch(u); m != nil {
			var id uint64
			fmt.Sscan(m[1], &id)
			seen[id]++
			order = append(order, id)
		}
	}
	pos := map[uint64]int{}
	for i, id := range order {
		pos[id] = i
	}
	for name, list := range ids {
		for i, id := range list {
			if seen[id] != 1 {
				t.Errorf("message %d from %s reached Claude %d times, want once", id, name, seen[id])
			}
			if i > 0 && seen[id] == 1 && seen[list[i-1]] == 1 && pos[id] < pos[list[i-1]] {
				t.Errorf("%s's message %d reached Claude before its earlier message %d", name, id, list[i-1])
			}
		}
	}
	if len(order) != 2*perAsker {
		t.Errorf("the session file holds %d messages, want %d: %v", len(order), 2*perAsker, order)
	}
}

// A daemon killed and started again at once, as the next command after a
// crash starts it: it takes its own fleet name back (the record's host is
// this one and its pid is gone) instead of waiting out the dead one's
// heartbeat, and answers.
func TestFleetDaemonRestartedRightAfterKill(t *testing.T) {
	t.Parallel() // its own worlds, database and daemons
	dsn := pgtest.DSN(t)
	claude := fakeclaudebin.Build(t)
	b := newWorldWith(t, claude, "web", "api")
	b.joinFleet(dsn, "workstation")
	first := b.startDaemon()
	if r := b.run("", "ask", "--from", "web", "api", "before the crash"); r.code != 0 {
		t.Fatalf("ask before the kill: exit %d, %q", r.code, r.stderr)
	}
	b.killDaemon()
	r := b.run("", "ask", "--from", "web", "api", "right after the crash")
	if r.code != 0 || !strings.Contains(r.stdout, "right after the crash") {
		t.Fatalf("ask right after the daemon was killed: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if second := b.daemonPID(); second == first || !alive(second) {
		t.Errorf("daemon after the kill: pid %d (killed %d), want a new live one", second, first)
	}
}

// `switchboard stop` on B while B's Claude is answering a message of a
// remote team both daemons run: B's clean shutdown gives the pair up at once
// (no wait for the lease to run out), A resumes the session and answers the
// message, which reaches Claude once.
func TestFleetRemoteTeamPassesOnCleanStop(t *testing.T) {
	t.Parallel() // its own worlds, host, database and daemons
	dsn := pgtest.DSN(t)
	claude := fakeclaudebin.Build(t)
	h := newHostWith(t, claude)
	a, b := twoBrokers(t, dsn, claude, []string{"web"}, []string{"web"})
	h.addTeam(a, "far")
	h.addTeam(b, "far")
	b.startDaemon()
	bs := b.proxy("web", nil)
	ctx := context.Background()
	if res, err := send(ctx, bs, "far", "FLEET-FIRST"); err != nil || res.IsError {
		t.Fatalf("first ask on B: %v %s", err, text(res))
	}
	a.startDaemon()
	as := a.proxy("web", nil)
	id, _ := quick(t, as, "far", "SLEEP 1m\nFLEET-STOP-MIDTURN")
	waitFor(t, "B to start answering the message", func() bool {
		out, _ := callTool(t, as, "message_status", map[string]any{"messageId": id})
		var r messageReply
		return json.Unmarshal([]byte(out), &r) == nil && r.Status == "running"
	})
	if _, argv := h.claudeStarts(); len(argv) != 1 {
		t.Fatalf("claude starts on the host before the stop: %q, want only B's", argv)
	}

	if r := b.run("", "stop"); r.code != 0 {
		t.Fatalf("switchboard stop on B: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	st := openStore(t, dsn)
	leases, err := st.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.Owner == "workstation" {
			t.Errorf("B stopped cleanly but still holds %+v", l)
		}
	}
	brokers, err := st.Brokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range brokers {
		if r.Name == "workstation" && (r.StoppedAt == nil || r.Alive(time.Now(), fleetLeaseTTL)) {
			t.Errorf("B's record after a clean stop: %+v, want it stopped", r)
		}
	}

	m := settled(t, as, id)
	if m.Status != "answered" || !strings.Contains(m.Answer, fmt.Sprintf("[switchboard message %d ", id)) {
		t.Fatalf("the message B was answering when it stopped: %+v", m)
	}
	_, argv := h.claudeStarts()
	if len(argv) != 2 {
		t.Fatalf("claude starts on the host: %q, want B's and then A's", argv)
	}
	if id1, _ := sessionArg(argv[0]); sessionArgIs(argv[1], id1, true) == false || id1 != m.SessionID {
		t.Errorf("claude starts = %q, want A to resume session %s", argv, m.SessionID)
	}
	once := regexp.MustCompile(fmt.Sprintf(`^\[switchboard message %d from team "web" nonce [0-9a-f]{16}\]`, id))
	n := 0
	for _, u := range userTexts(t, claudepath.SessionFile(claudetest.ConfigDir(h.env), h.teamDir("far"), m.SessionID)) {
		if once.MatchString(u) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the message reached Claude %d times, want exactly once", n)
	}
}

// sessionArgIs reports whether a claude start used session id, resumed or not.
func sessionArgIs(args, id string, resumed bool) bool {
	got, r := sessionArg(args)
	return got == id && r == resumed
}

// cutConnections ends every other connection to the fleet's database, as a
// database restart or a failover does to the brokers' pools and listeners.
func cutConnections(t *testing.T, dsn string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	// The timeout makes pg_terminate_backend wait until each is gone.
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The database cuts every connection of both daemons (a restart, a
// failover): they reconnect, and asks across the two daemons are answered
// again, both one queued at once after the cut and one waited for.
func TestFleetSurvivesCutDatabaseConnections(t *testing.T) {
	t.Parallel() // its own worlds, database and daemons
	dsn := pgtest.DSN(t)
	claude := fakeclaudebin.Build(t)
	a, b := twoBrokers(t, dsn, claude, []string{"web"}, []string{"api"})
	b.startDaemon()
	sess := a.proxy("web", nil)
	ctx := context.Background()
	if res, err := send(ctx, sess, "api", "before the cut"); err != nil || res.IsError {
		t.Fatalf("ask before the cut: %v %s", err, text(res))
	}

	for round := range 3 {
		if n := cutConnections(t, dsn); n < 2 {
			t.Fatalf("cut %d connections, want both daemons' (at least their listeners)", n)
		}
		// Neither call may meet a dead pooled connection, and B, alive,
		// must never look dead to A.
		res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "quick_message", Arguments: map[string]any{"toTeam": "api", "message": fmt.Sprintf("queued after cut %d", round)}})
		if err != nil {
			t.Fatal(err)
		}
		var id uint64
		if _, err := fmt.Sscanf(text(res), "Message %d for", &id); res.IsError || err != nil {
			t.Fatalf("quick_message after cut %d: %s", round, text(res))
		}
		res, err = sess.CallTool(ctx, &mcp.CallToolParams{Name: "send_message", Arguments: map[string]any{"toTeam": "api", "message": fmt.Sprintf("waited after cut %d", round), "timeout": 0}})
		if err != nil || res.IsError {
			t.Fatalf("send_message after cut %d: %v %s", round, err, text(res))
		}
		if !strings.Contains(text(res), fmt.Sprintf("waited after cut %d", round)) {
			t.Fatalf("send_message after cut %d returned before the answer: %s", round, text(res))
		}
		if m := settled(t, sess, id); m.Status != "answered" || !strings.Contains(m.Answer, fmt.Sprintf("queued after cut %d", round)) {
			t.Fatalf("the message queued after cut %d: %+v", round, m)
		}
	}
}
