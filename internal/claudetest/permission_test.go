package claudetest_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-mcp/switchboard/internal/claudetest"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

// turnTimeout bounds one turn of the real binary, start-up included.
const turnTimeout = 45 * time.Second

// permissionArgs start Claude Code so that it asks on stdout.
var permissionArgs = []string{"--permission-prompt-tool", "stdio"}

// toolResult is a user event carrying one tool_result block.
type toolResult struct {
	Content string
	IsError bool
	ID      string
}

func toolResultOf(ev claudetest.Event) (toolResult, bool) {
	if ev.Type != "user" {
		return toolResult{}, false
	}
	var u struct {
		Message struct {
			Content []struct {
				Type      string          `json:"type"`
				Content   json.RawMessage `json:"content"`
				IsError   bool            `json:"is_error"`
				ToolUseID string          `json:"tool_use_id"`
			} `json:"content"`
		} `json:"message"`
	}
	if json.Unmarshal(ev.Raw, &u) != nil {
		return toolResult{}, false
	}
	for _, c := range u.Message.Content {
		if c.Type != "tool_result" {
			continue
		}
		var s string
		if json.Unmarshal(c.Content, &s) != nil {
			s = string(c.Content)
		}
		return toolResult{Content: s, IsError: c.IsError, ID: c.ToolUseID}, true
	}
	return toolResult{}, false
}

// toolUseID returns the id of the tool_use block of an assistant event.
func toolUseID(ev claudetest.Event) string {
	var a struct {
		Message struct {
			Content []struct{ Type, ID string } `json:"content"`
		} `json:"message"`
	}
	json.Unmarshal(ev.Raw, &a)
	for _, c := range a.Message.Content {
		if c.Type == "tool_use" {
			return c.ID
		}
	}
	return ""
}

// denials returns the tool names of a result's permission_denials.
func denials(ev claudetest.Event) []string {
	var r struct {
		PermissionDenials []struct {
			ToolName string `json:"tool_name"`
		} `json:"permission_denials"`
	}
	json.Unmarshal(ev.Raw, &r)
	var out []string
	for _, d := range r.PermissionDenials {
		out = append(out, d.ToolName)
	}
	return out
}

func projectDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "team dir")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ask starts Claude Code with the permission prompt on stdio, sends the
// initialize request and a message asking for tool use, and returns the
// can_use_tool request and everything printed before it.
func ask(t *testing.T, api *fakeapi.Server, dir, tool string, input any, extra ...string) (*claudetest.Process, claudetest.Event, claudetest.PermissionRequest, []claudetest.Event) {
	t.Helper()
	p := claudetest.Start(t, claudetest.Env(t, api), dir, append(append([]string{"--session-id", uuid.NewString()}, permissionArgs...), extra...)...)
	p.Initialize("init-1")
	if ev, _ := p.Until("control_response", turnTimeout); !strings.Contains(string(ev.Raw), `"request_id":"init-1"`) {
		t.Fatalf("initialize answered with %.300s", ev.Raw)
	}
	p.Send(fakeapi.Tool(tool, input))
	ev, before := p.Until("control_request", turnTimeout)
	req, ok := ev.Permission()
	if !ok {
		t.Fatalf("control_request is not can_use_tool: %s", ev.Raw)
	}
	return p, ev, req, before
}

