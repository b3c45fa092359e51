package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/switchboard-mcp/switchboard/hosts/claudepath"
	"github.com/switchboard-mcp/switchboard/internal/claudetest"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/internal/fakeclaude/fakeclaudebin"
)

// TestMatchesRealClaude runs one scenario against the real Claude Code (on
// internal/fakeapi) and against the fake, and compares what a broker sees:
// the events of each turn, the answers, exit statuses, error messages and
// where the session file lands.
func TestMatchesRealClaude(t *testing.T) {
	real := claudetest.Binary(t)
	if testing.Short() {
		t.Skip("starts the real Claude Code several times")
	}
	api := fakeapi.New(t)
	realLog := scenario(t, real, claudetest.Env(t, api))
	fakeLog := scenario(t, fakeclaudebin.Build(t), claudetest.Env(t, api))
	if realLog != fakeLog {
		t.Errorf("the fake differs from Claude Code %s\nreal:\n%s\nfake:\n%s", claudetest.Version, realLog, fakeLog)
	}
}

// scenario drives bin through new session, interrupt, id reuse, resume and
// a missing resume, and returns a transcript with run-specific values (ids,
// paths) replaced by placeholders.
func scenario(t *testing.T, bin string, environ []string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "team.dir_x")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	var log strings.Builder
	turn := func(p *proc) {
		for _, ev := range p.turn(t) {
			fmt.Fprintf(&log, "  %s", ev.str("type"))
			if sub := ev.str("subtype"); sub != "" {
				fmt.Fprintf(&log, "/%s", sub)
			}
			switch ev.str("type") {
			case "system":
				fmt.Fprintf(&log, " session=%v cwd=%v", ev.str("session_id") == id, ev.str("cwd") == dir)
			case "assistant":
				if ev["is_api_error_message"] == true {
					fmt.Fprintf(&log, " api_error_status=%v", ev["api_error_status"])
				}
			case "result":
				result, ok := ev["result"].(string)
				if ev["is_error"] == true && strings.HasPrefix(result, "API Error: ") {
					result = result[:len("API Error: 500")] // the rest quotes the API's message
				}
				fmt.Fprintf(&log, " is_error=%v result=%q(%v) session=%v", ev["is_error"], result, ok, ev.str("session_id") == id)
			case "control_response":
				resp, _ := ev["response"].(map[string]any)
				fmt.Fprintf(&log, " %v %v", resp["subtype"], resp["request_id"])
			}
			log.WriteString("\n")
		}
	}
	exit := func(p *proc) {
		code := p.exit(t)
		fmt.Fprintf(&log, "exit %d stderr %q\n", code, strings.ReplaceAll(p.stderr.String(), id, "ID"))
	}

	log.WriteString("new session\n")
	p := startProc(t, bin, dir, environ, claudeArgs("--session-id", id)...)
	p.send(t, "hello")
	turn(p)
	p.send(t, "SLEEP 1h")
	if ev := p.next(t); ev.str("subtype") != "init" {
		t.Fatalf("%s: first event of a turn = %v, want init", bin, ev)
	}
	p.write(t, `{"type":"control_request","request_id":"r1","request":{"subtype":"interrupt"}}`)
	turn(p)
	exit(p)

	log.WriteString("api error\n")
	p = startProc(t, bin, dir, append(environ, "CLAUDE_CODE_MAX_RETRIES=0"), claudeArgs()...)
	p.send(t, "FAIL 500")
	turn(p)
	exit(p)

	log.WriteString("reuse id\n")
	exit(startProc(t, bin, dir, environ, claudeArgs("--session-id", id)...))

	log.WriteString("resume\n")
	p = startProc(t, bin, dir, environ, claudeArgs("--resume", id)...)
	p.send(t, "again")
	turn(p)
	exit(p)
	file := claudepath.SessionFile(claudetest.ConfigDir(environ), dir, id)
	if _, err := os.Stat(file); err != nil {
		fmt.Fprintf(&log, "session file: %v\n", err)
	}

	log.WriteString("resume missing\n")
	missing := uuid.NewString()
	p = startProc(t, bin, dir, environ, claudeArgs("--resume", missing)...)
	ev := p.next(t)
	fmt.Fprintf(&log, "  %s/%s is_error=%v errors=%v\n", ev.str("type"), ev.str("subtype"), ev["is_error"], ev["errors"])
	exit(p)

	return strings.NewReplacer(dir, "DIR", id, "ID", missing, "MISSING").Replace(log.String())
}

