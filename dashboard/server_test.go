package dashboard_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/dashboard"
	"github.com/switchboard-mcp/switchboard/dashboard/dashboardtest"
)

const token = "s3cret-token"

// syncBuf is a log sink safe for the server's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type env struct {
	srv  *httptest.Server
	fake *dashboardtest.Fake
	logs *syncBuf
	host string
}

// start serves the dashboard over a fake holding the demo state on a real
// loopback listener whose address is the one allowed Host.
func start(t *testing.T) *env {
	t.Helper()
	e := &env{fake: dashboardtest.New(dashboardtest.Demo(time.Now())), logs: &syncBuf{}}
	e.srv = httptest.NewUnstartedServer(nil)
	e.host = e.srv.Listener.Addr().String()
	e.srv.Config.Handler = dashboard.New(dashboard.Options{
		Backend:      e.fake,
		Token:        token,
		AllowedHosts: []string{e.host},
		Logger:       slog.New(slog.NewTextHandler(e.logs, nil)),
		PollInterval: time.Hour, // only change signals drive events in these tests
	})
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func (e *env) do(t *testing.T, method, path string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: noRedirect}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readAll(t *testing.T, r *http.Response) string {
	t.Helper()
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var bearer = map[string]string{"Authorization": "Bearer " + token}

var endpoints = []struct{ method, path, body string }{
	{"GET", "/", ""},
	{"GET", "/static/app.js", ""},
	{"GET", "/static/app.css", ""},
	{"GET", "/events", ""},
	{"GET", "/api/teams", ""},
	{"GET", "/api/messages", ""},
	{"GET", "/api/session?from=web&to=api", ""},
	{"GET", "/api/logs", ""},
	{"GET", "/api/permissions", ""},
	{"POST", "/api/pairs/wake", `{"from":"web","to":"api"}`},
	{"POST", "/api/send", `{"to":"api","text":"hi"}`},
	{"POST", "/api/decide", `{"id":"p-7","allow":true}`},
}

func TestEveryEndpointNeedsToken(t *testing.T) {
	e := start(t)
	for _, ep := range endpoints {
		for name, hdr := range map[string]map[string]string{
			"none":          {"Content-Type": "application/json"},
			"wrong bearer":  {"Content-Type": "application/json", "Authorization": "Bearer nope"},
			"wrong cookie":  {"Content-Type": "application/json", "Cookie": dashboard.CookieName + "=nope"},
			"token in body": {"Content-Type": "application/json", "Authorization": token},
		} {
			t.Run(ep.method+" "+ep.path+" "+name, func(t *testing.T) {
				r := e.do(t, ep.method, ep.path, hdr, ep.body)
				body := readAll(t, r)
				if r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401", r.StatusCode)
				}
				if !strings.Contains(body, "switchboard dashboard") {
					t.Errorf("401 page does not say to run switchboard dashboard: %q", body)
				}
			})
		}
	}
	if n := len(e.fake.Calls()); n != 0 {
		t.Errorf("backend got %d actions from unauthorized requests", n)
	}
}

func TestWrongHostIsForbidden(t *testing.T) {
	e := start(t)
	for _, host := range []string{"evil.example:80", "evil.example", "localhost.evil.example:" + strings.Split(e.host, ":")[1], "LOCALHOST"} {
		for _, ep := range endpoints {
			hdr := map[string]string{"Host": host, "Authorization": "Bearer " + token, "Content-Type": "application/json"}
			sep := "?"
			if strings.Contains(ep.path, "?") {
				sep = "&"
			}
			r := e.do(t, ep.method, ep.path+sep+"token="+token, hdr, ep.body)
			readAll(t, r)
			if r.StatusCode != http.StatusForbidden {
				t.Errorf("Host %q %s %s: status %d, want 403", host, ep.method, ep.path, r.StatusCode)
			}
		}
	}
}

func TestCookieFlow(t *testing.T) {
	e := start(t)
	r := e.do(t, "GET", "/?token="+token, nil, "")
	readAll(t, r)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("first visit: status %d Location %q, want 303 to /", r.StatusCode, r.Header.Get("Location"))
	}
	var c *http.Cookie
	for _, k := range r.Cookies() {
		if k.Name == dashboard.CookieName {
			c = k
		}
	}
	if c == nil {
		t.Fatalf("no %s cookie in %v", dashboard.CookieName, r.Header["Set-Cookie"])
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/", c)
	}
	if got := r.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy %q: the token would leak in Referer", got)
	}

	r = e.do(t, "GET", "/", map[string]string{"Cookie": c.String()}, "")
	body := readAll(t, r)
	if r.StatusCode != 200 || !strings.Contains(body, "/static/app.js") {
		t.Fatalf("page with cookie: status %d body %.200q", r.StatusCode, body)
	}

	r = e.do(t, "GET", "/?token=wrong", nil, "")
	readAll(t, r)
	if r.StatusCode != http.StatusUnauthorized || len(r.Cookies()) != 0 {
		t.Errorf("wrong token in URL: status %d cookies %v, want 401 and no cookie", r.StatusCode, r.Cookies())
	}
}

