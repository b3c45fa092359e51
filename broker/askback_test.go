package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/hosts"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
	"github.com/switchboard-mcp/switchboard/local"
	"github.com/switchboard-mcp/switchboard/models"
	"github.com/switchboard-mcp/switchboard/remote"
)

// The tool a team's Claude asks another team with, as Claude Code names it.
const sendTool = "mcp__switchboard__send_message"

// newAskHarness configures teams on this machine and, for names in
// remoteTeams, behind the real sshd srv, with switchboard's tools served to
// every Claude the broker starts (as cmd/switchboard wires it) and allowed
// by their allowedTools.
func newAskHarness(t *testing.T, be backend, srv *sshdtest.Server, settings string, teams []string, remoteTeams ...string) *harness {
	t.Helper()
	root := t.TempDir()
	bin, env, configDir := be.setup(t, root)
	h := &harness{t: t, root: root, dbPath: filepath.Join(root, "db", "switchboard.db"), configDir: configDir, env: env}
	isRemote := map[string]bool{}
	for _, r := range remoteTeams {
		isRemote[r] = true
	}
	var y strings.Builder
	fmt.Fprintf(&y, "settings:\n  healthCheckInterval: 1h\n%s\n", settings)
	if srv != nil {
		fmt.Fprintf(&y, "  sshConfig: %q\n", srv.SSHConfig)
	}
	y.WriteString("teams:\n")
	for _, team := range teams {
		dir := filepath.Join(root, "teams", team+" dir")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&y, "  %s:\n    path: %q\n    claudePath: %q\n    allowedTools: %q\n", team, dir, bin, sendTool)
		if isRemote[team] {
			fmt.Fprintf(&y, "    ssh: %s\n    remoteOptions: { serverAliveInterval: 500ms, serverAliveCountMax: 4 }\n    env:\n", srv.Alias)
			// The SSH session does not inherit this process's env.
			for _, kv := range env {
				k, v, _ := strings.Cut(kv, "=")
				if strings.HasPrefix(k, "ANTHROPIC_") || strings.HasPrefix(k, "DISABLE_") || strings.HasPrefix(k, "CLAUDE_") || k == "HOME" {
					fmt.Fprintf(&y, "      %s: %q\n", k, v)
				}
			}
		}
	}
	cfg, err := configs.Parse([]byte(y.String()), filepath.Join(root, "switchboard.yaml"))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y.String())
	}
	h.cfg = cfg
	h.rec = &recorder{Runner: local.New(local.Options{Env: env})}
	pool := remote.NewPool(nil)
	hs := hosts.New(hosts.Options{Local: h.rec, Pool: pool, SSHConfig: cfg.Settings.SSHConfig, LocalConfigDir: h.configDir,
		CredentialDir: filepath.Join(root, "run-local"), RemoteCredentialDir: filepath.Join(root, "run-remote")})
	t.Cleanup(func() { hs.Close() }) // after the broker's own cleanup
	h.hosts = hostsOf(hs)
	h.serveSessions = hs.ServeMCP
	h.open()
	return h
}

// credential returns the live credential of the from->to pair's process.
func (h *harness) credential(from, to string) *credential {
	h.t.Helper()
	p := h.b.existingPair(from, to)
	if p == nil {
		h.t.Fatalf("no pair %s->%s", from, to)
	}
	p.mu.Lock()
	cl := p.cl
	p.mu.Unlock()
	h.b.asks.mu.Lock()
	defer h.b.asks.mu.Unlock()
	c := h.b.asks.byProc[cl]
	if c == nil {
		h.t.Fatalf("the %s->%s process has no session credential", from, to)
	}
	return c
}

