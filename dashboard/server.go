package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

//go:embed static
var staticFS embed.FS

// CookieName is the cookie that carries the token after the first visit.
const CookieName = "switchboard_dashboard"

// Options configures the handler New returns.
type Options struct {
	// Backend is the broker's view; required.
	Backend Backend
	// Token is the per-daemon secret; required. The page is opened once with
	// /?token=Token, after which an HttpOnly cookie carries it.
	Token string
	// AllowedHosts are the Host header values accepted, with port, e.g.
	// "127.0.0.1:7777" and "localhost:7777". Anything else gets 403, so a
	// site that rebinds its DNS name to 127.0.0.1 cannot read the page.
	AllowedHosts []string
	// Logger receives one record per action and per refused request; nil
	// discards.
	Logger *slog.Logger
	// Now is the clock the page's countdowns are measured against; nil means
	// time.Now.
	Now func() time.Time
	// PollInterval is how often an open page recomputes its snapshot when the
	// backend signals nothing (the fallback for missed signals); zero means 3s.
	PollInterval time.Duration
}

// Timing of the event stream: snapshots are computed at most every
// minSnapshotGap (a busy broker signals far more often than a person can
// read), and a comment goes out every heartbeat so proxies and the browser
// keep an idle stream open.
var heartbeat = 15 * time.Second // a var so a test need not wait 15 s

const (
	minSnapshotGap = 500 * time.Millisecond
	readTimeout    = 5 * time.Second

	messagesLimit = 100
	sessionLimit  = 200
	logsLimit     = 300
)

type server struct {
	b        Backend
	token    [32]byte
	hosts    map[string]bool
	log      *slog.Logger
	now      func() time.Time
	poll     time.Duration
	mux      *http.ServeMux
	hasToken bool
}