func TestPostNeedsSameOrigin(t *testing.T) {
	e := start(t)
	tests := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"same origin", map[string]string{"Origin": "http://" + e.host, "Content-Type": "application/json"}, 200},
		{"same origin form", map[string]string{"Origin": "http://" + e.host, "Content-Type": "text/plain"}, 200},
		{"no origin json", map[string]string{"Content-Type": "application/json"}, 200},
		{"no origin form", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 403},
		{"no origin text", map[string]string{"Content-Type": "text/plain"}, 403},
		{"other origin", map[string]string{"Origin": "http://evil.example", "Content-Type": "application/json"}, 403},
		{"other port", map[string]string{"Origin": "http://127.0.0.1:1", "Content-Type": "application/json"}, 403},
		{"null origin", map[string]string{"Origin": "null", "Content-Type": "application/json"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.hdr["Authorization"] = "Bearer " + token
			before := len(e.fake.Calls())
			r := e.do(t, "POST", "/api/pairs/wake", tt.hdr, `{"from":"web","to":"api"}`)
			readAll(t, r)
			if r.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", r.StatusCode, tt.want)
			}
			if called := len(e.fake.Calls()) > before; called != (tt.want == 200) {
				t.Errorf("backend called = %v", called)
			}
		})
	}
}

func TestReadEndpoints(t *testing.T) {
	e := start(t)
	tests := []struct{ path, want string }{
		{"/api/teams", `"name":"db"`},
		{"/api/teams", `"state":"waiting-for-permission"`},
		{"/api/messages", `"id":"m-1039"`},
		{"/api/messages?status=expired", `"id":"m-1040"`},
		{"/api/session?from=web&to=api", `"role":"assistant"`},
		{"/api/logs?level=ERROR", `"message":"message expired"`},
		{"/api/permissions", `"id":"p-7"`},
		{"/static/app.js", "EventSource"},
		{"/static/app.css", "prefers-color-scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := e.do(t, "GET", tt.path, bearer, "")
			body := readAll(t, r)
			if r.StatusCode != 200 || !strings.Contains(body, tt.want) {
				t.Fatalf("status %d, body %.300q does not contain %q", r.StatusCode, body, tt.want)
			}
		})
	}
	// Filters reach the backend: a status filter leaves the others out.
	r := e.do(t, "GET", "/api/messages?status=expired", bearer, "")
	if body := readAll(t, r); strings.Contains(body, "m-1041") {
		t.Errorf("status=expired returned an answered message: %s", body)
	}
	r = e.do(t, "GET", "/api/session?from=nobody&to=api", bearer, "")
	if body := readAll(t, r); r.StatusCode != http.StatusBadGateway || !strings.Contains(body, "no session") {
		t.Errorf("unknown session: status %d body %s", r.StatusCode, body)
	}
}

func TestActionsCallBackendAndAreLogged(t *testing.T) {
	tests := []struct {
		path, body string
		want       dashboardtest.Call
		log        string
	}{
		{"/api/pairs/wake", `{"from":"web","to":"api"}`, dashboardtest.Call{Action: "wake", From: "web", To: "api"}, "action=wake"},
		{"/api/pairs/sleep", `{"from":"web","to":"api"}`, dashboardtest.Call{Action: "sleep", From: "web", To: "api"}, "action=sleep"},
		{"/api/pairs/cancel", `{"from":"api","to":"db"}`, dashboardtest.Call{Action: "cancel", From: "api", To: "db"}, "action=cancel"},
		{"/api/pairs/reboot", `{"from":"api","to":"db"}`, dashboardtest.Call{Action: "reboot", From: "api", To: "db"}, "action=reboot"},
		{"/api/send", `{"to":"api","text":"what changed?"}`, dashboardtest.Call{Action: "send", To: "api", Text: "what changed?"}, "action=send"},
		{"/api/decide", `{"id":"p-7","allow":true}`, dashboardtest.Call{Action: "decide", ID: "p-7", Allow: true}, "action=decide"},
		{"/api/decide", `{"id":"p-7","allow":false,"reason":"not now"}`, dashboardtest.Call{Action: "decide", ID: "p-7", Reason: "not now"}, "allow=false"},
	}
	for _, tt := range tests {
		t.Run(tt.want.Action+" "+tt.body, func(t *testing.T) {
			e := start(t)
			r := e.do(t, "POST", tt.path, map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}, tt.body)
			body := readAll(t, r)
			if r.StatusCode != 200 || !strings.Contains(body, `"ok":true`) {
				t.Fatalf("status %d body %s", r.StatusCode, body)
			}
			calls := e.fake.Calls()
			if len(calls) != 1 || calls[0] != tt.want {
				t.Fatalf("backend calls %+v, want [%+v]", calls, tt.want)
			}
			if l := e.logs.String(); !strings.Contains(l, "dashboard action") || !strings.Contains(l, tt.log) {
				t.Errorf("action not logged with %q: %s", tt.log, l)
			}
		})
	}
}

