// Package fakeapi is a fake Anthropic Messages API for tests: the real
// Claude Code binary runs against it over loopback and gets scripted,
// deterministic answers.
//
// The default "model" (DefaultReply) echoes the person's last message and
// the working directory Claude Code put in its system prompt, and obeys
// directives written on their own lines of that message:
//
//	SLEEP 3s                      stream message_start, wait, then answer
//	FAIL 500                      answer with that HTTP status and an API error body
//	TOOL Bash {"command":"pwd"}   answer with a tool_use block; the follow-up
//	                              request carrying the tool_result is answered
//	                              "TOOL RESULT: <result text>"
//	REPLY some text               answer exactly "some text"
//
// FAIL applies to every retry of the turn, as a persistently failing API
// would. Claude Code 2.1.332 retries 5xx and 529 with backoff (10 retries,
// about three minutes; set CLAUDE_CODE_MAX_RETRIES=0 in tests that expect a
// quick failure) and re-sends a 400 about six times within a fraction of a
// second, without backoff. See internal/claudetest/PROTOCOL.md.
//
// Requests Claude Code makes on the side (title generation, quota probes) are
// answered minimally and never run the script, so a SLEEP or FAIL applies only
// to the conversation turn itself.
package fakeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Request is one request the fake received, as the log records it.
type Request struct {
	Time   time.Time
	Method string
	Path   string // without the query string
	Query  string // raw query, e.g. "beta=true"

	// The fields below are set for POST /v1/messages only.
	Model     string
	MaxTokens int
	Stream    bool
	System    string   // system prompt text, blocks joined by "\n"
	UserText  string   // what the person last typed, system reminders removed
	CWD       string   // working directory named in the system prompt
	Tools     []string // names of the tools offered to the model
	// ToolResult is the text of the tool_result blocks in the last user
	// message; HasToolResult says whether that message carried any and no
	// new prompt.
	ToolResult    string
	HasToolResult bool
	// Side marks a request Claude Code makes besides the conversation turn
	// (title or topic generation, quota probe); it is answered minimally.
	Side bool

	Status int             // HTTP status the fake answers with
	Body   json.RawMessage // the raw request body, for debugging
}

// Reply is what the scripted model answers to one conversation request.
type Reply struct {
	// Status, when it is not 0 or 200, makes the fake answer with that HTTP
	// status and an Anthropic error body instead of a message.
	Status int
	// Delay is how long to wait after message_start before the content
	// (streaming) or before answering at all (non-streaming). The wait ends
	// early when the client goes away.
	Delay time.Duration
	// Text is the assistant's text. With Tool set it precedes the tool call
	// and may be empty.
	Text string
	// Tool, when set, makes the answer a tool_use block with stop_reason
	// "tool_use".
	Tool *ToolUse
}

// ToolUse is a tool call the scripted model makes.
type ToolUse struct {
	Name  string
	Input json.RawMessage // a JSON object; nil means {}
}

// Server is a running fake Messages API on 127.0.0.1.
type Server struct {
	// URL is the base URL to give Claude Code as ANTHROPIC_BASE_URL.
	URL string

	srv *http.Server
	log *slog.Logger
	wg  sync.WaitGroup

	active atomic.Int32 // requests being answered

	mu     sync.Mutex
	reqs   []Request
	script func(Request) Reply
	nextID int
}

// New starts a fake API for a test and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatalf("start fake Anthropic API: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a fake API outside a test (benchmarks, tools); the caller
// must Close it.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	s := &Server{
		URL: "http://" + ln.Addr().String(),
		log: slog.Default().With("component", "fakeapi"),
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	return s, nil
}

// Close stops the server, cutting any response still streaming.
func (s *Server) Close() {
	_ = s.srv.Close()
	s.wg.Wait()
}