// TestPermissionPrompts checks the facts of PROTOCOL.md's "Permission
// prompts over stdio" that the broker relies on.
func TestPermissionPrompts(t *testing.T) {
	claudetest.Binary(t)
	if testing.Short() {
		t.Skip("starts the real Claude Code")
	}

	t.Run("Initialize", func(t *testing.T) {
		t.Parallel()
		dir := projectDir(t)
		file := filepath.Join(dir, "u.txt")
		p := claudetest.Start(t, claudetest.Env(t, fakeapi.New(t)), dir, append([]string{"--session-id", uuid.NewString()}, permissionArgs...)...)
		p.Initialize("init-1")
		ev, before := p.Until("control_response", turnTimeout)
		if len(before) != 0 {
			t.Errorf("events before the initialize response: %d", len(before))
		}
		var cr struct {
			Response struct {
				Subtype   string `json:"subtype"`
				RequestID string `json:"request_id"`
				Response  struct {
					Commands       []json.RawMessage `json:"commands"`
					Version        string            `json:"claude_code_version"`
					PermissionMode string            `json:"current_permission_mode"`
				} `json:"response"`
				// Beside, not inside, the inner response.
				PendingPermissionRequests []json.RawMessage `json:"pending_permission_requests"`
			} `json:"response"`
		}
		if err := json.Unmarshal(ev.Raw, &cr); err != nil {
			t.Fatal(err)
		}
		r := cr.Response
		if r.Subtype != "success" || r.RequestID != "init-1" || len(r.Response.Commands) == 0 ||
			r.Response.Version != claudetest.Version || r.Response.PermissionMode != "default" || r.PendingPermissionRequests == nil {
			t.Errorf("initialize response = %.600s", ev.Raw)
		}
		// The tool runs with updatedInput, not with what it asked about, and
		// the model is told so.
		p.Send(fakeapi.Tool("Write", map[string]string{"file_path": file, "content": "asked"}))
		ev, _ = p.Until("control_request", turnTimeout)
		p.Allow(ev.RequestID, json.RawMessage(`{"file_path":"`+file+`","content":"changed"}`))
		res, _ := p.Until("result", turnTimeout)
		if b, err := os.ReadFile(file); err != nil || string(b) != "changed" ||
			res.Result != fakeapi.ToolResultPrefix+"File created successfully at: "+file+" The user modified your proposed content before accepting it." {
			t.Errorf("file = %q, %v; result %q", b, err, res.Result)
		}
		// Sent again, later, it is answered again: the host may send it once
		// per process, at any time.
		p.Send("REPLY one")
		p.Until("result", turnTimeout)
		p.Initialize("init-2")
		if ev, _ := p.Until("control_response", turnTimeout); !strings.Contains(string(ev.Raw), `"request_id":"init-2"`) {
			t.Errorf("second initialize answered with %.300s", ev.Raw)
		}
	})

	t.Run("AllowWrite", func(t *testing.T) {
		t.Parallel()
		api := fakeapi.New(t)
		dir := projectDir(t)
		file := filepath.Join(dir, "w.txt")
		p, ev, req, before := ask(t, api, dir, "Write", map[string]string{"file_path": file, "content": "asked"})
		if len(before) < 2 || before[0].Subtype != "init" || before[len(before)-1].Type != "assistant" {
			t.Errorf("events before the request: want system/init ... assistant(tool_use), got %d", len(before))
		}
		if req.ToolName != "Write" || req.DisplayName != "Write" || req.Description != "w.txt" ||
			req.ToolUseID == "" || req.ToolUseID != toolUseID(before[len(before)-1]) ||
			len(req.PermissionSuggestions) == 0 || uuid.Validate(ev.RequestID) != nil {
			t.Errorf("can_use_tool = %s", ev.Raw)
		}
		var in map[string]string
		if json.Unmarshal(req.Input, &in) != nil || in["file_path"] != file || in["content"] != "asked" {
			t.Errorf("input = %s", req.Input)
		}
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("file exists before the answer: %v", err)
		}
		p.Allow(ev.RequestID, req.Input)
		res, between := p.Until("result", turnTimeout)
		var tr toolResult
		for _, e := range between {
			if r, ok := toolResultOf(e); ok {
				tr = r
			}
		}
		if tr.IsError || tr.Content != fakeapi.WriteCreated(file) || tr.ID != req.ToolUseID {
			t.Errorf("tool result = %+v", tr)
		}
		if b, err := os.ReadFile(file); err != nil || string(b) != "asked" {
			t.Errorf("file = %q, %v", b, err)
		}
		if res.IsError || res.Subtype != "success" || res.Result != fakeapi.ToolResultPrefix+fakeapi.WriteCreated(file) || len(denials(res)) != 0 {
			t.Errorf("result = %.800s", res.Raw)
		}
	})

	t.Run("DenyBash", func(t *testing.T) {
		t.Parallel()
		api := fakeapi.New(t)
		dir := projectDir(t)
		file := filepath.Join(dir, "b.txt")
		p, ev, req, _ := ask(t, api, dir, "Bash", map[string]string{"command": "touch '" + file + "'"})
		if req.ToolName != "Bash" || req.BlockedPath != file || req.Description == "" {
			t.Errorf("can_use_tool = %s", ev.Raw)
		}
		p.Deny(ev.RequestID, "team web said no")
		res, between := p.Until("result", turnTimeout)
		var tr toolResult
		for _, e := range between {
			if r, ok := toolResultOf(e); ok {
				tr = r
			}
		}
		if !tr.IsError || tr.Content != "team web said no" {
			t.Errorf("tool result = %+v, want the denial message", tr)
		}
		turns := api.Turns()
		if last := turns[len(turns)-1]; !last.HasToolResult || last.ToolResult != "team web said no" {
			t.Errorf("the model got %q as the tool result", last.ToolResult)
		}
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("denied command ran: %v", err)
		}
		// A denial ends the turn normally; only the denial list says so.
		if res.IsError || res.Subtype != "success" || res.Result != "TOOL RESULT: team web said no" ||
			strings.Join(denials(res), ",") != "Bash" {
			t.Errorf("result = %.800s", res.Raw)
		}
	})

	t.Run("OutsideCWD", func(t *testing.T) {
		t.Parallel()
		outside := filepath.Join(t.TempDir(), "o.txt")
		p, ev, req, _ := ask(t, fakeapi.New(t), projectDir(t), "Write", map[string]string{"file_path": outside, "content": "x"})
		if req.Description != outside || req.DecisionReasonType != "workingDir" || req.DecisionReason == "" {
			t.Errorf("can_use_tool = %s", ev.Raw)
		}
		p.Deny(ev.RequestID, "no")
		p.Until("result", turnTimeout)
	})

	// Tools the rules allow, or forbid, never reach the host.
	t.Run("NotAsked", func(t *testing.T) {
		t.Parallel()
		api := fakeapi.New(t)
		dir := projectDir(t)
		file := filepath.Join(dir, "allowed.txt")
		p := claudetest.Start(t, claudetest.Env(t, api), dir, append([]string{"--session-id", uuid.NewString(),
			"--allowedTools", "Write", "--disallowedTools", "Bash"}, permissionArgs...)...)
		p.Initialize("init-1")
		p.Until("control_response", turnTimeout)
		for _, c := range []struct {
			tool   string
			input  any
			result string
		}{
			{"Write", map[string]string{"file_path": file, "content": "ok"}, fakeapi.WriteCreated(file)},
			{"Read", map[string]string{"file_path": file}, "1\tok"},
			{"Bash", map[string]string{"command": "echo hi"}, "No such tool available: Bash"},
		} {
			p.Send(fakeapi.Tool(c.tool, c.input))
			res, before := p.Until("result", turnTimeout)
			for _, e := range before {
				if e.Type == "control_request" {
					t.Errorf("%s: asked: %s", c.tool, e.Raw)
				}
			}
			if !strings.Contains(res.Result, c.result) {
				t.Errorf("%s: result %q, want it to contain %q", c.tool, res.Result, c.result)
			}
		}
	})

	t.Run("WithoutInitialize", func(t *testing.T) {
		t.Parallel()
		dir := projectDir(t)
		p := claudetest.Start(t, claudetest.Env(t, fakeapi.New(t)), dir, append([]string{"--session-id", uuid.NewString()}, permissionArgs...)...)
		p.Send(fakeapi.Tool("Write", map[string]string{"file_path": filepath.Join(dir, "x"), "content": "x"}))
		ev, _ := p.Until("control_request", turnTimeout)
		if _, ok := ev.Permission(); !ok {
			t.Fatalf("control_request = %s", ev.Raw)
		}
		p.Deny(ev.RequestID, "no")
		if res, _ := p.Until("result", turnTimeout); res.IsError {
			t.Errorf("result = %.500s", res.Raw)
		}
	})

	t.Run("InterruptWhilePending", func(t *testing.T) {
		t.Parallel()
		dir := projectDir(t)
		file := filepath.Join(dir, "w.txt")
		p, ev, _, _ := ask(t, fakeapi.New(t), dir, "Write", map[string]string{"file_path": file, "content": "x"})
		p.Interrupt("int-1")
		cancel := p.Next(turnTimeout)
		if cancel.Type != "control_cancel_request" || cancel.RequestID != ev.RequestID {
			t.Errorf("first event after the interrupt = %s, want control_cancel_request for %s", cancel.Raw, ev.RequestID)
		}
		ack, _ := p.Until("control_response", turnTimeout)
		if !strings.Contains(string(ack.Raw), `"request_id":"int-1"`) {
			t.Errorf("interrupt acknowledged with %s", ack.Raw)
		}
		res, between := p.Until("result", turnTimeout)
		var tr toolResult
		for _, e := range between {
			if r, ok := toolResultOf(e); ok {
				tr = r
			}
		}
		if !tr.IsError || !strings.Contains(tr.Content, "The user doesn't want to proceed with this tool use") {
			t.Errorf("tool result = %+v", tr)
		}
		t.Logf("interrupted result: %s", res.Raw)
		if !res.IsError || res.Subtype != "error_during_execution" {
			t.Errorf("result = %.800s", res.Raw)
		}
		// A late answer to the cancelled request is ignored.
		p.Allow(ev.RequestID, json.RawMessage(`{"file_path":"`+file+`","content":"late"}`))
		p.Send("REPLY next")
		if res, _ := p.Until("result", turnTimeout); res.IsError || res.Result != "next" {
			t.Errorf("turn after the interrupt = %.500s", res.Raw)
		}
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("file written after the interrupt: %v", err)
		}
	})

	t.Run("StdinClosedWhilePending", func(t *testing.T) {
		t.Parallel()
		dir := projectDir(t)
		file := filepath.Join(dir, "w.txt")
		p, _, _, _ := ask(t, fakeapi.New(t), dir, "Write", map[string]string{"file_path": file, "content": "x"})
		p.CloseStdin()
		res, between := p.Until("result", turnTimeout)
		var tr toolResult
		for _, e := range between {
			if r, ok := toolResultOf(e); ok {
				tr = r
			}
		}
		if !tr.IsError || !strings.Contains(tr.Content, "Tool permission stream closed before response received") {
			t.Errorf("tool result = %+v", tr)
		}
		t.Logf("result after stdin closed: %.600s", res.Raw)
		err := p.Wait(turnTimeout)
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Errorf("exit: %v", err)
		}
		t.Logf("exit: %v", err)
		if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("file written without an answer: %v", err)
		}
	})
}
