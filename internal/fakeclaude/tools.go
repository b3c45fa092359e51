package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// toolCall is the tool use a TOOL directive asks for, as the model in
// internal/fakeapi would make it.
type toolCall struct {
	name  string
	input json.RawMessage
}

// Texts Claude Code 2.1.332 gives the model (internal/claudetest/PROTOCOL.md).
const (
	rejectedText   = "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it was a file edit, the new_string was NOT written to the file). STOP what you are doing and wait for the user to tell you how to proceed."
	streamClosed   = "Tool permission request failed: AbortError: Tool permission stream closed before response received"
	interruptedUse = "[Request interrupted by user for tool use]"
)

// splitRules splits a --allowedTools value: comma or space separated rules
// such as `Write` or `Bash(git *)`; spaces inside parentheses stay.
func splitRules(v string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range v + " " {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case (r == ',' || r == ' ') && depth == 0:
			if rule := strings.TrimSpace(v[start:min(i, len(v))]); rule != "" {
				out = append(out, rule)
			}
			start = i + 1
		}
	}
	return out
}

// subject is what rules and prompts talk about: a Bash command or a path.
func subject(tc *toolCall) (command, path string) {
	var in struct {
		Command  string `json:"command"`
		FilePath string `json:"file_path"`
	}
	json.Unmarshal(tc.input, &in)
	return in.Command, in.FilePath
}

// matches reports whether rule (`Tool` or `Tool(pattern)`, a trailing *
// matching any suffix) covers tc.
func matches(rule string, tc *toolCall) bool {
	name, pattern, hasPattern := strings.Cut(rule, "(")
	if name != tc.name {
		return false
	}
	if !hasPattern {
		return true
	}
	pattern = strings.TrimSuffix(pattern, ")")
	command, path := subject(tc)
	target := command
	if target == "" {
		target = path
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(target, strings.TrimSuffix(prefix, ":"))
	}
	return target == pattern
}

// readOnlyCommands run in default mode without asking, as Claude Code's
// read-only command check lets them (a rough subset of it).
var readOnlyCommands = map[string]bool{
	"echo": true, "pwd": true, "ls": true, "cat": true, "true": true, "date": true,
	"whoami": true, "head": true, "tail": true, "wc": true, "id": true, "uname": true,
}

// decision is what the rules say about a tool call before anyone is asked.
type decision int

const (
	allow decision = iota
	ask
	disabled // a --disallowedTools name: the tool does not exist for the model
	refused  // a --disallowedTools pattern
)

func (s *session) decide(tc *toolCall) decision {
	for _, r := range s.opts.disallowed {
		if r == tc.name {
			return disabled
		}
		if matches(r, tc) {
			return refused
		}
	}
	if s.opts.permissionMode == "bypassPermissions" {
		return allow
	}
	for _, r := range s.opts.allowed {
		if matches(r, tc) {
			return allow
		}
	}
	command, path := subject(tc)
	inside := path != "" && s.inside(path)
	switch tc.name {
	case "Read", "Glob", "Grep":
		if path == "" || inside {
			return allow
		}
	case "Write", "Edit", "NotebookEdit":
		if inside && s.opts.permissionMode == "acceptEdits" {
			return allow
		}
	case "Bash":
		fields := strings.Fields(command)
		if len(fields) > 0 && readOnlyCommands[fields[0]] && !strings.ContainsAny(command, "><;&|`$") {
			return allow
		}
	}
	return ask
}