// TestPermissionsMatchRealClaude holds the real Claude Code and the fake to
// the same transcript of permission prompts over stdio: the initialize
// exchange, can_use_tool requests and their fields, allow (the file is
// written), deny (the message is the tool result), tools that are not
// asked about, an interrupt and a closed stdin while a prompt waits.
func TestPermissionsMatchRealClaude(t *testing.T) {
	real := claudetest.Binary(t)
	if testing.Short() {
		t.Skip("starts the real Claude Code")
	}
	api := fakeapi.New(t)
	realLog := permissionScenario(t, real, claudetest.Env(t, api))
	fakeLog := permissionScenario(t, fakeclaudebin.Build(t), claudetest.Env(t, api))
	t.Logf("transcript of Claude Code:\n%s", realLog)
	if realLog != fakeLog {
		t.Errorf("the fake differs from Claude Code %s\nreal:\n%s\nfake:\n%s", claudetest.Version, realLog, fakeLog)
	}
}

func permissionScenario(t *testing.T, bin string, environ []string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "team.dir_x")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	var toolUseID string
	// record logs one event the way the broker would read it.
	record := func(ev event) {
		typ := ev.str("type")
		if typ == "system" && ev.str("subtype") != "init" {
			return // status lines (background tasks, ...) vary and carry nothing here
		}
		fmt.Fprintf(&log, "  %s", typ)
		if sub := ev.str("subtype"); sub != "" {
			fmt.Fprintf(&log, "/%s", sub)
		}
		switch typ {
		case "assistant":
			msg, _ := ev["message"].(map[string]any)
			blocks, _ := msg["content"].([]any)
			for _, b := range blocks {
				b, _ := b.(map[string]any)
				fmt.Fprintf(&log, " %v", b["type"])
				if b["type"] == "tool_use" {
					toolUseID, _ = b["id"].(string)
					fmt.Fprintf(&log, " %v %s", b["name"], mustJSON(b["input"]))
				} else {
					fmt.Fprintf(&log, " %q", b["text"])
				}
			}
		case "user":
			msg, _ := ev["message"].(map[string]any)
			blocks, _ := msg["content"].([]any)
			for _, b := range blocks {
				b, _ := b.(map[string]any)
				if b["type"] == "tool_result" {
					fmt.Fprintf(&log, " tool_result is_error=%v id=%v %q", b["is_error"] == true, b["tool_use_id"] == toolUseID, b["content"])
				} else {
					fmt.Fprintf(&log, " %v %q", b["type"], b["text"])
				}
			}
		case "control_request":
			req, _ := ev["request"].(map[string]any)
			var keys []string
			for k := range req {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			var suggestions []string
			list, _ := req["permission_suggestions"].([]any)
			for _, s := range list {
				s, _ := s.(map[string]any)
				suggestions = append(suggestions, fmt.Sprint(s["type"]))
			}
			desc := fmt.Sprintf("%q", req["description"])
			if cmd, _ := req["input"].(map[string]any)["command"].(string); cmd != "" {
				// A long command is clipped to 49 runes and "…": compare the
				// shape, as the clipped part holds a random temp path.
				d, _ := req["description"].(string)
				head, clipped := strings.CutSuffix(d, "…")
				desc = fmt.Sprintf("command[:%d]+%v", utf8.RuneCountInString(head), clipped && strings.HasPrefix(cmd, head))
			}
			fmt.Fprintf(&log, " %v tool=%v display=%v description=%s input=%s tool_use_id=%v blocked_path=%v suggestions=%v keys=%v uuid=%v",
				req["subtype"], req["tool_name"], req["display_name"], desc, mustJSON(req["input"]),
				req["tool_use_id"] == toolUseID, req["blocked_path"], suggestions, keys, uuid.Validate(ev.str("request_id")) == nil)
		case "control_cancel_request":
			fmt.Fprintf(&log, " pending=%v", ev.str("request_id") != "")
		case "control_response":
			resp, _ := ev["response"].(map[string]any)
			fmt.Fprintf(&log, " %v %v", resp["subtype"], resp["request_id"])
		case "result":
			var denied []any
			list, _ := ev["permission_denials"].([]any)
			for _, d := range list {
				d, _ := d.(map[string]any)
				denied = append(denied, d["tool_name"])
			}
			result, ok := ev["result"].(string)
			fmt.Fprintf(&log, " is_error=%v result=%q(%v) terminal=%v denials=%v", ev["is_error"], result, ok, ev["terminal_reason"], denied)
		}
		log.WriteString("\n")
	}
	// until logs events up to and including one of type typ, and returns it.
	until := func(p *proc, typ string) event {
		for {
			ev := p.next(t)
			if ev == nil {
				t.Fatalf("%s: stdout ended while waiting for %s; stderr: %s", bin, typ, p.stderr)
			}
			record(ev)
			if ev.str("type") == typ {
				return ev
			}
		}
	}
	respond := func(p *proc, req event, response string) {
		p.write(t, `{"type":"control_response","response":{"subtype":"success","request_id":"`+req.str("request_id")+`","response":`+response+`}}`)
	}
	fileState := func(name string) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		fmt.Fprintf(&log, "file %s: %q %v\n", name, b, err != nil)
	}

	log.WriteString("initialize\n")
	p := startProc(t, bin, dir, environ, claudeArgs("--session-id", uuid.NewString(), "--permission-prompt-tool", "stdio")...)
	p.write(t, `{"type":"control_request","request_id":"init-1","request":{"subtype":"initialize"}}`)
	until(p, "control_response")

	log.WriteString("allow Write in the working directory\n")
	w := filepath.Join(dir, "w.txt")
	p.send(t, fakeapi.Tool("Write", map[string]string{"file_path": w, "content": "hi"}))
	req := until(p, "control_request")
	input, _ := json.Marshal(req["request"].(map[string]any)["input"])
	respond(p, req, `{"behavior":"allow","updatedInput":`+string(input)+`}`)
	until(p, "result")
	fileState("w.txt")

	log.WriteString("deny a Bash command that writes\n")
	b := filepath.Join(dir, "b.txt")
	p.send(t, fakeapi.Tool("Bash", map[string]string{"command": "touch " + b}))
	req = until(p, "control_request")
	respond(p, req, `{"behavior":"deny","message":"team web said no"}`)
	until(p, "result")
	fileState("b.txt")

	log.WriteString("allow Write outside the working directory with changed input\n")
	outside := filepath.Join(filepath.Dir(dir), "o.txt")
	p.send(t, fakeapi.Tool("Write", map[string]string{"file_path": outside, "content": "asked"}))
	req = until(p, "control_request")
	respond(p, req, `{"behavior":"allow","updatedInput":`+mustJSON(map[string]string{"file_path": outside, "content": "changed"})+`}`)
	until(p, "result")
	got, _ := os.ReadFile(outside)
	fmt.Fprintf(&log, "outside file: %q\n", got)

	log.WriteString("a user line while asking joins the turn; allow without updatedInput\n")
	p.send(t, fakeapi.Tool("Write", map[string]string{"file_path": filepath.Join(dir, "j.txt"), "content": "joined"}))
	req = until(p, "control_request")
	p.send(t, "REPLY joined answer")
	// stdin is read in order: the line is in before the answer.
	respond(p, req, `{"behavior":"allow"}`)
	until(p, "result")
	fileState("j.txt")

	log.WriteString("not asked: Read in the working directory, read-only Bash\n")
	p.send(t, fakeapi.Tool("Read", map[string]string{"file_path": w}))
	until(p, "result")
	p.send(t, fakeapi.Tool("Bash", map[string]string{"command": "echo hi"}))
	until(p, "result")

	log.WriteString("interrupt while asking\n")
	p.send(t, fakeapi.Tool("Write", map[string]string{"file_path": filepath.Join(dir, "i.txt"), "content": "x"}))
	req = until(p, "control_request")
	p.write(t, `{"type":"control_request","request_id":"int-1","request":{"subtype":"interrupt"}}`)
	until(p, "result")
	respond(p, req, `{"behavior":"allow","updatedInput":{}}`) // too late: ignored
	p.send(t, "REPLY after")
	until(p, "result")
	fileState("i.txt")

	log.WriteString("stdin closed while asking\n")
	p.send(t, fakeapi.Tool("Write", map[string]string{"file_path": filepath.Join(dir, "c.txt"), "content": "x"}))
	until(p, "control_request")
	p.stdin.Close()
	until(p, "result")
	fmt.Fprintf(&log, "exit %d\n", p.exit(t))
	fileState("c.txt")

	log.WriteString("rules: --allowedTools Write --disallowedTools Bash\n")
	p = startProc(t, bin, dir, environ, claudeArgs("--session-id", uuid.NewString(), "--permission-prompt-tool", "stdio",
		"--allowedTools", "Write", "--disallowedTools", "Bash")...)
	p.send(t, fakeapi.Tool("Write", map[string]string{"file_path": filepath.Join(dir, "a.txt"), "content": "allowed"}))
	until(p, "result")
	p.send(t, fakeapi.Tool("Bash", map[string]string{"command": "echo hi"}))
	until(p, "result")
	fmt.Fprintf(&log, "exit %d\n", p.exit(t))
	fileState("a.txt")

	return strings.NewReplacer(dir, "DIR", filepath.Dir(dir), "PARENT").Replace(log.String())
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