// mcpConfigOf reads a credential's mcp-config file as Claude would, and
// checks that only its owner can read it.
func mcpConfigOf(t *testing.T, c *credential) (url, token string) {
	t.Helper()
	fi, err := os.Stat(c.file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", c.file, fi.Mode().Perm())
	}
	b, err := os.ReadFile(c.file)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		MCPServers map[string]struct {
			Type    string            `json:"type"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", c.file, err)
	}
	s, ok := cfg.MCPServers["switchboard"]
	if !ok || s.Type != "http" {
		t.Fatalf("%s has no http server named switchboard: %s", c.file, b)
	}
	token, ok = strings.CutPrefix(s.Headers["Authorization"], "Bearer ")
	if !ok || len(token) < 32 {
		t.Fatalf("%s carries no bearer token: %s", c.file, b)
	}
	return s.URL, token
}

// bearer adds a bearer token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// sessionClient connects to switchboard's tools at url with token, as a
// team's Claude does.
func sessionClient(t *testing.T, url, token string) *mcp.ClientSession {
	t.Helper()
	tr := &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearer{token}}, MaxRetries: -1}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(context.Background(), tr, nil)
	if err != nil {
		t.Fatalf("connect to %s with a session token: %v", url, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// initStatus is the HTTP status an MCP initialize request to url gets
// with token ("" sends none).
func initStatus(t *testing.T, url, token string) int {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := (&http.Client{Transport: bearer{token}, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// holdTurn has from ask to a long question and waits until to's Claude
// is answering it.
func (h *harness) holdTurn(from, to string) uint64 {
	h.t.Helper()
	r, err := h.b.Send(context.Background(), SendRequest{From: from, To: to, Text: "SLEEP 60s\nhold on", NoWait: true})
	if err != nil {
		h.t.Fatal(err)
	}
	h.running(r.MessageID)
	return r.MessageID
}

func TestFromTeamIsFixedByTheConnection(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	ctx := context.Background()
	first := h.ask("web", "api", "the web team's question")
	if first.Status != models.MessageAnswered {
		t.Fatalf("ask: %s %q", first.Status, first.Error)
	}

	// api's window names web as fromTeam: it may not read, fork or delete
	// web's session with api.
	api := h.connect("api", nil)
	for _, tool := range []string{"session_report", "session_fork", "session_delete", "session_reboot", "team_sleep", "send_message"} {
		text, isErr := call(t, api, tool, map[string]any{"team": "api", "toTeam": "api", "message": "hi", "fromTeam": "web", "deleteFile": true})
		if !isErr || !strings.Contains(text, `fromTeam "web" is not this caller's team`) || !strings.Contains(text, `acts as "api"`) {
			t.Errorf("%s as api with fromTeam web: error %v %q", tool, isErr, text)
		}
	}
	sess, err := h.store.SessionByPair(ctx, "web", "api")
	if err != nil || sess.SessionID != first.SessionID {
		t.Fatalf("web->api session after the attempts: %v %v", sess, err)
	}
	if _, err := os.Stat(h.sessionFile("api", first.SessionID)); err != nil {
		t.Fatalf("web->api session file: %v", err)
	}
	// Its own team, named or not, works.
	if text, isErr := call(t, h.connect("web", nil), "session_fork", map[string]any{"team": "api", "fromTeam": "web"}); isErr || !strings.Contains(text, first.SessionID) {
		t.Fatalf("session_fork as web for itself: %s", text)
	}

	// An unconfigured caller, or fromTeam of 5,000 characters, creates nothing.
	long := strings.Repeat("x", 5000)
	for _, c := range []struct{ caller, from string }{{long, ""}, {"web", long}, {"ghost", ""}} {
		cs := h.connect(c.caller, nil)
		args := map[string]any{"toTeam": "api", "message": "hi"}
		if c.from != "" {
			args["fromTeam"] = c.from
		}
		text, isErr := call(t, cs, "send_message", args)
		if !isErr || len(text) > 1000 {
			t.Errorf("caller %.10q fromTeam %.10q: error %v, %d bytes %.200q", c.caller, c.from, isErr, len(text), text)
		}
		if text, isErr := call(t, cs, "team_wake", map[string]any{"team": "api", "fromTeam": c.from}); !isErr {
			t.Errorf("team_wake by caller %.10q: %s", c.caller, text)
		}
	}
	msgs, err := h.store.ListMessages(ctx, models.MessageFilter{ToTeam: "api"})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("messages to api: %d (%v), want only the first", len(msgs), err)
	}
	all, err := h.store.ListSessions(ctx, models.SessionFilter{})
	if err != nil || len(all) != 1 {
		t.Fatalf("sessions: %d (%v), want only web->api", len(all), err)
	}
	// The operator may use the tools as itself.
	if text, isErr := call(t, h.connect("", nil), "send_message", map[string]any{"toTeam": "api", "message": "REPLY ok", "fromTeam": "user"}); isErr || text != "ok" {
		t.Fatalf("operator ask: %v %q", isErr, text)
	}
}