// New returns the dashboard's handler: the page, its assets, the JSON API,
// the actions and the /events stream, all behind the Host check and the token.
func New(opts Options) http.Handler {
	s := &server{
		b:        opts.Backend,
		token:    sha256.Sum256([]byte(opts.Token)),
		hasToken: opts.Token != "",
		hosts:    map[string]bool{},
		log:      opts.Logger,
		now:      opts.Now,
		poll:     opts.PollInterval,
	}
	for _, h := range opts.AllowedHosts {
		s.hosts[strings.ToLower(h)] = true
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.poll <= 0 {
		s.poll = 3 * time.Second
	}

	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", s.index)
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /events", s.events)
	m.HandleFunc("GET /api/teams", s.getJSON(func(ctx context.Context, _ url.Values) (any, error) { return s.b.Teams(ctx) }))
	m.HandleFunc("GET /api/messages", s.getJSON(func(ctx context.Context, q url.Values) (any, error) {
		return s.b.Messages(ctx, MessageFilter{Team: q.Get("team"), Status: q.Get("status"), Limit: intParam(q, "limit", messagesLimit)})
	}))
	m.HandleFunc("GET /api/session", s.getJSON(func(ctx context.Context, q url.Values) (any, error) {
		return s.b.Session(ctx, q.Get("from"), q.Get("to"), intParam(q, "limit", sessionLimit))
	}))
	m.HandleFunc("GET /api/logs", s.getJSON(func(ctx context.Context, q url.Values) (any, error) {
		lq := logQuery(q)
		if v := q.Get("since"); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, fmt.Errorf("since %q: want RFC 3339 time: %w", v, err)
			}
			lq.Since = t
		}
		return s.b.Logs(ctx, lq)
	}))
	m.HandleFunc("GET /api/permissions", s.getJSON(func(ctx context.Context, _ url.Values) (any, error) { return s.b.Permissions(ctx) }))
	m.HandleFunc("POST /api/pairs/{action}", s.pairAction)
	m.HandleFunc("POST /api/send", s.send)
	m.HandleFunc("POST /api/decide", s.decide)
	s.mux = m
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// The token travels in the first URL: never leak it in a Referer, never
	// let another site frame the page, and run only our own scripts.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("Cache-Control", "no-store")

	if !s.hosts[strings.ToLower(r.Host)] {
		s.log.Warn("dashboard: refused request with unexpected Host", "host", r.Host, "path", r.URL.Path)
		http.Error(w, "403 forbidden: unexpected Host header", http.StatusForbidden)
		return
	}
	if tok := r.URL.Query().Get("token"); tok != "" && r.Method == http.MethodGet {
		if !s.validToken(tok) {
			s.unauthorized(w, r)
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name: CookieName, Value: tok, Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode,
		})
		q := r.URL.Query()
		q.Del("token")
		to := r.URL.Path
		if len(q) > 0 {
			to += "?" + q.Encode()
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	if !s.authorized(r) {
		s.unauthorized(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !s.sameOrigin(r) {
		s.log.Warn("dashboard: refused cross-origin request", "origin", r.Header.Get("Origin"), "path", r.URL.Path)
		http.Error(w, "403 forbidden: cross-origin request", http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *server) validToken(tok string) bool {
	// Hashing first makes the comparison constant-time in the length too.
	sum := sha256.Sum256([]byte(tok))
	return s.hasToken && subtle.ConstantTimeCompare(sum[:], s.token[:]) == 1
}

func (s *server) authorized(r *http.Request) bool {
	if a := r.Header.Get("Authorization"); a != "" {
		if tok, ok := strings.CutPrefix(a, "Bearer "); ok && s.validToken(tok) {
			return true
		}
	}
	if c, err := r.Cookie(CookieName); err == nil && s.validToken(c.Value) {
		return true
	}
	return false
}

func (s *server) unauthorized(w http.ResponseWriter, r *http.Request) {
	s.log.Info("dashboard: refused request without a valid token", "path", r.URL.Path)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, "401 unauthorized: this switchboard dashboard needs its access link.\n"+
		"Run `switchboard dashboard` to open it (or print its URL).\n")
}

// sameOrigin accepts a request whose Origin is this page's, or one without
// Origin that carries a JSON body (a browser cannot send that cross-site
// without a preflight, which this server never answers).
func (s *server) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		return mt == "application/json"
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	b, err := staticFS.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

func (s *server) getJSON(f func(context.Context, url.Values) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
		defer cancel()
		v, err := f(ctx, r.URL.Query())
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func intParam(q url.Values, name string, def int) int {
	if n, err := strconv.Atoi(q.Get(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func logQuery(q url.Values) LogQuery {
	lq := LogQuery{Team: q.Get("team"), Limit: intParam(q, "limit", logsLimit), Level: slog.LevelDebug}
	if v := q.Get("level"); v != "" {
		var l slog.Level
		if l.UnmarshalText([]byte(v)) == nil {
			lq.Level = l
		}
	}
	return lq
}

// decodeBody reads a small JSON body into v.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	return nil
}

// act runs one action with the request's context, logs it with its outcome,
// and answers {"ok":true,...} or the error.
func (s *server) act(w http.ResponseWriter, r *http.Request, name string, attrs []any, f func(context.Context) (map[string]any, error)) {
	res, err := f(r.Context())
	if err != nil {
		s.log.Warn("dashboard action failed", append([]any{"action", name, "err", err}, attrs...)...)
		writeJSON(w, http.StatusBadGateway, map[string]any{"ok": false, "error": err.Error()})
		return
	}
	s.log.Info("dashboard action", append([]any{"action", name}, attrs...)...)
	if res == nil {
		res = map[string]any{}
	}
	res["ok"] = true
	writeJSON(w, http.StatusOK, res)
}

func (s *server) pairAction(w http.ResponseWriter, r *http.Request) {
	var p struct{ From, To string }
	if err := decodeBody(r, &p); err != nil || p.From == "" || p.To == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "want {\"from\":..., \"to\":...}"})
		return
	}
	action := r.PathValue("action")
	var f func(context.Context, string, string) error
	switch action {
	case "wake":
		f = s.b.Wake
	case "sleep":
		f = s.b.Sleep
	case "cancel":
		f = s.b.Cancel
	case "reboot":
		f = s.b.Reboot
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error": "unknown action " + action})
		return
	}
	s.act(w, r, action, []any{"from", p.From, "to", p.To}, func(ctx context.Context) (map[string]any, error) {
		return nil, f(ctx, p.From, p.To)
	})
}

func (s *server) send(w http.ResponseWriter, r *http.Request) {
	var p struct{ To, Text string }
	if err := decodeBody(r, &p); err != nil || p.To == "" || strings.TrimSpace(p.Text) == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "want {\"to\":..., \"text\":...}"})
		return
	}
	s.act(w, r, "send", []any{"to", p.To, "chars", len(p.Text)}, func(ctx context.Context) (map[string]any, error) {
		id, err := s.b.Send(ctx, p.To, p.Text)
		return map[string]any{"id": id}, err
	})
}

