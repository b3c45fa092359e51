package fakeapi_test

import (
	"context"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

func TestToolDirective(t *testing.T) {
	got := fakeapi.Tool("Write", map[string]string{"file_path": "/a b/x.txt", "content": "hi"})
	if want := `TOOL Write {"content":"hi","file_path":"/a b/x.txt"}`; got != want {
		t.Errorf("Tool = %q, want %q", got, want)
	}
	reply := fakeapi.DefaultReply(fakeapi.Request{UserText: got})
	if reply.Tool == nil || reply.Tool.Name != "Write" || string(reply.Tool.Input) != `{"content":"hi","file_path":"/a b/x.txt"}` {
		t.Errorf("DefaultReply to Tool(...) = %+v", reply)
	}
}

func TestUseTool(t *testing.T) {
	s := fakeapi.New(t)
	s.Script(fakeapi.UseTool("Bash", map[string]string{"command": "touch x"}))
	resp := post(t, context.Background(), s.URL+"/v1/messages", turnBody(true, "anything at all"))
	if _, name, input, stop := assemble(t, readSSE(t, resp.Body)); name != "Bash" || input != `{"command":"touch x"}` || stop != "tool_use" {
		t.Errorf("tool call = %s %s, stop %s", name, input, stop)
	}
	denied := map[string]any{"role": "user", "content": []map[string]any{
		{"type": "tool_result", "tool_use_id": "toolu_1", "content": "team web said no", "is_error": true},
	}}
	resp = post(t, context.Background(), s.URL+"/v1/messages", turnBody(true, "anything at all", denied))
	if text, _, _, _ := assemble(t, readSSE(t, resp.Body)); text != fakeapi.ToolResultPrefix+"team web said no" {
		t.Errorf("answer to the tool result = %q", text)
	}
}

// After an interrupt during a permission prompt, Claude Code sends the
// rejected tool_result and the next prompt in one user message: a new
// question, not a tool result.
func TestToolResultMergedWithPrompt(t *testing.T) {
	s := fakeapi.New(t)
	body := turnBody(false, "")
	body["messages"] = []map[string]any{{"role": "user", "content": []map[string]any{
		{"type": "tool_result", "tool_use_id": "toolu_1", "content": "The user doesn't want to proceed", "is_error": true},
		{"type": "text", "text": "[Request interrupted by user for tool use]"},
		{"type": "text", "text": "REPLY next"},
	}}}
	post(t, context.Background(), s.URL+"/v1/messages", body)
	r := s.Requests()[0]
	if r.HasToolResult || r.UserText != "REPLY next" {
		t.Errorf("HasToolResult %v, UserText %q", r.HasToolResult, r.UserText)
	}
	if got := fakeapi.DefaultReply(r); got.Text != "next" {
		t.Errorf("reply = %q", got.Text)
	}
}
