package fakeapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

// turnBody builds a request shaped like Claude Code 2.1.332's: a reminder
// block before the person's text, the environment in a role "system"
// message after it, and tools offered.
func turnBody(stream bool, text string, extra ...map[string]any) map[string]any {
	msgs := []map[string]any{
		{"role": "user", "content": []map[string]any{
			{"type": "text", "text": "<system-reminder>\nAttribution...\n</system-reminder>\n"},
			{"type": "text", "text": text},
		}},
		{"role": "system", "content": []map[string]any{
			{"type": "text", "text": "# Environment\n - Primary working directory: /srv/my app\n - Platform: linux"},
		}},
	}
	msgs = append(msgs, extra...)
	return map[string]any{
		"model":      "claude-opus-5-5",
		"max_tokens": 128000,
		"stream":     stream,
		"system":     []map[string]any{{"type": "text", "text": "You are a Claude agent."}},
		"tools":      []map[string]any{{"name": "Bash"}, {"name": "Read"}},
		"messages":   msgs,
	}
}

func post(t *testing.T, ctx context.Context, url string, body any) *http.Response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type sseEvent struct {
	name string
	data map[string]any
}

// readSSE parses a whole event stream, checking that every event's name
// matches the type in its data, as the real API sends them.
func readSSE(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	var name string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var d map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d); err != nil {
				t.Fatalf("event %s: bad data %q: %v", name, line, err)
			}
			if d["type"] != name {
				t.Errorf("event %q carries data of type %v", name, d["type"])
			}
			out = append(out, sseEvent{name, d})
		case line == "":
		default:
			t.Errorf("unexpected SSE line %q", line)
		}
	}
	return out
}

// names lists the event names, a run of three or more deltas written as
// "content_block_delta content_block_delta+".
func names(evs []sseEvent) string {
	var n []string
	for i, e := range evs {
		if i >= 2 && e.name == "content_block_delta" && evs[i-1].name == e.name && evs[i-2].name == e.name {
			n[len(n)-1] = e.name + "+"
			continue
		}
		n = append(n, e.name)
	}
	return strings.Join(n, " ")
}

// assemble rebuilds the content blocks from the deltas, as a client does.
func assemble(t *testing.T, evs []sseEvent) (text, toolName, toolInput, stop string) {
	t.Helper()
	for _, e := range evs {
		switch e.name {
		case "content_block_start":
			if cb := e.data["content_block"].(map[string]any); cb["type"] == "tool_use" {
				toolName = cb["name"].(string)
			}
		case "content_block_delta":
			d := e.data["delta"].(map[string]any)
			switch d["type"] {
			case "text_delta":
				text += d["text"].(string)
			case "input_json_delta":
				toolInput += d["partial_json"].(string)
			}
		case "message_delta":
			stop, _ = e.data["delta"].(map[string]any)["stop_reason"].(string)
		}
	}
	return text, toolName, toolInput, stop
}

func TestStreamingEcho(t *testing.T) {
	s := fakeapi.New(t)
	resp := post(t, context.Background(), s.URL+"/v1/messages?beta=true", turnBody(true, "hello, a long enough text to take several deltas"))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type = %q", ct)
	}
	evs := readSSE(t, resp.Body)
	// Text arrives in several deltas, as from a real model.
	const wantSeq = "message_start ping content_block_start content_block_delta content_block_delta+ content_block_stop message_delta message_stop"
	if got := names(evs); got != wantSeq {
		t.Errorf("events:\n got %s\nwant %s", got, wantSeq)
	}
	start := evs[0].data["message"].(map[string]any)
	if start["role"] != "assistant" || start["stop_reason"] != nil || len(start["content"].([]any)) != 0 {
		t.Errorf("message_start message = %v", start)
	}
	text, _, _, stop := assemble(t, evs)
	if want := "ECHO: hello, a long enough text to take several deltas | CWD: /srv/my app"; text != want {
		t.Errorf("text = %q, want %q", text, want)
	}
	if stop != "end_turn" {
		t.Errorf("stop_reason = %q", stop)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/v1/messages" || reqs[0].Query != "beta=true" || reqs[0].Side {
		t.Fatalf("log = %+v", reqs)
	}
	if r := reqs[0]; r.UserText != "hello, a long enough text to take several deltas" || r.CWD != "/srv/my app" || r.Model != "claude-opus-5-5" || !r.Stream {
		t.Errorf("logged request = %+v", r)
	}
}

