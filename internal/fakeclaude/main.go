// Command fakeclaude stands in for Claude Code in tests that need many quick,
// scripted processes: it speaks the stream-json protocol of
// `claude -p --input-format stream-json --output-format stream-json --verbose`
// as internal/claudetest/PROTOCOL.md records it, and keeps session files where
// Claude Code keeps them, without a Messages API.
//
// Each user message is answered "ECHO: <text> | CWD: <cwd>" unless a line of
// the text is a directive (as in internal/fakeapi):
//
//	SLEEP 2s       wait before answering; an interrupt control_request ends the wait
//	CRASH          print an assistant event, then exit with status 3 mid-turn
//	FAIL 500       answer as Claude Code does when the API fails (is_error true)
//	STDERR text    write text to stderr during the turn
//	REPLY text     answer exactly text
//	HISTORY        answer with the user texts of earlier turns in the session
//	               file, joined by " | " (proves a resume kept the history)
//	TOOL Write {"file_path":"/abs/f","content":"x"}
//	               call a tool (fakeapi.Tool builds the line) and answer
//	               "TOOL RESULT: <tool result>", as Claude Code on fakeapi does
//
// Tool calls follow Claude Code's permission rules (a subset: see tools.go):
// --disallowedTools removes a tool, --allowedTools rules and
// --permission-mode acceptEdits/bypassPermissions allow, Read in the working
// directory and read-only Bash run; anything else is asked about. With
// --permission-prompt-tool stdio the fake prints the same can_use_tool
// control_request as Claude Code 2.1.332 and waits for the control_response:
// allow runs the tool (Write, Read and Bash really run) with updatedInput,
// deny makes the message the tool result; an interrupt or the end of stdin
// while it waits ends the prompt as Claude Code does. An initialize
// control_request is answered (it is optional, as on 2.1.332). Without the
// flag an asked call is denied at once.
//
// Closing stdin ends the process after the running turn, with status 1 when
// the last turn failed, as Claude Code does.
//
// FAKECLAUDE_LOG=<file> appends one JSON line per process start, with argv,
// working directory and pid, so tests can count starts.
//
// Tests build it with fakeclaudebin.Build.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/switchboard-mcp/switchboard/hosts/claudepath"
)

// version is the Claude Code release whose behaviour the fake mirrors.
const version = "2.1.332"

const model = "claude-opus-5-5"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options are the parsed command line.
type options struct {
	print        bool
	verbose      bool
	inputFormat  string
	outputFormat string
	sessionID    string
	resume       string
	forkSession  bool
	version      bool
	positional   []string

	// Permissions (see tools.go).
	promptTool     string   // --permission-prompt-tool; "stdio" asks on stdout
	permissionMode string   // --permission-mode
	allowed        []string // --allowedTools rules
	disallowed     []string // --disallowedTools rules
}

// valueFlags take an argument; other flags are switches. Flags the fake does
// not know are ignored, taking the next argument when it is not a flag.
var valueFlags = map[string]bool{
	"--input-format": true, "--output-format": true, "--session-id": true,
	"--resume": true, "-r": true, "--model": true, "--fallback-model": true,
	"--append-system-prompt": true, "--system-prompt": true,
	"--allowed-tools": true, "--allowedTools": true,
	"--disallowed-tools": true, "--disallowedTools": true,
	"--mcp-config": true, "--permission-prompt-tool": true,
	"--permission-mode": true, "--add-dir": true, "--settings": true,
	"--max-turns": true,
}

var switchFlags = map[string]bool{
	"-p": true, "--print": true, "--verbose": true, "--fork-session": true,
	"--strict-mcp-config":        true,
	"--include-partial-messages": true, "--replay-user-messages": true,
	"-v": true, "--version": true, "-c": true, "--continue": true,
}

