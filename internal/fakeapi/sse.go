package fakeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Message is an assistant message in the API's wire shape, as a
// non-streaming response body or inside message_start.
type Message struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"` // "message"
	Role         string         `json:"role"` // "assistant"
	Model        string         `json:"model"`
	Content      []ContentBlock `json:"content"`
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        Usage          `json:"usage"`
}

// ContentBlock is a text or tool_use block of a Message.
type ContentBlock struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text,omitempty"`
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

// Usage is the token accounting of a Message.
type Usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// response builds the complete message a Reply stands for.
func (s *Server) response(model string, r Reply) Message {
	stop := "end_turn"
	m := Message{
		ID:    s.newID("msg"),
		Type:  "message",
		Role:  "assistant",
		Model: model,
		Usage: Usage{InputTokens: 10},
	}
	if r.Text != "" || r.Tool == nil {
		text := r.Text
		m.Content = append(m.Content, ContentBlock{Type: "text", Text: &text})
		m.Usage.OutputTokens += tokens(text)
	}
	if r.Tool != nil {
		stop = "tool_use"
		input := r.Tool.Input
		if len(input) == 0 {
			input = json.RawMessage("{}")
		}
		m.Content = append(m.Content, ContentBlock{Type: "tool_use", ID: s.newID("toolu"), Name: r.Tool.Name, Input: input})
		m.Usage.OutputTokens += tokens(string(input))
	}
	m.StopReason = &stop
	return m
}

// tokens is a stand-in token count: one per word, at least one.
func tokens(s string) int {
	return len(strings.Fields(s)) + 1
}

// sseWriter writes server-sent events and flushes each one, so the client
// sees them as they are produced.
type sseWriter struct {
	w   http.ResponseWriter
	f   http.Flusher
	err error
}

func (e *sseWriter) event(name string, data any) {
	if e.err != nil {
		return
	}
	b, err := json.Marshal(data)
	if err != nil {
		e.err = err
		return
	}
	if _, e.err = fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", name, b); e.err == nil && e.f != nil {
		e.f.Flush()
	}
}

// streamMessage sends m as the API streams it: message_start (content empty,
// stop_reason null), then per block content_block_start, deltas and
// content_block_stop, then message_delta with the stop reason and output
// usage, then message_stop. The delay falls between message_start and the
// first block, so a client sees the request accepted and then waits, as it
// does while a real model thinks.
func streamMessage(ctx context.Context, w http.ResponseWriter, m Message, delay time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	e := &sseWriter{w: w, f: f}

	start := m
	start.Content = []ContentBlock{}
	start.StopReason = nil
	start.Usage.OutputTokens = 1
	e.event("message_start", map[string]any{"type": "message_start", "message": start})
	e.event("ping", map[string]string{"type": "ping"})
	if !wait(ctx, delay) {
		return
	}

	for i, b := range m.Content {
		switch b.Type {
		case "text":
			empty := ""
			e.event("content_block_start", map[string]any{
				"type": "content_block_start", "index": i,
				"content_block": ContentBlock{Type: "text", Text: &empty},
			})
			for _, chunk := range chunks(*b.Text, 16) {
				e.event("content_block_delta", map[string]any{
					"type": "content_block_delta", "index": i,
					"delta": map[string]string{"type": "text_delta", "text": chunk},
				})
			}
		case "tool_use":
			e.event("content_block_start", map[string]any{
				"type": "content_block_start", "index": i,
				"content_block": ContentBlock{Type: "tool_use", ID: b.ID, Name: b.Name, Input: json.RawMessage("{}")},
			})
			for _, chunk := range chunks(string(b.Input), 16) {
				e.event("content_block_delta", map[string]any{
					"type": "content_block_delta", "index": i,
					"delta": map[string]string{"type": "input_json_delta", "partial_json": chunk},
				})
			}
		}
		e.event("content_block_stop", map[string]any{"type": "content_block_stop", "index": i})
	}
	e.event("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": m.StopReason, "stop_sequence": nil},
		"usage": map[string]int{"output_tokens": m.Usage.OutputTokens},
	})
	e.event("message_stop", map[string]string{"type": "message_stop"})
}

// chunks splits s into pieces of at most n runes, as a model streams text
// in several deltas; an empty s gives no chunks.
func chunks(s string, n int) []string {
	var out []string
	r := []rune(s)
	for len(r) > n {
		out = append(out, string(r[:n]))
		r = r[n:]
	}
	if len(r) > 0 {
		out = append(out, string(r))
	}
	return out
}