func TestNonStreaming(t *testing.T) {
	s := fakeapi.New(t)
	resp := post(t, context.Background(), s.URL+"/v1/messages", turnBody(false, "REPLY exactly this"))
	var m fakeapi.Message
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Type != "message" || m.Role != "assistant" || len(m.Content) != 1 || *m.Content[0].Text != "exactly this" || *m.StopReason != "end_turn" {
		t.Errorf("message = %+v", m)
	}
}

func TestToolRoundTrip(t *testing.T) {
	s := fakeapi.New(t)
	resp := post(t, context.Background(), s.URL+"/v1/messages", turnBody(true, `TOOL Bash {"command":"echo hi"}`))
	_, name, input, stop := assemble(t, readSSE(t, resp.Body))
	if name != "Bash" || input != `{"command":"echo hi"}` || stop != "tool_use" {
		t.Errorf("tool call = %s %s, stop %s", name, input, stop)
	}

	result := map[string]any{"role": "user", "content": []map[string]any{
		{"type": "tool_result", "tool_use_id": "toolu_1", "content": "hi"},
	}}
	resp = post(t, context.Background(), s.URL+"/v1/messages", turnBody(true, `TOOL Bash {"command":"echo hi"}`, result))
	if text, _, _, _ := assemble(t, readSSE(t, resp.Body)); text != "TOOL RESULT: hi" {
		t.Errorf("answer to tool result = %q", text)
	}
}