func (s *session) inside(path string) bool {
	rel, err := filepath.Rel(s.cwd, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// permissionRequest builds the can_use_tool request Claude Code prints,
// with the same fields.
func (s *session) permissionRequest(tc *toolCall, toolUseID string) map[string]any {
	req := map[string]any{
		"subtype": "can_use_tool", "tool_name": tc.name, "display_name": tc.name,
		"input": tc.input, "tool_use_id": toolUseID,
	}
	command, path := subject(tc)
	acceptEdits := map[string]any{"type": "setMode", "mode": "acceptEdits", "destination": "session"}
	switch {
	case tc.name == "Bash":
		desc := command
		if utf8.RuneCountInString(desc) > 50 {
			desc = string([]rune(desc)[:49]) + "…"
		}
		req["description"] = desc
		suggestions := []any{map[string]any{
			"type": "addRules", "behavior": "allow", "destination": "localSettings",
			"rules": []any{map[string]string{"toolName": "Bash", "ruleContent": command}},
		}}
		if blocked := blockedPath(command, s.cwd); blocked != "" {
			req["blocked_path"] = blocked
			suggestions = append(suggestions,
				map[string]any{"type": "addDirectories", "directories": []string{filepath.Dir(blocked)}, "destination": "session"},
				acceptEdits)
		}
		req["permission_suggestions"] = suggestions
	case path != "" && s.inside(path):
		rel, _ := filepath.Rel(s.cwd, path)
		req["description"] = rel
		req["permission_suggestions"] = []any{acceptEdits}
	case path != "":
		req["description"] = path
		req["permission_suggestions"] = []any{acceptEdits,
			map[string]any{"type": "addDirectories", "directories": []string{filepath.Dir(path)}, "destination": "session"}}
		req["decision_reason"] = "Path is outside allowed working directories"
		req["decision_reason_type"] = "workingDir"
	default:
		req["description"] = tc.name
		req["permission_suggestions"] = []any{}
	}
	return req
}

// blockedPath guesses the file a command that changes files writes: the
// last argument of touch, rm, mkdir, cp, mv or tee.
func blockedPath(command, cwd string) string {
	fields := shellWords(command)
	if len(fields) < 2 {
		return ""
	}
	switch fields[0] {
	case "touch", "rm", "mkdir", "cp", "mv", "tee":
	default:
		return ""
	}
	p := fields[len(fields)-1]
	if !filepath.IsAbs(p) {
		p = filepath.Join(cwd, p)
	}
	return p
}

// toolResult is one tool's outcome as the model sees it.
type toolResult struct {
	content string
	isError bool
	denied  bool // counts in the result's permission_denials
}

// toolTurn runs a turn whose model calls one tool: the tool_use, the
// permission check (asking on stdout with --permission-prompt-tool stdio),
// the tool_result, then the model's answer "TOOL RESULT: <content>", as
// Claude Code does against internal/fakeapi.
func (s *session) toolTurn(tc *toolCall, text, userUUID string, start time.Time, lines <-chan input) (code int, exit bool, queued [][]byte) {
	toolUseID := "toolu_fake_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	apiMsg := s.apiMessage("", model)
	apiMsg["content"] = []map[string]any{{"type": "tool_use", "id": toolUseID, "name": tc.name, "input": tc.input}}
	s.out.write(map[string]any{
		"type": "assistant", "message": apiMsg, "parent_tool_use_id": nil,
		"session_id": s.id, "uuid": uuid.NewString(), "request_id": "req_fake_" + uuid.NewString()[:8],
	})
	parent, _ := s.record(map[string]any{"type": "assistant", "message": apiMsg, "parentUuid": userUUID})

	var res toolResult
	var joined []string // user lines that arrived while asking
	input := tc.input
	switch s.decide(tc) {
	case allow:
		res = s.run(tc.name, input, false)
	case disabled:
		res = toolResult{isError: true, content: fmt.Sprintf(
			"<tool_use_error>Error: No such tool available: %s. %s is disabled for this session, in subagents as well as here.</tool_use_error>", tc.name, tc.name)}
	case refused:
		res = toolResult{isError: true, denied: true, content: fmt.Sprintf("Permission to use %s has been denied.", tc.name)}
	case ask:
		if s.opts.promptTool != "stdio" {
			// Nobody to ask: -p mode denies at once.
			msg := fmt.Sprintf("Claude requested permissions to use %s, but you haven't granted it yet.", tc.name)
			s.out.write(map[string]any{"type": "system", "subtype": "permission_denied", "tool_name": tc.name,
				"tool_use_id": toolUseID, "message": msg, "session_id": s.id, "uuid": uuid.NewString()})
			res = toolResult{isError: true, denied: true, content: msg}
			break
		}
		requestID := uuid.NewString()
		s.out.write(map[string]any{"type": "control_request", "request_id": requestID, "request": s.permissionRequest(tc, toolUseID)})
	wait:
		for {
			in := <-lines
			if in.eof {
				res = toolResult{isError: true, denied: true, content: streamClosed}
				exit = true
				break
			}
			var m message
			if json.Unmarshal(in.line, &m) != nil {
				continue
			}
			switch {
			case m.Type == "control_response" && m.Response.RequestID == requestID:
				r := m.Response.Response
				if r.Behavior == "allow" {
					changed := false
					if len(r.UpdatedInput) > 0 && string(r.UpdatedInput) != "null" {
						changed = !jsonEqual(r.UpdatedInput, input)
						input = r.UpdatedInput
					}
					res = s.run(tc.name, input, changed)
				} else {
					res = toolResult{isError: true, denied: true, content: r.Message}
				}
				break wait
			case m.Type == "control_request" && m.Request.Subtype == "interrupt":
				s.out.write(map[string]any{"type": "control_cancel_request", "request_id": requestID})
				s.controlResponse(m.RequestID)
				s.toolResultEvent(toolUseID, toolResult{isError: true, content: rejectedText}, "User rejected tool use", parent)
				marker := map[string]any{"role": "user", "content": []map[string]string{{"type": "text", "text": interruptedUse}}}
				s.out.write(map[string]any{"type": "user", "message": marker, "parent_tool_use_id": nil, "session_id": s.id, "uuid": uuid.NewString()})
				s.record(map[string]any{"type": "user", "message": marker})
				s.history = append(s.history, text)
				s.result(start, map[string]any{
					"subtype": "error_during_execution", "is_error": true, "num_turns": 1,
					"terminal_reason": "aborted_tools", "stop_reason": "tool_use",
					"permission_denials": []any{denial(tc, toolUseID)},
				})
				return 0, false, queued
			case m.Type == "control_request":
				s.control(m)
			case m.Type == "user":
				// Claude Code does not queue a user line that arrives while
				// it asks: it joins the running turn, sent to the model
				// with the tool result, and the turn's one result answers it.
				s.record(map[string]any{"type": "user", "message": map[string]any{"role": "user", "content": m.Message.Content}, "promptSource": "sdk"})
				joined = append(joined, m.text())
			}
		}
	}

	var toolUseResult any = res.content
	if res.isError {
		toolUseResult = "Error: " + res.content
	}
	s.toolResultEvent(toolUseID, res, toolUseResult, parent)

	reply := "TOOL RESULT: " + res.content
	s.history = append(s.history, text)
	if len(joined) > 0 {
		// The model answers the newest prompt, as fakeapi does.
		last := joined[len(joined)-1]
		reply = fmt.Sprintf("ECHO: %s | CWD: %s", last, s.cwd)
		if sc := parseScript(last); sc.reply != nil {
			reply = *sc.reply
		}
		s.history = append(s.history, joined...)
	}
	answer := s.apiMessage(reply, model)
	s.out.write(map[string]any{
		"type": "assistant", "message": answer, "parent_tool_use_id": nil,
		"session_id": s.id, "uuid": uuid.NewString(), "request_id": "req_fake_" + uuid.NewString()[:8],
	})
	s.record(map[string]any{"type": "assistant", "message": answer})
	denials := []any{}
	if res.denied {
		denials = append(denials, denial(tc, toolUseID))
	}
	s.cost += 0.002
	s.result(start, map[string]any{
		"subtype": "success", "is_error": false, "result": reply, "num_turns": 2,
		"stop_reason": "end_turn", "terminal_reason": "completed", "api_error_status": nil,
		"permission_denials": denials,
	})
	return 0, exit, queued
}

func denial(tc *toolCall, toolUseID string) map[string]any {
	return map[string]any{"tool_name": tc.name, "tool_use_id": toolUseID, "tool_input": tc.input}
}

// toolResultEvent prints and records the user line carrying a tool_result.
func (s *session) toolResultEvent(toolUseID string, res toolResult, toolUseResult any, parent string) {
	msg := map[string]any{"role": "user", "content": []map[string]any{{
		"type": "tool_result", "tool_use_id": toolUseID, "content": res.content, "is_error": res.isError,
	}}}
	s.out.write(map[string]any{
		"type": "user", "message": msg, "parent_tool_use_id": nil, "session_id": s.id,
		"uuid": uuid.NewString(), "timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"tool_use_result": toolUseResult,
	})
	s.record(map[string]any{"type": "user", "message": msg, "toolUseResult": toolUseResult})
}

// run performs an allowed tool call. Write, Read and Bash are carried out;
// other tools report that the fake does not simulate them.
func (s *session) run(name string, raw json.RawMessage, changed bool) toolResult {
	var in struct {
		Command  string `json:"command"`
		FilePath string `json:"file_path"`
		Content  string `json:"content"`
	}
	json.Unmarshal(raw, &in)
	switch name {
	case "Write":
		if !filepath.IsAbs(in.FilePath) {
			return toolResult{isError: true, content: "<tool_use_error>file_path must be absolute</tool_use_error>"}
		}
		_, err := os.Stat(in.FilePath)
		existed := err == nil
		if err := os.MkdirAll(filepath.Dir(in.FilePath), 0o755); err != nil {
			return toolResult{isError: true, content: err.Error()}
		}
		if err := os.WriteFile(in.FilePath, []byte(in.Content), 0o644); err != nil {
			return toolResult{isError: true, content: err.Error()}
		}
		switch {
		case existed:
			return toolResult{content: "The file " + in.FilePath + " has been updated successfully."}
		case changed:
			return toolResult{content: "File created successfully at: " + in.FilePath + " The user modified your proposed content before accepting it."}
		}
		return toolResult{content: "File created successfully at: " + in.FilePath + " (file state is current in your context — no need to Read it back)"}
	case "Read":
		b, err := os.ReadFile(in.FilePath)
		if errors.Is(err, os.ErrNotExist) {
			return toolResult{isError: true, content: "File does not exist. Note: your current working directory is " + s.cwd + "."}
		} else if err != nil {
			return toolResult{isError: true, content: err.Error()}
		}
		var out strings.Builder
		for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			fmt.Fprintf(&out, "%d\t%s\n", i+1, line)
		}
		return toolResult{content: strings.TrimSuffix(out.String(), "\n")}
	case "Bash":
		cmd := exec.Command("/bin/sh", "-c", in.Command)
		cmd.Dir = s.cwd
		out, err := cmd.CombinedOutput()
		text := strings.TrimRight(string(out), "\n")
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return toolResult{isError: true, content: fmt.Sprintf("Exit code %d\n%s", exitErr.ExitCode(), text)}
		} else if err != nil {
			return toolResult{isError: true, content: err.Error()}
		}
		return toolResult{content: text}
	}
	return toolResult{isError: true, content: "fakeclaude: tool " + name + " is not simulated"}
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// control answers a control_request that arrives outside a pending
// permission prompt's interrupt handling.
func (s *session) control(m message) {
	if m.Request.Subtype != "initialize" {
		s.controlResponse(m.RequestID)
		return
	}
	mode := s.opts.permissionMode
	if mode == "" {
		mode = "default"
	}
	s.out.write(map[string]any{
		"type": "control_response",
		"response": map[string]any{
			"subtype": "success", "request_id": m.RequestID,
			"response": map[string]any{
				"commands": []map[string]any{{"name": "compact", "description": "Free up context by summarizing the conversation so far",
					"argumentHint": "<optional custom summarization instructions>", "builtin": true}},
				"agents": []any{}, "output_style": "default", "available_output_styles": []string{"default"},
				"models":  []any{},
				"account": map[string]any{"tokenSource": "none", "apiKeySource": "ANTHROPIC_API_KEY", "apiProvider": "firstParty"},
				"pid":     os.Getpid(), "claude_code_version": version, "current_permission_mode": mode,
				"session_state": "idle",
			},
			"pending_permission_requests": []any{}, "pending_user_dialog_requests": []any{},
		},
	})
}

// shellWords splits a simple command line into words, honouring single and
// double quotes (enough for the commands tests script).
func shellWords(command string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range command {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