func TestSessionCredentialActsAsItsTeamUntilItsProcessEnds(t *testing.T) {
	t.Parallel()
	h := newAskHarness(t, fakeBackend, nil, "", []string{"web", "api", "db"})
	ctx := context.Background()
	parent := h.holdTurn("web", "api")
	c := h.credential("web", "api")
	url, token := mcpConfigOf(t, c)
	for _, argv := range h.starts() {
		if strings.Contains(argv, token) {
			t.Fatalf("the session token is on a command line: %s", argv)
		}
		if !strings.Contains(argv, "--mcp-config") {
			t.Fatalf("a claude started without switchboard's tools: %s", argv)
		}
	}
	if got := initStatus(t, url, ""); got != http.StatusUnauthorized {
		t.Fatalf("no token: HTTP %d, want 401", got)
	}
	if got := initStatus(t, url, strings.Repeat("0", len(token))); got != http.StatusUnauthorized {
		t.Fatalf("a made-up token: HTTP %d, want 401", got)
	}

	cs := sessionClient(t, url, token)
	// Asking back the team that waits for this answer is a loop.
	text, isErr := call(t, cs, "send_message", map[string]any{"toTeam": "web", "message": "what did you mean?"})
	if !isErr || !strings.Contains(text, "web → api → web") || !strings.Contains(text, "already waiting") {
		t.Fatalf("A->B->A: %v %q", isErr, text)
	}
	if text, isErr := call(t, cs, "quick_message", map[string]any{"toTeam": "web", "message": "later then"}); !isErr || !strings.Contains(text, "web → api → web") {
		t.Fatalf("A->B->A by quick_message: %v %q", isErr, text)
	}
	text, isErr = call(t, cs, "send_message", map[string]any{"toTeams": []string{"web", "db"}, "message": "REPLY db knows"})
	if isErr || !strings.Contains(text, "web → api → web") || !strings.Contains(text, "db knows") {
		t.Fatalf("fan-out to a waiting team and another: %v %s", isErr, text)
	}
	// Another team is fine, and the message records the chain.
	text, isErr = call(t, cs, "send_message", map[string]any{"toTeam": "db", "message": "REPLY the schema is v2"})
	if isErr || text != "the schema is v2" {
		t.Fatalf("api asks db: %v %q", isErr, text)
	}
	msgs, err := h.store.ListMessages(ctx, models.MessageFilter{FromTeam: "api", ToTeam: "db", Limit: 1})
	if err != nil || len(msgs) != 1 || msgs[0].ParentID != parent || msgs[0].Chain != "web → api" {
		t.Fatalf("api->db message: %+v %v", msgs, err)
	}
	if text, _ := call(t, cs, "message_status", map[string]any{"messageId": msgs[0].ID}); !strings.Contains(text, `"chain": "web → api"`) {
		t.Fatalf("message_status does not show the chain: %s", text)
	}
	// db's Claude was told who waits.
	users := h.userEntries("api", "db")
	if len(users) == 0 || !strings.HasPrefix(users[len(users)-1], header(&msgs[0])+" [ask chain: web → api → db (you)") {
		t.Fatalf("db's header: %q", users)
	}
	// The credential is api's, whatever fromTeam says.
	if text, isErr := call(t, cs, "session_report", map[string]any{"team": "api", "fromTeam": "web"}); !isErr || !strings.Contains(text, `acts as "api"`) {
		t.Fatalf("session credential naming fromTeam web: %v %q", isErr, text)
	}

	// The process ends: so does its credential, and its file goes.
	if _, err := h.b.Sleep(ctx, "web", "api", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the token to stop working", func() bool { return initStatus(t, url, token) == http.StatusUnauthorized })
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_teams"}); err == nil && !res.IsError {
		t.Fatal("an open MCP session outlived its credential")
	} else if err != nil && !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("an open MCP session after its credential ended: %v, want Unauthorized", err)
	}
	waitFor(t, "the credential file to go", func() bool { _, err := os.Stat(c.file); return os.IsNotExist(err) })
}