func TestActionErrorsAndBadRequests(t *testing.T) {
	e := start(t)
	e.fake.Update(func(s *dashboardtest.State) { s.ActionErr = errUnknownTeam })
	h := map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}
	r := e.do(t, "POST", "/api/pairs/wake", h, `{"from":"web","to":"nope"}`)
	if body := readAll(t, r); r.StatusCode != http.StatusBadGateway || !strings.Contains(body, "unknown team nope") {
		t.Errorf("failing action: status %d body %s", r.StatusCode, body)
	}
	if l := e.logs.String(); !strings.Contains(l, "dashboard action failed") {
		t.Errorf("failed action not logged: %s", l)
	}
	for _, tc := range []struct{ path, body string }{
		{"/api/pairs/explode", `{"from":"a","to":"b"}`},
		{"/api/pairs/wake", `{"from":"a"}`},
		{"/api/send", `{"to":"api","text":"  "}`},
		{"/api/decide", `{"allow":true}`},
		{"/api/decide", `not json`},
	} {
		r := e.do(t, "POST", tc.path, h, tc.body)
		readAll(t, r)
		if r.StatusCode/100 != 4 {
			t.Errorf("POST %s %s: status %d, want 4xx", tc.path, tc.body, r.StatusCode)
		}
	}
}

var errUnknownTeam = &textErr{"unknown team nope"}

type textErr struct{ s string }

func (e *textErr) Error() string { return e.s }

// readEvent reads one "snapshot" event's data, skipping heartbeats.
func readEvent(t *testing.T, br *bufio.Reader) map[string]json.RawMessage {
	t.Helper()
	var data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && data != "":
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(data), &m); err != nil {
				t.Fatalf("event data %q: %v", data, err)
			}
			return m
		}
	}
}

func TestEventsDeliverChanges(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/events?sfrom=web&sto=api&llevel=INFO", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)

	first := readEvent(t, br)
	for _, k := range []string{"teams", "messages", "session", "logs", "permissions", "now"} {
		if _, ok := first[k]; !ok {
			t.Errorf("first snapshot lacks %q", k)
		}
	}
	if !strings.Contains(string(first["session"]), "customer's open orders") {
		t.Errorf("session view not in snapshot: %s", first["session"])
	}

	// A pair starts answering: the next event carries the teams view, and only
	// the views that changed.
	e.fake.Update(func(s *dashboardtest.State) {
		s.Teams[0].Pairs[0].State = dashboard.StateAnswering
	})
	next := readEvent(t, br)
	if !strings.Contains(string(next["teams"]), `"state":"answering"`) {
		t.Fatalf("event after change: %s", next["teams"])
	}
	for _, k := range []string{"messages", "logs", "permissions", "session"} {
		if _, ok := next[k]; ok {
			t.Errorf("unchanged view %q sent again", k)
		}
	}

	e.fake.Update(func(s *dashboardtest.State) {
		s.Messages = append([]dashboard.Message{{ID: "m-2000", From: "web", To: "api", Status: "answered", Question: "ping?", Answer: "pong"}}, s.Messages...)
	})
	next = readEvent(t, br)
	if !strings.Contains(string(next["messages"]), `"answer":"pong"`) {
		t.Fatalf("event after new message: %v", next)
	}

	cancel()
	// The subscription ends with the stream.
	deadline := time.Now().Add(5 * time.Second)
	for e.fake.Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Changes subscription not stopped after the client left")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Polling covers a backend that never signals.
func TestEventsPollWithoutSignals(t *testing.T) {
	fake := dashboardtest.New(dashboardtest.Demo(time.Now()))
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = dashboard.New(dashboard.Options{
		Backend: silent{fake}, Token: token, AllowedHosts: []string{srv.Listener.Addr().String()},
		PollInterval: 50 * time.Millisecond,
	})
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readEvent(t, br)
	fake.Update(func(s *dashboardtest.State) {
		s.Teams[1].Reachable, s.Teams[1].Reason = false, "dial db-box: connection refused"
	})
	if next := readEvent(t, br); !strings.Contains(string(next["teams"]), "connection refused") {
		t.Fatalf("polled event: %v", next)
	}
}

// silent is a Backend whose Changes never fires.
type silent struct{ *dashboardtest.Fake }

func (silent) Changes() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }

func TestEventsHeartbeat(t *testing.T) {
	t.Cleanup(dashboard.SetHeartbeat(20 * time.Millisecond))
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readEvent(t, br)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("no heartbeat before the stream ended: %v", err)
		}
		if strings.HasPrefix(line, ": heartbeat") {
			return
		}
	}
}
