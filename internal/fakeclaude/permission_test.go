package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

// untilType reads events up to and including one of type typ.
func (p *proc) untilType(t *testing.T, typ string) (event, []event) {
	t.Helper()
	var before []event
	for {
		ev := p.next(t)
		if ev == nil {
			t.Fatalf("stdout ended before %s; got %v; stderr: %s", typ, types(before), p.stderr)
		}
		if ev.str("type") == typ {
			return ev, before
		}
		before = append(before, ev)
	}
}

func (p *proc) respond(t *testing.T, requestID, response string) {
	t.Helper()
	p.write(t, `{"type":"control_response","response":{"subtype":"success","request_id":"`+requestID+`","response":`+response+`}}`)
}

// TestPermissionPrompt checks the fake's side of the can_use_tool exchange
// quickly; TestPermissionsMatchRealClaude holds it to the real one.
func TestPermissionPrompt(t *testing.T) {
	stdio := []string{"--permission-prompt-tool", "stdio"}
	for _, tc := range []struct {
		name   string
		args   []string
		tool   string              // Write or Bash (touch)
		answer func(*proc, string) // answers the request id; nil: not asked
		result string              // the turn's result, "" for none; FILE is the path
		exists bool                // the file exists afterwards
	}{
		{"Allow", stdio, "Write", func(p *proc, id string) {
			p.respond(t, id, `{"behavior":"allow","updatedInput":null}`)
		}, "TOOL RESULT: " + fakeapi.WriteCreated("FILE"), true},
		{"Deny", stdio, "Bash", func(p *proc, id string) {
			p.respond(t, id, `{"behavior":"deny","message":"web says no"}`)
		}, "TOOL RESULT: web says no", false},
		{"AllowedByRule", append([]string{"--allowedTools", "Bash(touch *)"}, stdio...), "Bash", nil, "TOOL RESULT: ", true},
		{"NobodyToAsk", nil, "Write", nil, "TOOL RESULT: Claude requested permissions to use Write, but you haven't granted it yet.", false},
		{"Interrupt", stdio, "Write", func(p *proc, id string) {
			p.write(t, `{"type":"control_request","request_id":"int-1","request":{"subtype":"interrupt"}}`)
			if ev := p.next(t); ev.str("type") != "control_cancel_request" || ev.str("request_id") != id {
				t.Errorf("after interrupt: %v, want control_cancel_request %s", ev, id)
			}
		}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			file := filepath.Join(e.dir, "f.txt")
			msg := fakeapi.Tool("Write", map[string]string{"file_path": file, "content": "hi"})
			if tc.tool == "Bash" {
				msg = fakeapi.Tool("Bash", map[string]string{"command": "touch '" + file + "'"})
			}
			p := e.start(t, claudeArgs(tc.args...)...)
			p.write(t, `{"type":"control_request","request_id":"init-1","request":{"subtype":"initialize"}}`)
			if ev, _ := p.untilType(t, "control_response"); !strings.Contains(mustJSON(ev), `"claude_code_version":"`+version+`"`) {
				t.Errorf("initialize response = %v", ev)
			}
			p.send(t, msg)
			var res event
			var evs []event
			if tc.answer != nil {
				ev, _ := p.untilType(t, "control_request")
				var req struct {
					Request struct {
						ToolName  string `json:"tool_name"`
						ToolUseID string `json:"tool_use_id"`
					} `json:"request"`
				}
				json.Unmarshal([]byte(mustJSON(ev)), &req)
				if req.Request.ToolName != tc.tool || req.Request.ToolUseID == "" {
					t.Errorf("control_request = %v", ev)
				}
				tc.answer(p, ev.str("request_id"))
			}
			res, evs = p.untilType(t, "result")
			for _, ev := range evs {
				if ev.str("type") == "control_request" {
					t.Errorf("asked although no answer was scripted: %v", ev)
				}
			}
			got, _ := res["result"].(string)
			if want := strings.ReplaceAll(tc.result, "FILE", file); !strings.HasPrefix(got, want) || (want == "") != (res["is_error"] == true) {
				t.Errorf("result = %q (is_error %v), want %q", got, res["is_error"], want)
			}
			if _, err := os.Stat(file); (err == nil) != tc.exists {
				t.Errorf("file exists = %v, want %v", err == nil, tc.exists)
			}
			// The process takes the next turn normally.
			p.send(t, "REPLY next")
			if res, _ := p.untilType(t, "result"); res["result"] != "next" {
				t.Errorf("next turn = %v", res)
			}
		})
	}
}

func TestPermissionStdinClosed(t *testing.T) {
	e := newEnv(t)
	p := e.start(t, claudeArgs("--permission-prompt-tool", "stdio")...)
	p.send(t, fakeapi.Tool("Write", map[string]string{"file_path": filepath.Join(e.dir, "f.txt"), "content": "x"}))
	p.untilType(t, "control_request")
	p.stdin.Close()
	res, _ := p.untilType(t, "result")
	if got, _ := res["result"].(string); got != "TOOL RESULT: "+streamClosed || res["is_error"] == true {
		t.Errorf("result = %v", res)
	}
	if code := p.exit(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func TestSplitRules(t *testing.T) {
	got := splitRules("Write,Bash(git log *) Read")
	if strings.Join(got, "|") != "Write|Bash(git log *)|Read" {
		t.Errorf("splitRules = %q", got)
	}
}

func TestBlockedPath(t *testing.T) {
	if got := blockedPath(`touch '/a b/c.txt'`, "/w"); got != "/a b/c.txt" {
		t.Errorf("quoted: %q", got)
	}
	if got := blockedPath(`touch c.txt`, "/w"); got != "/w/c.txt" {
		t.Errorf("relative: %q", got)
	}
	if got := blockedPath(`echo hi`, "/w"); got != "" {
		t.Errorf("echo: %q", got)
	}
}
