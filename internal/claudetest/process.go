package claudetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Event is one line Claude Code printed on stdout in stream-json mode, with
// the fields tests look at decoded.
type Event struct {
	Type      string `json:"type"`    // system, assistant, user, result, control_response
	Subtype   string `json:"subtype"` // init, success, error_during_execution, api_retry...
	SessionID string `json:"session_id"`
	CWD       string `json:"cwd"`      // system/init
	Result    string `json:"result"`   // result; absent after an interrupt
	IsError   bool   `json:"is_error"` // result; true on API errors even with subtype "success"
	NumTurns  int    `json:"num_turns"`
	// RequestID is a control_request's or control_cancel_request's id
	// (assistant events carry the API's request id under the same key).
	RequestID string `json:"request_id"`
	// Request is a control_request's request; see Permission.
	Request json.RawMessage `json:"request"`
	Raw     json.RawMessage
}

// Process is a running `claude -p` in stream-json mode, driven by a test.
type Process struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan Event
	done   chan struct{} // closed when the process has exited
	err    error         // exit error, valid after done

	mu     sync.Mutex
	stderr bytes.Buffer
}

// Args are the flags every stream-json run needs.
var Args = []string{"-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"}

// Start runs claude in dir with env and Args followed by extra (for example
// "--session-id", id). The process is killed when the test ends.
func Start(t testing.TB, env []string, dir string, extra ...string) *Process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, Binary(t), append(append([]string(nil), Args...), extra...)...)
	cmd.Dir = dir
	cmd.Env = env
	// Tool subprocesses may inherit stdout; do not let them hold Wait forever.
	cmd.WaitDelay = 5 * time.Second
	p := &Process{t: t, cmd: cmd, events: make(chan Event, 256), done: make(chan struct{})}
	cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("claude stdin: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("claude stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start claude: %v", err)
	}
	p.stdin = stdin
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := append([]byte(nil), sc.Bytes()...)
			var ev Event
			if json.Unmarshal(line, &ev) != nil {
				t.Logf("claude stdout (not JSON): %s", line)
				continue
			}
			ev.Raw = line
			p.events <- ev
		}
		p.err = cmd.Wait()
		close(p.events)
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		for range p.events { // unblock the reader so it can reap the process
		}
		<-p.done
		if t.Failed() {
			t.Logf("claude stderr:\n%s", p.Stderr())
		}
	})
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Stderr returns what the process wrote on stderr so far.
func (p *Process) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Send writes one user message line.
func (p *Process) Send(text string) {
	p.t.Helper()
	p.write(map[string]any{
		"type": "user",
		"message": map[string]any{
			"role":    "user",
			"content": []map[string]string{{"type": "text", "text": text}},
		},
	})
}

// Interrupt writes an interrupt control_request with the given request id.
func (p *Process) Interrupt(requestID string) {
	p.t.Helper()
	p.write(map[string]any{
		"type":       "control_request",
		"request_id": requestID,
		"request":    map[string]string{"subtype": "interrupt"},
	})
}

// Initialize writes the initialize control_request that SDK hosts send
// before the first user line; Claude Code answers with a control_response
// carrying the same request id.
func (p *Process) Initialize(requestID string) {
	p.t.Helper()
	p.write(map[string]any{
		"type":       "control_request",
		"request_id": requestID,
		"request":    map[string]string{"subtype": "initialize"},
	})
}

// Allow answers a can_use_tool request: the tool runs with input (Claude
// Code runs it with this input, not the one it asked about).
func (p *Process) Allow(requestID string, input json.RawMessage) {
	p.t.Helper()
	p.Respond(requestID, map[string]any{"behavior": "allow", "updatedInput": input})
}

// Deny answers a can_use_tool request: the tool does not run and message
// becomes its result for the model.
func (p *Process) Deny(requestID, message string) {
	p.t.Helper()
	p.Respond(requestID, map[string]any{"behavior": "deny", "message": message})
}

// Respond writes a successful control_response to the control_request
// requestID.
func (p *Process) Respond(requestID string, response any) {
	p.t.Helper()
	p.write(map[string]any{
		"type": "control_response",
		"response": map[string]any{
			"subtype":    "success",
			"request_id": requestID,
			"response":   response,
		},
	})
}

// Control writes a control_request of the host's own (initialize,
// apply_flag_settings, get_hooks_listing...) and returns Claude's answer:
// the control_response with that request id. Events before it are dropped.
func (p *Process) Control(requestID string, request map[string]any, timeout time.Duration) Event {
	p.t.Helper()
	p.write(map[string]any{"type": "control_request", "request_id": requestID, "request": request})
	deadline := time.Now().Add(timeout)
	for {
		ev, _ := p.Until("control_response", time.Until(deadline))
		var r struct {
			Response struct {
				RequestID string `json:"request_id"`
			} `json:"response"`
		}
		if json.Unmarshal(ev.Raw, &r) == nil && r.Response.RequestID == requestID {
			return ev
		}
	}
}

// CloseStdin closes the process's stdin without waiting for it to exit.
func (p *Process) CloseStdin() {
	_ = p.stdin.Close()
}

func (p *Process) write(v any) {
	p.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		p.t.Fatalf("encode stdin line: %v", err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("write to claude stdin: %v (stderr: %s)", err, p.Stderr())
	}
}

// Next returns the next stdout event, failing the test when none comes
// within timeout or the process exits first.
func (p *Process) Next(timeout time.Duration) Event {
	p.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ev, ok := <-p.events:
		if !ok {
			p.t.Fatalf("claude exited (%v) while an event was awaited; stderr: %s", p.err, p.Stderr())
		}
		return ev
	case <-timer.C:
		p.t.Fatalf("no event from claude within %v; stderr: %s", timeout, p.Stderr())
	}
	return Event{}
}

// Until reads events until one of type typ arrives and returns it with the
// events before it.
func (p *Process) Until(typ string, timeout time.Duration) (Event, []Event) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var before []Event
	for {
		ev := p.Next(time.Until(deadline))
		if ev.Type == typ {
			return ev, before
		}
		before = append(before, ev)
	}
}

// Close closes stdin and waits for the process to exit, returning its exit
// error.
func (p *Process) Close(timeout time.Duration) error {
	p.t.Helper()
	_ = p.stdin.Close()
	return p.Wait(timeout)
}

// Wait waits for the process to exit on its own, discarding further events,
// and returns its exit error.
func (p *Process) Wait(timeout time.Duration) error {
	p.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-p.events:
			if !ok {
				<-p.done
				return p.err
			}
		case <-timer.C:
			p.t.Fatalf("claude did not exit within %v", timeout)
			return nil
		}
	}
}