func parseArgs(args []string) options {
	var o options
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			o.positional = append(o.positional, arg)
			continue
		}
		name, value, inline := arg, "", false
		if strings.HasPrefix(arg, "--") {
			name, value, inline = strings.Cut(arg, "=")
		}
		next := i+1 < len(args)
		if !inline && next && (valueFlags[name] || !switchFlags[name] && !strings.HasPrefix(args[i+1], "-")) {
			i++
			value = args[i]
		}
		switch name {
		case "-p", "--print":
			o.print = true
		case "--verbose":
			o.verbose = true
		case "--fork-session":
			o.forkSession = true
		case "-v", "--version":
			o.version = true
		case "--input-format":
			o.inputFormat = value
		case "--output-format":
			o.outputFormat = value
		case "--session-id":
			o.sessionID = value
		case "--resume", "-r":
			o.resume = value
		case "--permission-prompt-tool":
			o.promptTool = value
		case "--permission-mode":
			o.permissionMode = value
		case "--allowed-tools", "--allowedTools":
			o.allowed = append(o.allowed, splitRules(value)...)
		case "--disallowed-tools", "--disallowedTools":
			o.disallowed = append(o.disallowed, splitRules(value)...)
		}
	}
	return o
}

// run is the whole program; it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cwd, err := syscall.Getwd() // the kernel's answer, as Node's process.cwd()
	if err != nil {
		fmt.Fprintln(stderr, "Error: cannot get working directory:", err)
		return 1
	}
	logStart(args, cwd)

	o := parseArgs(args)
	if o.version {
		fmt.Fprintln(stdout, version+" (Claude Code)")
		return 0
	}
	if msg := o.problem(); msg != "" {
		fmt.Fprintln(stderr, msg)
		return 1
	}

	s := &session{
		out:    &lineWriter{w: stdout},
		stderr: stderr,
		cwd:    cwd,
		id:     o.sessionID,
		opts:   o,
	}
	configDir := os.Getenv("CLAUDE_CONFIG_DIR")
	if configDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			fmt.Fprintln(stderr, "Error: cannot find home directory:", err)
			return 1
		}
		configDir = filepath.Join(home, ".claude")
	}
	projectDir := filepath.Join(configDir, "projects", claudepath.Escape(cwd))
	fileOf := func(id string) string { return filepath.Join(projectDir, id+".jsonl") }

	switch {
	case o.resume != "":
		old, err := os.ReadFile(fileOf(o.resume))
		if err != nil {
			msg := "No conversation found with session ID: " + o.resume
			fmt.Fprintln(stderr, msg)
			s.out.write(map[string]any{
				"type": "result", "subtype": "error_during_execution", "is_error": true,
				"duration_ms": 0, "duration_api_ms": 0, "num_turns": 0,
				"session_id": o.resume, "total_cost_usd": 0, "errors": []string{msg},
				"uuid": uuid.NewString(),
			})
			return 1
		}
		s.id = o.resume
		if o.forkSession {
			s.id = o.sessionID
			if s.id == "" {
				s.id = uuid.NewString()
			}
			s.pending = old // copied into the fork's file at its first turn
		}
		s.history = userTexts(old)
		s.parent = lastUUID(old)
	case o.sessionID != "":
		if _, err := os.Stat(fileOf(o.sessionID)); err == nil {
			fmt.Fprintf(stderr, "Error: Session ID %s is already in use.\n", o.sessionID)
			return 1
		}
	default:
		s.id = uuid.NewString()
	}
	s.file = fileOf(s.id)
	return s.serve(stdin)
}

// problem returns the error Claude Code prints for a command line it
// refuses, or "".
func (o options) problem() string {
	switch {
	case len(o.positional) > 0:
		// Not Claude Code's rule but switchboard's: message text travels on
		// stdin only, so a prompt on the command line is a bug.
		return fmt.Sprintf("fakeclaude: unexpected arguments %q: messages must arrive on stdin", o.positional)
	case !o.print:
		return "fakeclaude: only -p (print) mode is supported"
	case o.inputFormat != "stream-json":
		return "fakeclaude: only --input-format stream-json is supported"
	case o.outputFormat != "stream-json":
		return "Error: --input-format=stream-json requires output-format=stream-json."
	case !o.verbose:
		return "Error: When using --print, --output-format=stream-json requires --verbose"
	case o.sessionID != "" && o.resume != "" && !o.forkSession:
		return "Error: --session-id can only be used with --continue or --resume if --fork-session is also specified."
	case o.sessionID != "" && uuid.Validate(o.sessionID) != nil:
		return "Error: Invalid session ID. Must be a valid UUID."
	}
	return ""
}

// logStart records this start in $FAKECLAUDE_LOG, if set.
func logStart(args []string, cwd string) {
	name := os.Getenv("FAKECLAUDE_LOG")
	if name == "" {
		return
	}
	line, _ := json.Marshal(map[string]any{"argv": args, "cwd": cwd, "pid": os.Getpid()})
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeclaude: log start:", err)
		return
	}
	defer f.Close()
	f.Write(append(line, '\n')) // one write, so concurrent starts do not interleave
}

