package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// The Claude side of tool permissions: every Claude process runs with
// --permission-prompt-tool stdio, so a tool call its own rules do not allow
// arrives on stdout as a can_use_tool control_request and waits, without
// limit, for a control_response on stdin (internal/claudetest/PROTOCOL.md,
// "Permission prompts over stdio"). The same pipe serves local and remote
// teams. Who decides is permission.go's business.

// toolPrompt is one can_use_tool control request.
type toolPrompt struct {
	RequestID      string          `json:"-"`
	Subtype        string          `json:"subtype"`
	ToolName       string          `json:"tool_name"`
	Input          json.RawMessage `json:"input"`
	Description    string          `json:"description"`
	DecisionReason string          `json:"decision_reason"`
	BlockedPath    string          `json:"blocked_path"`
	ToolUseID      string          `json:"tool_use_id"`
}

// promptAnswer is the decision sent back: allow runs the tool with its
// input unchanged; a denial's Message is the tool result the model reads.
type promptAnswer struct {
	Allow   bool
	Message string
}

// errPromptCancelled is the cause when Claude withdraws a prompt
// (control_cancel_request, sent when the turn is interrupted).
var errPromptCancelled = errors.New("claude withdrew the request (the turn was interrupted)")

// promptSet tracks a process's prompts still waiting for a decision, so a
// withdrawal or the process's exit ends the wait.
type promptSet struct {
	mu     sync.Mutex
	m      map[string]context.CancelCauseFunc
	closed error
}

// add registers request id; the context ends when it is withdrawn or the
// process exits.
func (s *promptSet) add(id string) context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed != nil {
		cancel(s.closed)
		return ctx
	}
	if s.m == nil {
		s.m = make(map[string]context.CancelCauseFunc)
	}
	s.m[id] = cancel
	return ctx
}

func (s *promptSet) done(id string) { s.cancel(id, nil) }

func (s *promptSet) cancel(id string, cause error) {
	s.mu.Lock()
	cancel := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

func (s *promptSet) cancelAll(cause error) {
	s.mu.Lock()
	m := s.m
	s.m, s.closed = nil, cause
	s.mu.Unlock()
	for _, cancel := range m {
		cancel(cause)
	}
}

// initialize sends the optional initialize control request; its answer
// (one ~18 KB line) is dropped by read.
func (c *claude) initialize() error { return c.controlRequest("initialize") }

// control handles a control request or withdrawal read during a turn. The
// decision runs in its own goroutine: the turn's reader must go on reading,
// since the withdrawal of a pending prompt comes on the same stream.
func (c *claude) control(e event) {
	if e.Type == "control_cancel_request" {
		c.prompts.cancel(e.RequestID, errPromptCancelled)
		return
	}
	var req toolPrompt
	if err := json.Unmarshal(e.Request, &req); err != nil || req.Subtype != "can_use_tool" {
		// A request the broker does not serve (hook callbacks, MCP
		// messages): say so at once rather than leave Claude waiting.
		_ = c.writeLine(map[string]any{"type": "control_response", "response": map[string]any{
			"subtype": "error", "request_id": e.RequestID,
			"error": fmt.Sprintf("switchboard does not handle control request %q", req.Subtype),
		}})
		return
	}
	req.RequestID = e.RequestID
	ctx := c.prompts.add(e.RequestID)
	go func() {
		ans := promptAnswer{Message: "switchboard has no one to decide tool permissions for this process"}
		if c.permit != nil {
			ans = c.permit(ctx, &req)
		}
		if ctx.Err() != nil {
			return // withdrawn or exited: nobody waits for the answer
		}
		c.prompts.done(e.RequestID)
		if err := c.answerPrompt(&req, ans); err != nil {
			c.prompts.cancelAll(err)
		}
	}()
}

// answerPrompt writes the decision in the shape Claude Code expects.
func (c *claude) answerPrompt(req *toolPrompt, ans promptAnswer) error {
	decision := map[string]any{"behavior": "deny", "message": ans.Message}
	if ans.Allow {
		input := req.Input
		if len(input) == 0 || string(input) == "null" {
			input = json.RawMessage("{}")
		}
		// updatedInput must be the whole input; the asked one runs unchanged.
		decision = map[string]any{"behavior": "allow", "updatedInput": input}
	}
	return c.writeLine(map[string]any{"type": "control_response", "response": map[string]any{
		"subtype": "success", "request_id": req.RequestID, "response": decision,
	}})
}