func TestAskDepthIsBounded(t *testing.T) {
	t.Parallel()
	h := newAskHarness(t, fakeBackend, nil, "  maxAskDepth: 2", []string{"web", "api", "db", "ops"})
	h.holdTurn("web", "api")
	url, token := mcpConfigOf(t, h.credential("web", "api"))
	api := sessionClient(t, url, token)
	// web → api → db is two asks deep: allowed.
	text, isErr := call(t, api, "send_message", map[string]any{"toTeam": "db", "message": "SLEEP 60s\ndeeper", "timeout": -1})
	if isErr {
		t.Fatalf("web → api → db: %q", text)
	}
	msgs, err := h.store.ListMessages(context.Background(), models.MessageFilter{FromTeam: "api", ToTeam: "db", Limit: 1})
	if err != nil || len(msgs) != 1 || msgs[0].Chain != "web → api" {
		t.Fatalf("api->db message: %+v %v", msgs, err)
	}
	h.running(msgs[0].ID)
	// db, answering it, would make a third ask.
	url, token = mcpConfigOf(t, h.credential("api", "db"))
	db := sessionClient(t, url, token)
	text, isErr = call(t, db, "send_message", map[string]any{"toTeam": "ops", "message": "REPLY too deep"})
	if !isErr || !strings.Contains(text, "web → api → db → ops") || !strings.Contains(text, "maxAskDepth 2") {
		t.Fatalf("a third ask with maxAskDepth 2: %v %q", isErr, text)
	}
	if msgs, _ := h.store.ListMessages(context.Background(), models.MessageFilter{ToTeam: "ops"}); len(msgs) != 0 {
		t.Fatalf("the refused ask left %d messages", len(msgs))
	}
}

// ask sends text from -> to with the real Claude and waits for its answer.
func (h *harness) askOK(from, to, text string) string {
	h.t.Helper()
	r := h.ask(from, to, text)
	if r.Status != models.MessageAnswered {
		h.t.Fatalf("%s -> %s: %s %q", from, to, r.Status, r.Error)
	}
	return r.Answer
}

// askVia is the user text that makes the fake model call send_message
// with toTeam and message.
func askVia(toTeam, message string) string {
	b, _ := json.Marshal(map[string]string{"toTeam": toTeam, "message": message})
	return "TOOL " + sendTool + " " + string(b)
}

func TestTeamsAskBackOverRealSSH(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: the real Claude Code and sshd run in the full test run")
	}
	srv := sshdtest.StartWith(t, sshdtest.Options{AllowTcpForwarding: "remote"})
	h := newAskHarness(t, realBackend, srv, "", []string{"web", "api", "db", "ops"}, "api")

	// The remote team asks a local one in the middle of its answer, and the
	// local answer comes back inside the remote team's answer.
	got := h.askOK("ops", "api", askVia("web", "REPLY web says the schema is v2"))
	// (Claude Code hands the model the tool's structured result: the reply.)
	if !strings.HasPrefix(got, fakeapi.ToolResultPrefix) || !strings.Contains(got, `"response":"web says the schema is v2"`) || !strings.Contains(got, `"chain":"ops → api"`) {
		t.Fatalf("api's answer: %q", got)
	}
	// A local team asks the remote one the same way.
	got = h.askOK("ops", "web", askVia("api", "REPLY api says hello"))
	if !strings.HasPrefix(got, fakeapi.ToolResultPrefix) || !strings.Contains(got, `"response":"api says hello"`) {
		t.Fatalf("web's answer: %q", got)
	}
	// Everything went over the one SSH connection.
	if n := srv.Accepted(); n != 1 {
		t.Fatalf("sshd accepted %d connections, want 1 (asking back must not open another)", n)
	}

	// A -> B -> A is refused with the chain; A -> B -> C -> D works.
	got = h.askOK("web", "api", askVia("web", "REPLY ping"))
	if !strings.Contains(got, "already waiting") || !strings.Contains(got, "web → api → web") {
		t.Fatalf("A->B->A: %q", got)
	}
	got = h.askOK("web", "api", askVia("db", askVia("ops", "REPLY deep")))
	if !strings.Contains(got, `\"response\":\"deep\"`) {
		t.Fatalf("web -> api -> db -> ops: %q", got)
	}
	msgs, err := h.store.ListMessages(context.Background(), models.MessageFilter{FromTeam: "db", ToTeam: "ops", Limit: 1})
	if err != nil || len(msgs) != 1 || msgs[0].Chain != "web → api → db" {
		t.Fatalf("db->ops message: %+v %v", msgs, err)
	}

	// The forwarded port on the remote host: nothing without the token;
	// with api's token, api only, until api's process ends.
	c := h.credential("web", "api")
	url, token := mcpConfigOf(t, c) // written over SFTP
	if got := initStatus(t, url, ""); got != http.StatusUnauthorized {
		t.Fatalf("forwarded port without a token: HTTP %d", got)
	}
	cs := sessionClient(t, url, token)
	if text, isErr := call(t, cs, "session_report", map[string]any{"team": "db", "fromTeam": "web"}); !isErr || !strings.Contains(text, `acts as "api"`) {
		t.Fatalf("api's token naming web: %v %q", isErr, text)
	}
	if text, isErr := call(t, cs, "session_report", map[string]any{"team": "db"}); isErr || !strings.Contains(text, "deep") {
		t.Fatalf("api's token reads its own session with db: %v %q", isErr, text)
	}
	if _, err := h.b.Sleep(context.Background(), "web", "api", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "api's token to stop working", func() bool { return initStatus(t, url, token) == http.StatusUnauthorized })
	waitFor(t, "api's credential file to be removed over SFTP", func() bool { _, err := os.Stat(c.file); return os.IsNotExist(err) })
	if n := srv.Accepted(); n != 1 {
		t.Fatalf("sshd accepted %d connections, want 1", n)
	}
}