// session is one process's conversation.
type session struct {
	out    *lineWriter
	stderr io.Writer
	cwd    string
	id     string
	file   string
	opts   options

	history []string // user texts of earlier turns
	parent  string   // uuid of the last line written to the session file
	pending []byte   // a forked session's history, written at the first turn

	results    int     // results printed so far: result_index of the next
	lastFailed bool    // the last result had is_error set
	cost       float64 // total_cost_usd, cumulative over the process
}

// input is one stdin line, or the end of stdin.
type input struct {
	line []byte
	eof  bool
}

func (s *session) serve(stdin io.Reader) int {
	lines := make(chan input)
	go func() {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
		for sc.Scan() {
			lines <- input{line: bytes.Clone(sc.Bytes())}
		}
		lines <- input{eof: true}
	}()

	var queue [][]byte // user lines that arrived during a turn
	for {
		var in input
		if len(queue) > 0 {
			in, queue = input{line: queue[0]}, queue[1:]
		} else {
			in = <-lines
		}
		if in.eof {
			// Like Claude Code, report the last turn's failure in the status.
			if s.lastFailed {
				return 1
			}
			return 0
		}
		var msg message
		if len(bytes.TrimSpace(in.line)) == 0 {
			continue
		}
		if err := json.Unmarshal(in.line, &msg); err != nil {
			fmt.Fprintf(s.stderr, "Error parsing streaming input line: %s: %v\n", in.line, err)
			return 1
		}
		switch msg.Type {
		case "user":
			if s.localCommand(msg) {
				continue
			}
			code, exit, more := s.turn(msg, lines)
			queue = append(queue, more...)
			if exit {
				if code == 0 && s.lastFailed {
					code = 1
				}
				return code
			}
		case "control_request":
			// Idle: acknowledge and print nothing else, as Claude Code does.
			s.control(msg)
		case "control_response":
			// An answer to a prompt that was cancelled or never asked:
			// Claude Code ignores it.
		default:
			fmt.Fprintf(s.stderr, "Error: Expected message type 'user' or 'control', got '%s'\n", msg.Type)
			return 1
		}
	}
}