// Env returns the environment that points Claude Code at this fake and
// keeps it from calling anything else (telemetry, error reports, update
// checks, feature flags).
func (s *Server) Env() []string {
	return []string{
		"ANTHROPIC_BASE_URL=" + s.URL,
		"ANTHROPIC_API_KEY=sk-ant-fake-key",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"DISABLE_TELEMETRY=1",
		"DISABLE_ERROR_REPORTING=1",
		"DISABLE_AUTOUPDATER=1",
	}
}

// Script replaces the model for the conversation requests that follow; side
// requests are still answered minimally. DefaultReply is the model in use
// until Script is called; a script may fall back to it. The script runs on
// the server's goroutines, one call per request, possibly concurrently.
func (s *Server) Script(f func(Request) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = f
}

// Requests returns a copy of the log of every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Count returns how many requests were received so far.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// Active returns how many requests are being answered right now, such as a
// SLEEP turn still streaming.
func (s *Server) Active() int {
	return int(s.active.Load())
}

// Turns returns the logged conversation requests to /v1/messages, side
// requests left out.
func (s *Server) Turns() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Path == "/v1/messages" && !r.Side {
			out = append(out, r)
		}
	}
	return out
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
}

func (s *Server) newID(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return fmt.Sprintf("%s_fake%020d", prefix, s.nextID)
}

// ServeHTTP routes the endpoints Claude Code uses. Each request is logged
// as soon as its answer is decided, before a slow answer is streamed, so a
// test can see that a turn reached the API while it is still running.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	defer s.active.Add(-1)
	req := Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
	w.Header().Set("request-id", s.newID("req"))
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		req.Status = http.StatusBadRequest
		s.record(req)
		writeError(w, req.Status, "read body: "+err.Error())
		return
	}
	if len(body) > 0 && json.Valid(body) {
		req.Body = body
	}

	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages":
		s.messages(w, r, body, req)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages/count_tokens":
		req.Status = http.StatusOK
		s.record(req)
		// Roughly four bytes a token, as good a guess as any for a fake.
		writeJSON(w, req.Status, map[string]int{"input_tokens": len(body)/4 + 1})
	case (r.Method == http.MethodHead || r.Method == http.MethodGet) && (r.URL.Path == "/" || r.URL.Path == "/api/hello"):
		// Connectivity probes; Claude Code sends HEAD /api/hello when
		// nonessential traffic is not disabled.
		req.Status = http.StatusOK
		s.record(req)
		w.WriteHeader(req.Status)
	default:
		req.Status = http.StatusNotFound
		s.record(req)
		s.log.Warn("unknown endpoint", "method", r.Method, "path", r.URL.Path)
		writeError(w, req.Status, fmt.Sprintf("fakeapi: no endpoint %s %s", r.Method, r.URL.Path))
	}
}

// messages answers POST /v1/messages.
func (s *Server) messages(w http.ResponseWriter, r *http.Request, body []byte, req Request) {
	var mr messagesRequest
	if err := json.Unmarshal(body, &mr); err != nil {
		req.Status = http.StatusBadRequest
		s.record(req)
		writeError(w, req.Status, "invalid JSON body: "+err.Error())
		return
	}
	parse(mr, &req)

	// Side requests get a minimal answer and never run the script, so a
	// SLEEP or FAIL in the person's text applies to the turn only.
	reply := Reply{Text: "ok"}
	if !req.Side {
		s.mu.Lock()
		script := s.script
		s.mu.Unlock()
		if script == nil {
			script = DefaultReply
		}
		reply = script(req)
	}

	if reply.Status != 0 && reply.Status != http.StatusOK {
		req.Status = reply.Status
		s.record(req)
		writeError(w, reply.Status, fmt.Sprintf("fakeapi: scripted failure %d", reply.Status))
		return
	}
	req.Status = http.StatusOK
	s.record(req)
	out := s.response(mr.Model, reply)
	if mr.Stream {
		streamMessage(r.Context(), w, out, reply.Delay)
		return
	}
	if wait(r.Context(), reply.Delay) {
		writeJSON(w, http.StatusOK, out)
	}
}