func TestFailDirective(t *testing.T) {
	for _, code := range []int{400, 429, 500, 529} {
		s := fakeapi.New(t)
		resp := post(t, context.Background(), s.URL+"/v1/messages", turnBody(true, "x\nFAIL "+strconv.Itoa(code)))
		if resp.StatusCode != code {
			t.Errorf("FAIL %d: status %d", code, resp.StatusCode)
		}
		var body struct {
			Type  string `json:"type"`
			Error struct{ Type, Message string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Type != "error" || body.Error.Type == "" || body.Error.Message == "" {
			t.Errorf("FAIL %d: body %+v, %v", code, body, err)
		}
	}
}

func TestSleepEndsWhenClientGoesAway(t *testing.T) {
	s := fakeapi.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	resp := post(t, ctx, s.URL+"/v1/messages", turnBody(true, "SLEEP 1h"))
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "event: message_start\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if n := s.Active(); n != 1 {
		t.Errorf("Active() = %d while a SLEEP turn streams, want 1", n)
	}
	cancel()
	// The handler must give up the hour's wait once the client is gone.
	deadline := time.Now().Add(10 * time.Second)
	for s.Active() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("SLEEP handler still running after the client went away")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSideRequestsSkipScript(t *testing.T) {
	s := fakeapi.New(t)
	var scripted atomic.Int32
	s.Script(func(fakeapi.Request) fakeapi.Reply { scripted.Add(1); return fakeapi.Reply{Text: "scripted"} })
	title := map[string]any{
		"model": "claude-haiku-4-5", "max_tokens": 512, "stream": false,
		"system":   "Generate a short title for this conversation.",
		"messages": []map[string]any{{"role": "user", "content": "SLEEP 1h\nFAIL 500"}},
	}
	resp := post(t, context.Background(), s.URL+"/v1/messages", title)
	if resp.StatusCode != 200 {
		t.Errorf("side request status %d", resp.StatusCode)
	}
	quota := turnBody(false, "quota")
	quota["max_tokens"] = 1
	post(t, context.Background(), s.URL+"/v1/messages", quota)
	post(t, context.Background(), s.URL+"/v1/messages", turnBody(false, "real turn"))

	if n := scripted.Load(); n != 1 {
		t.Errorf("script ran %d times, want 1 (the real turn only)", n)
	}
	var side []bool
	for _, r := range s.Requests() {
		side = append(side, r.Side)
	}
	if len(side) != 3 || !side[0] || !side[1] || side[2] {
		t.Errorf("Side flags = %v, want [true true false]", side)
	}
	if turns := s.Turns(); len(turns) != 1 || turns[0].UserText != "real turn" {
		t.Errorf("Turns() = %+v", turns)
	}
}

func TestOtherEndpoints(t *testing.T) {
	s := fakeapi.New(t)
	resp := post(t, context.Background(), s.URL+"/v1/messages/count_tokens", turnBody(false, "count me"))
	var ct struct {
		InputTokens int `json:"input_tokens"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ct); err != nil || ct.InputTokens <= 0 {
		t.Errorf("count_tokens = %+v, %v", ct, err)
	}
	head, err := http.Head(s.URL + "/api/hello")
	if err != nil || head.StatusCode != 200 {
		t.Errorf("HEAD /api/hello = %v, %v", head, err)
	}
	resp = post(t, context.Background(), s.URL+"/v1/nothing", map[string]any{})
	if resp.StatusCode != 404 {
		t.Errorf("unknown path status %d", resp.StatusCode)
	}
	last := s.Requests()[s.Count()-1]
	if last.Path != "/v1/nothing" || last.Status != 404 {
		t.Errorf("unknown path logged as %+v", last)
	}
}

func TestDefaultReply(t *testing.T) {
	tests := []struct {
		name string
		req  fakeapi.Request
		want fakeapi.Reply
	}{
		{"echo", fakeapi.Request{UserText: "hi", CWD: "/w"}, fakeapi.Reply{Text: "ECHO: hi | CWD: /w"}},
		{"reply", fakeapi.Request{UserText: "a\nREPLY  just this "}, fakeapi.Reply{Text: "just this"}},
		{"sleep", fakeapi.Request{UserText: "SLEEP 2s\nREPLY z"}, fakeapi.Reply{Text: "z", Delay: 2 * time.Second}},
		{"fail", fakeapi.Request{UserText: "FAIL 529"}, fakeapi.Reply{Status: 529, Text: "ECHO: FAIL 529 | CWD: "}},
		{"tool", fakeapi.Request{UserText: `TOOL Read {"file_path":"/x"}`},
			fakeapi.Reply{Tool: &fakeapi.ToolUse{Name: "Read", Input: json.RawMessage(`{"file_path":"/x"}`)}}},
		{"tool result wins", fakeapi.Request{UserText: "TOOL Bash {}", HasToolResult: true, ToolResult: "out"},
			fakeapi.Reply{Text: "TOOL RESULT: out"}},
		{"directive mid-line is text", fakeapi.Request{UserText: "please SLEEP 5s"}, fakeapi.Reply{Text: "ECHO: please SLEEP 5s | CWD: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fakeapi.DefaultReply(tt.req)
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if !bytes.Equal(g, w) {
				t.Errorf("DefaultReply = %s, want %s", g, w)
			}
		})
	}
}

func TestUserTextParsing(t *testing.T) {
	text := func(s string) map[string]any { return map[string]any{"type": "text", "text": s} }
	tests := []struct {
		name    string
		content any
		want    string
	}{
		{"plain string", "just text", "just text"},
		{"reminder stripped", []any{text("<system-reminder>x</system-reminder>\nreal <b>text</b>")}, "real <b>text</b>"},
		// After an interrupt Claude Code merges the interrupted prompt, the
		// marker and the new prompt into one message.
		{"after interrupt", []any{text("slow\nSLEEP 30s\n"), text("[Request interrupted by user]\n"), text("next")}, "next"},
		{"reminder after text", []any{text("question"), text("<system-reminder>todo</system-reminder>")}, "question"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakeapi.New(t)
			body := turnBody(false, "")
			body["messages"] = []map[string]any{{"role": "user", "content": tt.content}}
			post(t, context.Background(), s.URL+"/v1/messages", body)
			if got := s.Requests()[0].UserText; got != tt.want {
				t.Errorf("UserText = %q, want %q", got, tt.want)
			}
		})
	}
}
