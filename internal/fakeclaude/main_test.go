package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/switchboard-mcp/switchboard/internal/fakeclaude/fakeclaudebin"
)

// hangGuard bounds waits for output that should come promptly.
const hangGuard = 30 * time.Second

// env is one test's isolated world: a config dir, a project dir and a log.
type env struct {
	bin       string
	configDir string
	dir       string
	log       string
}

func newEnv(t *testing.T) env {
	t.Helper()
	root := t.TempDir()
	e := env{
		bin:       fakeclaudebin.Build(t),
		configDir: filepath.Join(root, "config"),
		// Dots, underscores, spaces and non-ASCII all escape to '-'.
		dir: filepath.Join(root, "my.project_dir ü"),
		log: filepath.Join(root, "starts.log"),
	}
	if err := os.Mkdir(e.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return e
}

// sessionFile is where Claude Code keeps id's transcript for e.dir,
// computed independently of the fake's escapePath.
func (e env) sessionFile(id string) string {
	escaped := regexp.MustCompile(`[^a-zA-Z0-9]`).ReplaceAllString(e.dir, "-")
	return filepath.Join(e.configDir, "projects", escaped, id+".jsonl")
}

// proc is a running fake with its streams.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (e env) start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startProc(t, e.bin, e.dir, append(os.Environ(), "CLAUDE_CONFIG_DIR="+e.configDir, "FAKECLAUDE_LOG="+e.log), args...)
}

func startProc(t *testing.T, bin, dir string, environ []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = environ
	p := &proc{cmd: cmd, lines: make(chan []byte, 100), stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- bytes.Clone(sc.Bytes())
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	return p
}

func claudeArgs(extra ...string) []string {
	return append([]string{"-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"}, extra...)
}

func (p *proc) send(t *testing.T, text string) {
	t.Helper()
	line, _ := json.Marshal(map[string]any{
		"type":    "user",
		"message": map[string]any{"role": "user", "content": []map[string]string{{"type": "text", "text": text}}},
	})
	p.write(t, string(line))
}

func (p *proc) write(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatalf("write stdin: %v", err)
	}
}

// event is a decoded stdout line.
type event map[string]any

func (e event) str(key string) string { s, _ := e[key].(string); return s }

// next returns the next stdout line, or nil at EOF.
func (p *proc) next(t *testing.T) event {
	t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			return nil
		}
		var ev event
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", line, err)
		}
		return ev
	case <-time.After(hangGuard):
		t.Fatalf("no stdout line within %v; stderr: %s", hangGuard, p.stderr)
		return nil
	}
}

// turn reads events up to and including the result and returns them all.
func (p *proc) turn(t *testing.T) []event {
	t.Helper()
	var evs []event
	for {
		ev := p.next(t)
		if ev == nil {
			t.Fatalf("stdout ended before a result; got %v; stderr: %s", evs, p.stderr)
		}
		evs = append(evs, ev)
		if ev["type"] == "result" {
			return evs
		}
	}
}

// exit closes stdin, drains stdout and returns the exit code.
func (p *proc) exit(t *testing.T) int {
	t.Helper()
	p.stdin.Close()
	for ev := p.next(t); ev != nil; ev = p.next(t) {
	}
	err := p.cmd.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode()
	}
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return 0
}

func types(evs []event) []string {
	var out []string
	for _, ev := range evs {
		typ := ev.str("type")
		if sub := ev.str("subtype"); sub != "" {
			typ += "/" + sub
		}
		out = append(out, typ)
	}
	return out
}