// parse fills the log fields of req from a Messages request.
func parse(mr messagesRequest, req *Request) {
	req.Model = mr.Model
	req.MaxTokens = mr.MaxTokens
	req.Stream = mr.Stream
	req.System = blockText(mr.System)
	// Claude Code 2.1.332 states the working directory in a role "system"
	// message after the first user message; older versions put it in the
	// system prompt. Look in both, system prompt first.
	req.CWD = findCWD(req.System)
	for _, m := range mr.Messages {
		if req.CWD != "" {
			break
		}
		req.CWD = findCWD(blockText(m.Content))
	}
	for _, t := range mr.Tools {
		req.Tools = append(req.Tools, t.Name)
	}
	// The newest user message decides between a new question and a tool
	// result; messages of role "system" may follow it and are skipped.
	lastUser := true
	for i := len(mr.Messages) - 1; i >= 0; i-- {
		m := mr.Messages[i]
		if m.Role != "user" {
			continue
		}
		if lastUser {
			// After an interrupt during a permission prompt Claude Code
			// merges the rejected tool_result with the next prompt into one
			// user message: that is a new question, not a tool result.
			if humanText(m) == "" {
				req.ToolResult, req.HasToolResult = lastToolResult(m)
			}
			lastUser = false
		}
		if t := humanText(m); t != "" {
			req.UserText = t
			break
		}
	}
	req.Side = isSide(mr, req.CWD)
}

// isSide tells a side request from a conversation turn. Every turn of the
// conversation states the working directory (and offers tools unless the
// caller disabled them all); title or topic generation does neither, and a
// quota probe asks for a single token.
func isSide(mr messagesRequest, cwd string) bool {
	return mr.MaxTokens == 1 || (len(mr.Tools) == 0 && cwd == "")
}

// wait sleeps for d unless ctx ends first; it reports whether the full time
// passed.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorTypes maps HTTP statuses to the error types the real API sends.
var errorTypes = map[int]string{
	400: "invalid_request_error",
	401: "authentication_error",
	403: "permission_error",
	404: "not_found_error",
	413: "request_too_large",
	429: "rate_limit_error",
	500: "api_error",
	504: "timeout_error",
	529: "overloaded_error",
}

// writeError sends an error in the API's shape:
// {"type":"error","error":{"type":"api_error","message":"..."}}.
func writeError(w http.ResponseWriter, status int, msg string) {
	typ, ok := errorTypes[status]
	if !ok {
		typ = "api_error"
		if status < 500 {
			typ = "invalid_request_error"
		}
	}
	if status == http.StatusTooManyRequests || status == 529 {
		w.Header().Set("retry-after", "1")
	}
	writeJSON(w, status, map[string]any{
		"type":  "error",
		"error": map[string]string{"type": typ, "message": msg},
	})
}

// DefaultReply is the scripted model: it obeys the directives in the
// person's text (see the package doc) and otherwise answers
// "ECHO: <text> | CWD: <working directory>".
func DefaultReply(req Request) Reply {
	if req.HasToolResult {
		return Reply{Text: ToolResultPrefix + req.ToolResult}
	}
	reply := Reply{Text: fmt.Sprintf("ECHO: %s | CWD: %s", req.UserText, req.CWD)}
	for _, line := range strings.Split(req.UserText, "\n") {
		verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		arg = strings.TrimSpace(arg)
		switch verb {
		case "SLEEP":
			if d, err := time.ParseDuration(arg); err == nil {
				reply.Delay = d
			}
		case "FAIL":
			var code int
			if _, err := fmt.Sscanf(arg, "%d", &code); err == nil {
				reply.Status = code
			}
		case "REPLY":
			reply.Text = arg
		case "TOOL":
			name, input, _ := strings.Cut(arg, " ")
			input = strings.TrimSpace(input)
			if input == "" {
				input = "{}"
			}
			if name != "" && json.Valid([]byte(input)) {
				reply.Tool = &ToolUse{Name: name, Input: json.RawMessage(input)}
				reply.Text = ""
			}
		}
	}
	return reply
}