func (s *server) decide(w http.ResponseWriter, r *http.Request) {
	var p struct {
		ID     string `json:"id"`
		Allow  bool   `json:"allow"`
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &p); err != nil || p.ID == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "want {\"id\":..., \"allow\":true|false}"})
		return
	}
	if !p.Allow && p.Reason == "" {
		p.Reason = "denied by the operator from the dashboard"
	}
	s.act(w, r, "decide", []any{"permission", p.ID, "allow", p.Allow}, func(ctx context.Context) (map[string]any, error) {
		return nil, s.b.Decide(ctx, p.ID, p.Allow, p.Reason)
	})
}

// view is what one open page looks at: the filters of its Messages, Session
// and Logs views travel as /events query parameters, and the page reconnects
// when they change.
type view struct {
	msgs MessageFilter
	from string
	to   string
	logs LogQuery
}

func parseView(q url.Values) view {
	v := view{
		msgs: MessageFilter{Team: q.Get("mteam"), Status: q.Get("mstatus"), Limit: messagesLimit},
		from: q.Get("sfrom"),
		to:   q.Get("sto"),
	}
	lq := url.Values{"team": {q.Get("lteam")}, "level": {q.Get("llevel")}}
	v.logs = logQuery(lq)
	return v
}

// section is one view's data or the error that kept it from being read.
type section struct {
	Data  any    `json:"data"`
	Error string `json:"error,omitempty"`
}

func (s *server) snapshot(ctx context.Context, v view) map[string][]byte {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	out := map[string][]byte{}
	put := func(name string, data any, err error) {
		sec := section{Data: data}
		if err != nil {
			sec.Error = err.Error()
		}
		b, mErr := json.Marshal(sec)
		if mErr != nil {
			b, _ = json.Marshal(section{Error: mErr.Error()})
		}
		out[name] = b
	}
	teams, err := s.b.Teams(ctx)
	put("teams", teams, err)
	msgs, err := s.b.Messages(ctx, v.msgs)
	put("messages", msgs, err)
	if v.from != "" && v.to != "" {
		ses, err := s.b.Session(ctx, v.from, v.to, sessionLimit)
		put("session", map[string]any{"from": v.from, "to": v.to, "entries": ses}, err)
	} else {
		put("session", nil, nil)
	}
	logs, err := s.b.Logs(ctx, v.logs)
	put("logs", logs, err)
	perms, err := s.b.Permissions(ctx)
	put("permissions", perms, err)
	return out
}

// events streams "snapshot" events: the first carries every view, later ones
// only the views whose JSON changed, each with the server's clock so the
// page's countdowns do not depend on the browser's.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	ctx := r.Context()
	v := parseView(r.URL.Query())
	sig, stop := s.b.Changes()
	defer stop()

	last := map[string][]byte{}
	send := func() error {
		snap := s.snapshot(ctx, v)
		payload := map[string]json.RawMessage{}
		for k, b := range snap {
			if string(last[k]) != string(b) {
				payload[k] = b
				last[k] = b
			}
		}
		if len(payload) == 0 {
			return nil
		}
		now, _ := json.Marshal(s.now())
		payload["now"] = now
		b, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send(); err != nil {
		return
	}
	lastSend := time.Now()
	poll := time.NewTicker(s.poll)
	defer poll.Stop()
	hb := time.NewTicker(heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hb.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			continue
		case <-sig:
		case <-poll.C:
		}
		if wait := minSnapshotGap - time.Since(lastSend); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		select { // signals that arrived while waiting are covered by this snapshot
		case <-sig:
		default:
		}
		if err := send(); err != nil {
			if !errors.Is(err, context.Canceled) {
				s.log.Debug("dashboard: event stream ended", "err", err)
			}
			return
		}
		lastSend = time.Now()
	}
}