func TestConversationAcrossProcesses(t *testing.T) {
	e := newEnv(t)
	id := uuid.NewString()

	p := e.start(t, claudeArgs("--session-id", id, "--model", "sonnet", "--append-system-prompt", "be brief")...)
	p.send(t, "hello there")
	evs := p.turn(t)
	if got, want := strings.Join(types(evs), " "), "system/init assistant result/success"; got != want {
		t.Fatalf("events = %s, want %s", got, want)
	}
	if evs[0].str("session_id") != id || evs[0].str("cwd") != e.dir {
		t.Errorf("init = %v, want session_id %s and cwd %s", evs[0], id, e.dir)
	}
	res := evs[2]
	if want := "ECHO: hello there | CWD: " + e.dir; res.str("result") != want {
		t.Errorf("result = %q, want %q", res.str("result"), want)
	}
	if res["is_error"] != false || res.str("session_id") != id || res["result_index"] != 0.0 {
		t.Errorf("result = %v, want is_error false, session %s, result_index 0", res, id)
	}

	// A second turn in the same process repeats init and counts results.
	p.send(t, "second")
	evs = p.turn(t)
	if evs[0].str("subtype") != "init" || evs[len(evs)-1]["result_index"] != 1.0 {
		t.Errorf("second turn = %v, want init first and result_index 1", evs)
	}
	if code := p.exit(t); code != 0 {
		t.Errorf("exit status after stdin closed = %d, want 0; stderr: %s", code, p.stderr)
	}

	data, err := os.ReadFile(e.sessionFile(id))
	if err != nil {
		t.Fatalf("session file: %v", err)
	}
	for _, want := range []string{`"text":"hello there"`, `"text":"second"`, `"type":"assistant"`, `"sessionId":"` + id} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("session file lacks %s:\n%s", want, data)
		}
	}

	// The id is now taken...
	again := e.start(t, claudeArgs("--session-id", id)...)
	if code := again.exit(t); code != 1 {
		t.Errorf("reusing --session-id: exit %d, want 1", code)
	}
	if want := "Error: Session ID " + id + " is already in use.\n"; again.stderr.String() != want {
		t.Errorf("stderr = %q, want %q", again.stderr, want)
	}

	// ...and --resume continues it with its history.
	resumed := e.start(t, claudeArgs("--resume", id)...)
	resumed.send(t, "HISTORY")
	evs = resumed.turn(t)
	res = evs[len(evs)-1]
	if res.str("result") != "hello there | second" || res.str("session_id") != id {
		t.Errorf("resumed result = %v, want the earlier messages of session %s", res, id)
	}
	resumed.exit(t)

	starts, err := os.ReadFile(e.log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(starts)), "\n")
	if len(lines) != 3 {
		t.Fatalf("FAKECLAUDE_LOG has %d lines, want 3 (one per start):\n%s", len(lines), starts)
	}
	var first struct {
		Argv []string `json:"argv"`
		Cwd  string   `json:"cwd"`
		Pid  int      `json:"pid"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Cwd != e.dir || first.Pid == 0 || !strings.Contains(strings.Join(first.Argv, " "), "--session-id "+id) {
		t.Errorf("first start logged as %+v", first)
	}
}

func TestSessionFileWrittenAtFirstTurn(t *testing.T) {
	// Claude Code creates the file during the first turn, so a process
	// stopped before any message leaves the id free.
	e := newEnv(t)
	id := uuid.NewString()
	p := e.start(t, claudeArgs("--session-id", id)...)
	if code := p.exit(t); code != 0 {
		t.Fatalf("exit = %d, want 0", code)
	}
	if _, err := os.Stat(e.sessionFile(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("session file after no turns: %v, want none", err)
	}
	p = e.start(t, claudeArgs("--session-id", id)...)
	p.send(t, "hi")
	p.turn(t)
	if code := p.exit(t); code != 0 {
		t.Errorf("second start with the unused id: exit %d, want 0; stderr: %s", code, p.stderr)
	}
}

func TestResumeMissing(t *testing.T) {
	e := newEnv(t)
	id := uuid.NewString()
	p := e.start(t, claudeArgs("--resume", id)...)
	ev := p.next(t)
	if code := p.exit(t); code != 1 {
		t.Errorf("exit = %d, want 1", code)
	}
	msg := "No conversation found with session ID: " + id
	if p.stderr.String() != msg+"\n" {
		t.Errorf("stderr = %q, want %q", p.stderr, msg)
	}
	if ev.str("type") != "result" || ev.str("subtype") != "error_during_execution" || ev["is_error"] != true || ev["result"] != nil {
		t.Errorf("stdout = %v, want an error_during_execution result without a result key", ev)
	}
}

func TestInterrupt(t *testing.T) {
	e := newEnv(t)
	p := e.start(t, claudeArgs("--session-id", uuid.NewString())...)
	p.send(t, "think long\nSLEEP 1h")
	if ev := p.next(t); ev.str("subtype") != "init" {
		t.Fatalf("first event = %v, want init", ev)
	}
	// A message sent mid-turn waits for the turn to end.
	p.send(t, "queued")
	p.write(t, `{"type":"control_request","request_id":"req-7","request":{"subtype":"interrupt"}}`)
	evs := p.turn(t)
	if got, want := strings.Join(types(evs), " "), "control_response user result/error_during_execution"; got != want {
		t.Fatalf("events = %s, want %s", got, want)
	}
	resp, _ := evs[0]["response"].(map[string]any)
	if resp["request_id"] != "req-7" || resp["subtype"] != "success" {
		t.Errorf("control_response = %v, want success for req-7", evs[0])
	}
	if res := evs[2]; res["is_error"] != true || res["result"] != nil {
		t.Errorf("interrupted result = %v, want is_error and no result key", res)
	}

	evs = p.turn(t)
	if res := evs[len(evs)-1]; !strings.HasPrefix(res.str("result"), "ECHO: queued") || res["is_error"] != false {
		t.Errorf("queued message's result = %v, want its echo", res)
	}

	// Idle, an interrupt is only acknowledged.
	p.write(t, `{"type":"control_request","request_id":"req-8","request":{"subtype":"interrupt"}}`)
	p.send(t, "after")
	if ev := p.next(t); ev.str("type") != "control_response" {
		t.Errorf("idle interrupt answered %v, want a control_response", ev)
	}
	if evs := p.turn(t); evs[0].str("subtype") != "init" {
		t.Errorf("turn after idle interrupt = %s, want it to start with init", types(evs))
	}
	if code := p.exit(t); code != 0 {
		t.Errorf("exit = %d, want 0", code)
	}
}

func TestDirectives(t *testing.T) {
	e := newEnv(t)
	p := e.start(t, claudeArgs()...)

	p.send(t, "FAIL 529")
	evs := p.turn(t)
	res := evs[len(evs)-1]
	if res.str("subtype") != "success" || res["is_error"] != true || !strings.HasPrefix(res.str("result"), "API Error: 529") {
		t.Errorf("FAIL result = %v, want subtype success, is_error, API Error: 529", res)
	}

	p.send(t, "REPLY exactly this")
	if evs := p.turn(t); evs[len(evs)-1].str("result") != "exactly this" {
		t.Errorf("REPLY result = %v", evs[len(evs)-1])
	}

	p.send(t, "STDERR warning: low disk\nCRASH")
	if ev := p.next(t); ev.str("subtype") != "init" {
		t.Fatalf("first event = %v, want init", ev)
	}
	if ev := p.next(t); ev.str("type") != "assistant" {
		t.Fatalf("second event = %v, want assistant", ev)
	}
	if code := p.exit(t); code != 3 {
		t.Errorf("CRASH exit = %d, want 3", code)
	}
	if !strings.Contains(p.stderr.String(), "warning: low disk\n") {
		t.Errorf("stderr = %q, want the STDERR text", p.stderr)
	}
}

func TestStdinClosedMidTurn(t *testing.T) {
	e := newEnv(t)
	p := e.start(t, claudeArgs()...)
	p.send(t, "SLEEP 10ms")
	p.stdin.Close()
	evs := p.turn(t)
	if res := evs[len(evs)-1]; res["is_error"] != false {
		t.Errorf("result = %v, want the turn to finish", res)
	}
	if code := p.exit(t); code != 0 {
		t.Errorf("exit = %d, want 0", code)
	}
}

func TestBadCommandLines(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no verbose", []string{"-p", "--input-format", "stream-json", "--output-format", "stream-json"},
			"Error: When using --print, --output-format=stream-json requires --verbose"},
		{"text output", []string{"-p", "--input-format", "stream-json", "--output-format", "text", "--verbose"},
			"Error: --input-format=stream-json requires output-format=stream-json."},
		{"bad session id", claudeArgs("--session-id", "not-a-uuid"),
			"Error: Invalid session ID. Must be a valid UUID."},
		{"session id and resume", claudeArgs("--session-id", uuid.NewString(), "--resume", uuid.NewString()),
			"Error: --session-id can only be used with --continue or --resume if --fork-session is also specified."},
		{"prompt on the command line", claudeArgs("hello"), "messages must arrive on stdin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := e.start(t, tc.args...)
			if code := p.exit(t); code != 1 {
				t.Errorf("exit = %d, want 1", code)
			}
			if !strings.Contains(p.stderr.String(), tc.want) {
				t.Errorf("stderr = %q, want %q", p.stderr, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(fakeclaudebin.Build(t), "--version").Output()
	if err != nil || !strings.HasSuffix(string(out), " (Claude Code)\n") {
		t.Errorf("--version = %q, %v", out, err)
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want options
	}{
		{claudeArgs("--session-id", "X"), options{print: true, verbose: true, inputFormat: "stream-json", outputFormat: "stream-json", sessionID: "X"}},
		{[]string{"--print", "--resume=Y", "--fork-session"}, options{print: true, resume: "Y", forkSession: true}},
		// Unknown flags are skipped with their value.
		{[]string{"--new-flag", "v", "-p", "--other-new", "--allowedTools", "Read,Grep"}, options{print: true, allowed: []string{"Read", "Grep"}}},
		{[]string{"-p", "prompt"}, options{print: true, positional: []string{"prompt"}}},
	}
	for _, tc := range tests {
		if got := parseArgs(tc.args); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseArgs(%q) = %+v, want %+v", tc.args, got, tc.want)
		}
	}
}