func TestAskBackUnavailableWithoutForwarding(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: sshd runs in the full test run")
	}
	srv := sshdtest.StartWith(t, sshdtest.Options{AllowTcpForwarding: "no"})
	h := newAskHarness(t, fakeBackend, srv, "", []string{"web", "api"}, "api")
	if got := h.askOK("web", "api", "REPLY still here"); got != "still here" {
		t.Fatalf("api's answer without forwarding: %q", got)
	}
	sess, err := h.store.SessionByPair(context.Background(), "web", "api")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sess.LaunchCommand, "--mcp-config") {
		t.Fatalf("api started with an mcp-config it cannot use: %s", sess.LaunchCommand)
	}
	st, err := h.b.Status(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		switch s.Name {
		case "api":
			if !strings.HasPrefix(s.AskBack, "unavailable: ") || !strings.Contains(s.AskBack, "AllowTcpForwarding") {
				t.Errorf("team_status api askBack = %q; want it unavailable, naming AllowTcpForwarding", s.AskBack)
			}
		case "web":
			if s.AskBack != "available" {
				t.Errorf("team_status web askBack = %q", s.AskBack)
			}
		}
	}
}

func TestAskBackForwardReopensAfterReconnect(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: sshd runs in the full test run")
	}
	srv := sshdtest.StartWith(t, sshdtest.Options{AllowTcpForwarding: "yes"})
	h := newAskHarness(t, fakeBackend, srv, "", []string{"web", "api"}, "api")
	if got := h.askOK("web", "api", "REPLY one"); got != "one" {
		t.Fatalf("first answer %q", got)
	}
	c1 := h.credential("web", "api")
	url1, tok1 := mcpConfigOf(t, c1)
	if got := initStatus(t, url1, tok1); got != http.StatusOK {
		t.Fatalf("forwarded port with api's token: HTTP %d", got)
	}
	srv.Stop()
	waitFor(t, "the credential to die with the connection", func() bool {
		h.b.asks.mu.Lock()
		defer h.b.asks.mu.Unlock()
		return h.b.asks.byToken[tok1] == nil
	})
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := h.askOK("web", "api", "REPLY two"); got != "two" {
		t.Fatalf("answer after reconnect %q", got)
	}
	url2, tok2 := mcpConfigOf(t, h.credential("web", "api"))
	if got := initStatus(t, url2, tok2); got != http.StatusOK {
		t.Fatalf("the new connection's forwarded port: HTTP %d", got)
	}
	if n := srv.Accepted(); n != 2 {
		t.Fatalf("sshd accepted %d connections, want 2 (one per connection, none for forwarding)", n)
	}
}

// After `switchboard install --scope user`, Claude Code also loads a server
// named switchboard from the user's config; the session's own server (with
// its credential) must be the one the team's Claude talks to.
func TestSessionServerShadowsUserScopeSwitchboard(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: the real Claude Code runs in the full test run")
	}
	h := newAskHarness(t, realBackend, nil, "", []string{"web", "api"})
	// A user-scope entry that would fail if it were used.
	userConfig := filepath.Join(h.configDir, ".claude.json")
	if err := os.WriteFile(userConfig, []byte(`{"mcpServers":{"switchboard":{"type":"stdio","command":"/bin/false","args":[]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	got := h.askOK("web", "api", askVia("web", "REPLY hi"))
	if !strings.Contains(got, "already waiting") || !strings.Contains(got, "web → api → web") {
		t.Fatalf("api's ask back with a user-scope switchboard server configured: %q", got)
	}
}