// message is a stdin line: a user message or a control request.
type message struct {
	Type      string `json:"type"`
	IsMeta    bool   `json:"isMeta"`
	RequestID string `json:"request_id"`
	Request   struct {
		Subtype string `json:"subtype"`
	} `json:"request"`
	// Response is a control_response's body.
	Response struct {
		Subtype   string `json:"subtype"`
		RequestID string `json:"request_id"`
		Response  struct {
			Behavior     string          `json:"behavior"`
			UpdatedInput json.RawMessage `json:"updatedInput"`
			Message      string          `json:"message"`
		} `json:"response"`
	} `json:"response"`
	Message struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"message"`
}

// text is the message's text: a string content, or its text blocks joined.
func (m message) text() string {
	var s string
	if json.Unmarshal(m.Message.Content, &s) == nil {
		return s
	}
	var blocks []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	json.Unmarshal(m.Message.Content, &blocks)
	var parts []string
	for _, b := range blocks {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// script is what the directives in a message ask for.
type script struct {
	sleep  time.Duration
	crash  bool
	fail   int
	stderr []string
	reply  *string
	recall bool
	tool   *toolCall
}

func parseScript(text string) script {
	var sc script
	for _, line := range strings.Split(text, "\n") {
		verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		arg = strings.TrimSpace(arg)
		switch verb {
		case "SLEEP":
			if d, err := time.ParseDuration(arg); err == nil {
				sc.sleep = d
			}
		case "CRASH":
			sc.crash = true
		case "FAIL":
			sc.fail = 500
			if n, err := strconv.Atoi(arg); err == nil {
				sc.fail = n
			}
		case "STDERR":
			sc.stderr = append(sc.stderr, arg)
		case "REPLY":
			sc.reply = &arg
		case "HISTORY":
			sc.recall = true
		case "TOOL":
			name, in, _ := strings.Cut(arg, " ")
			in = strings.TrimSpace(in)
			if in == "" {
				in = "{}"
			}
			var obj map[string]any
			if name != "" && json.Unmarshal([]byte(in), &obj) == nil {
				sc.tool = &toolCall{name: name, input: json.RawMessage(in)}
			}
		}
	}
	return sc
}

// turn answers one user message. Lines arriving meanwhile are watched for
// an interrupt; user lines among them are returned to run afterwards.
func (s *session) turn(msg message, lines <-chan input) (code int, exit bool, queued [][]byte) {
	start := time.Now()
	text := msg.text()
	sc := parseScript(text)

	s.out.write(s.initEvent())
	userUUID, err := s.record(map[string]any{
		"type":         "user",
		"message":      map[string]any{"role": "user", "content": msg.Message.Content},
		"promptSource": "sdk",
	})
	if err != nil {
		fmt.Fprintln(s.stderr, "Error: write session file:", err)
		return 1, true, nil
	}
	for _, line := range sc.stderr {
		fmt.Fprintln(s.stderr, line)
	}

	if sc.sleep > 0 {
		timer := time.NewTimer(sc.sleep)
		defer timer.Stop()
	wait:
		for {
			select {
			case <-timer.C:
				break wait
			case in := <-lines:
				if in.eof {
					// Claude Code finishes the running turn before exiting.
					<-timer.C
					return s.answer(sc, text, userUUID, start), true, queued
				}
				var m message
				if json.Unmarshal(in.line, &m) == nil && m.Type == "control_request" && m.Request.Subtype == "interrupt" {
					s.interrupted(m.RequestID, userUUID, start)
					return 0, false, queued
				}
				queued = append(queued, in.line)
			}
		}
	}
	if sc.tool != nil && sc.fail == 0 {
		code, exit, more := s.toolTurn(sc.tool, text, userUUID, start, lines)
		return code, exit, append(queued, more...)
	}
	code = s.answer(sc, text, userUUID, start)
	return code, code != 0, queued
}

// answer ends a turn that ran its course; a non-zero code means the process
// must exit with it.
func (s *session) answer(sc script, text, userUUID string, start time.Time) int {
	reply := fmt.Sprintf("ECHO: %s | CWD: %s", text, s.cwd)
	switch {
	case sc.reply != nil:
		reply = *sc.reply
	case sc.recall:
		reply = strings.Join(s.history, " | ")
	}
	s.history = append(s.history, text)

	if sc.fail != 0 {
		reply = fmt.Sprintf("API Error: %d fakeclaude FAIL", sc.fail)
		if sc.fail >= 500 {
			reply += ". This is a server-side issue, usually temporary — try again in a moment."
		}
		apiMsg := s.apiMessage(reply, "<synthetic>")
		s.out.write(map[string]any{
			"type": "assistant", "message": apiMsg, "parent_tool_use_id": nil,
			"session_id": s.id, "uuid": uuid.NewString(),
			"is_api_error_message": true, "api_error_status": sc.fail,
		})
		s.record(map[string]any{"type": "assistant", "message": apiMsg, "isApiErrorMessage": true, "parentUuid": userUUID})
		s.result(start, map[string]any{
			"subtype": "success", "is_error": true, "result": reply,
			"api_error_status": sc.fail, "api_error_type": "api_error",
			"terminal_reason": "api_error", "stop_reason": "stop_sequence",
		})
		return 0
	}

	apiMsg := s.apiMessage(reply, model)
	s.out.write(map[string]any{
		"type": "assistant", "message": apiMsg, "parent_tool_use_id": nil,
		"session_id": s.id, "uuid": uuid.NewString(), "request_id": "req_fake_" + uuid.NewString()[:8],
	})
	if sc.crash {
		fmt.Fprintln(s.stderr, "fakeclaude: CRASH")
		return 3
	}
	if _, err := s.record(map[string]any{"type": "assistant", "message": apiMsg, "parentUuid": userUUID}); err != nil {
		fmt.Fprintln(s.stderr, "Error: write session file:", err)
		return 1
	}
	s.cost += 0.001
	s.result(start, map[string]any{
		"subtype": "success", "is_error": false, "result": reply,
		"stop_reason": "end_turn", "terminal_reason": "completed", "api_error_status": nil,
	})
	return 0
}

// interrupted ends a turn cut short by a control_request, in Claude
// Code's order: acknowledgement, marker, then a result without "result".
func (s *session) interrupted(requestID, userUUID string, start time.Time) {
	s.controlResponse(requestID)
	marker := map[string]any{"role": "user", "content": []map[string]string{{"type": "text", "text": "[Request interrupted by user]"}}}
	s.out.write(map[string]any{
		"type": "user", "message": marker, "parent_tool_use_id": nil,
		"session_id": s.id, "uuid": uuid.NewString(),
	})
	s.record(map[string]any{"type": "user", "message": marker, "parentUuid": userUUID})
	s.result(start, map[string]any{
		"subtype": "error_during_execution", "is_error": true,
		"terminal_reason": "aborted_streaming", "stop_reason": nil,
		"errors": []string{"[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"},
	})
}

func (s *session) controlResponse(requestID string) {
	s.out.write(map[string]any{
		"type": "control_response",
		"response": map[string]any{
			"subtype": "success", "request_id": requestID,
			"response": map[string]any{"still_queued": []string{}},
		},
	})
}

func (s *session) initEvent() map[string]any {
	return map[string]any{
		"type": "system", "subtype": "init", "cwd": s.cwd, "session_id": s.id,
		"tools":       []string{"Agent", "Bash", "Edit", "Read", "Write"},
		"mcp_servers": []any{}, "model": model, "permissionMode": "default",
		"slash_commands": []string{}, "apiKeySource": "ANTHROPIC_API_KEY",
		"claude_code_version": version, "output_style": "default",
		"agents": []string{}, "skills": []string{}, "plugins": []any{},
		"uuid": uuid.NewString(), "original_cwd": s.cwd,
	}
}

func (s *session) apiMessage(text, model string) map[string]any {
	return map[string]any{
		"id": "msg_fake_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20], "type": "message",
		"role": "assistant", "model": model,
		"content":     []map[string]string{{"type": "text", "text": text}},
		"stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]int{"input_tokens": 10, "output_tokens": len(strings.Fields(text)) + 1},
	}
}

// result prints a turn's result line with the fields every result has.
func (s *session) result(start time.Time, fields map[string]any) {
	ev := map[string]any{
		"type": "result", "session_id": s.id,
		"duration_ms": time.Since(start).Milliseconds(), "duration_api_ms": 0,
		"num_turns": 1, "total_cost_usd": s.cost, "permission_denials": []any{},
		"result_index": s.results, "queued_turn_count": 0, "uuid": uuid.NewString(),
		"usage": map[string]int{"input_tokens": 10, "output_tokens": 5},
	}
	for k, v := range fields {
		ev[k] = v
	}
	s.lastFailed = ev["is_error"] == true
	s.results++
	s.out.write(ev)
}

// record appends a line to the session file, creating it (and writing a
// forked session's history) on first use as Claude Code does, and returns
// the line's uuid.
func (s *session) record(line map[string]any) (string, error) {
	id := uuid.NewString()
	if _, ok := line["parentUuid"]; !ok {
		line["parentUuid"] = nilIfEmpty(s.parent)
	}
	line["uuid"] = id
	line["sessionId"] = s.id
	line["cwd"] = s.cwd
	line["version"] = version
	line["isSidechain"] = false
	line["userType"] = "external"
	line["timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(line)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(s.file), 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(s.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if s.pending != nil {
		if _, err := f.Write(s.pending); err != nil {
			return "", err
		}
		s.pending = nil
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return "", err
	}
	s.parent = id
	return id, f.Close()
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// userTexts returns the text of the person's messages in a session file.
func userTexts(file []byte) []string {
	var texts []string
	for _, raw := range bytes.Split(file, []byte("\n")) {
		var m message
		if json.Unmarshal(raw, &m) != nil || m.Type != "user" {
			continue
		}
		if t := m.text(); t != "" && t != "[Request interrupted by user]" && !m.IsMeta && !strings.HasPrefix(t, "<command-name>") {
			texts = append(texts, t)
		}
	}
	return texts
}

// lastUUID returns the uuid of the last line of a session file.
func lastUUID(file []byte) string {
	lines := bytes.Split(bytes.TrimSpace(file), []byte("\n"))
	var l struct {
		UUID string `json:"uuid"`
	}
	if len(lines) > 0 {
		json.Unmarshal(lines[len(lines)-1], &l)
	}
	return l.UUID
}

// lineWriter writes one JSON object per line, each in a single Write.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) write(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own maps reach here
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(append(b, '\n')); err != nil {
		os.Exit(1) // stdout gone: nobody is listening any more
	}
}
