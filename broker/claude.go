package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/hoptrace"
	"github.com/switchboard-mcp/switchboard/proc"
)

// event is one stream-json line printed by Claude Code. Only the fields the
// broker acts on are decoded; Raw keeps the line for debugging.
type event struct {
	Type    string          `json:"type"`
	Subtype string          `json:"subtype"`
	Result  string          `json:"result"`
	IsError bool            `json:"is_error"`
	Message json.RawMessage `json:"message"`
	Errors  []string        `json:"errors"`
	// RequestID and Request are set on control_request and
	// control_cancel_request lines (permission prompts, see permission.go).
	RequestID string          `json:"request_id"`
	Request   json.RawMessage `json:"request"`
	// Response is a control_response's body: the answer to one of the
	// broker's own control requests (see call).
	Response json.RawMessage `json:"response"`
	NumTurns int             `json:"num_turns"` // result: model calls the turn made
}

// text returns the text blocks of an assistant event's message.
func (e event) text() string {
	var m struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if json.Unmarshal(e.Message, &m) != nil {
		return ""
	}
	var b strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// errProcessExited reports that Claude Code ended while it was needed.
var errProcessExited = errors.New("claude process exited")

// claude is one running Claude Code process in stream-json mode. One turn at
// a time: the pair's worker is its only caller of turn.
type claude struct {
	p         proc.Process
	sessionID string
	started   time.Time

	events chan event    // closed when stdout ends
	done   chan struct{} // closed when the process has exited
	err    error         // exit error, valid after done
	// readErr, valid once events is closed, says why reading stopped early.
	readErr error

	writeMu sync.Mutex
	nextReq int
	// calls are the broker's control requests awaiting their answer, by
	// request id. Not under writeMu: a write stuck on a full pipe must not
	// stop the reader, which hands answers over.
	callsMu sync.Mutex
	calls   map[string]chan json.RawMessage

	// permit decides a can_use_tool prompt; nil denies every prompt. ctx
	// ends when Claude cancels the prompt or exits (see permission.go).
	permit  func(ctx context.Context, req *toolPrompt) promptAnswer
	prompts promptSet
}

func startClaude(ctx context.Context, r proc.Runner, spec proc.Spec, sessionID string, permit func(context.Context, *toolPrompt) promptAnswer) (*claude, error) {
	p, err := r.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	c := &claude{
		p:         p,
		sessionID: sessionID,
		started:   time.Now(),
		events:    make(chan event, 64),
		done:      make(chan struct{}),
		permit:    permit,
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		c.read()
	}()
	// Wait only after stdout is drained: exec-style Wait closes the pipe and
	// would drop the last lines (often the result) otherwise.
	go func() {
		<-readDone
		err := p.Wait()
		if err == nil {
			err = errProcessExited
		} else {
			err = fmt.Errorf("%w: %w", errProcessExited, err)
		}
		c.err = err
		close(c.done)
		c.prompts.cancelAll(errProcessExited)
	}()
	// Permission prompts come over this pipe (--permission-prompt-tool
	// stdio); initialize is optional on 2.1.332 but SDK hosts send it once
	// per process and older versions needed it.
	// A failed write means the process is gone; the first turn reports why.
	_ = c.initialize()
	return c, nil
}

func (c *claude) read() {
	defer close(c.events)
	err := readEvents(c.p.Stdout(), maxLineBytes, func(e event) {
		if e.Type == "control_response" {
			// Answers the broker's own request (initialize, interrupt,
			// call) and says nothing about the turn.
			c.answered(e.Response)
			return
		}
		c.events <- e
	})
	if errors.Is(err, errLineTooLong) {
		c.readErr = err
		_ = c.p.Kill()
	}
}

// alive reports whether the process is still running.
func (c *claude) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *claude) writeLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if _, err := c.p.Stdin().Write(b); err != nil {
		return fmt.Errorf("write to claude: %w", err)
	}
	return nil
}

type userLine struct {
	Type    string      `json:"type"`
	Message userMessage `json:"message"`
}

type userMessage struct {
	Role    string        `json:"role"`
	Content []textContent `json:"content"`
}

type textContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// turnResult is the outcome of one user message.
type turnResult struct {
	Text     string
	IsError  bool
	Subtype  string
	Duration time.Duration
	NumTurns int // model calls; 0 for a local command or a prompt a hook blocked
}

// turn writes one user message and reads events until its result. Assistant
// text seen on the way is passed to progress. When ctx ends first the turn is
// still running inside Claude; the caller decides whether to interrupt.
//
// Claude prints a system/init line as each turn starts; when none comes
// within initTimeout the process is taken to be stuck (errNoInit).
// started, when set, is called once Claude has begun the turn (its first
// event), which is when an interrupt can reach it.
func (c *claude) turn(ctx context.Context, text string, initTimeout time.Duration, started func(), progress func(string)) (turnResult, error) {
	// Drop anything left over from an earlier, abandoned turn.
	c.drain()
	start := time.Now()
	hoptrace.Here(hoptrace.TurnStart)
	if err := c.writeLine(userLine{Type: "user", Message: userMessage{Role: "user", Content: []textContent{{Type: "text", Text: text}}}}); err != nil {
		return turnResult{}, c.exitError(err)
	}
	r, err := c.await(ctx, initTimeout, started, progress)
	r.Duration = time.Since(start)
	hoptrace.Here(hoptrace.TurnEnd)
	return r, err
}

// errNoInit reports a Claude process that never started the turn.
var errNoInit = errors.New("claude did not start the turn")

// turnEnd waits for the result that ends the running turn.
func (c *claude) turnEnd(ctx context.Context) (turnResult, error) { return c.await(ctx, 0, nil, nil) }

func (c *claude) await(ctx context.Context, initTimeout time.Duration, started func(), progress func(string)) (turnResult, error) {
	var initC <-chan time.Time
	if initTimeout > 0 {
		t := time.NewTimer(initTimeout)
		defer t.Stop()
		initC = t.C
	}
	for {
		select {
		case <-initC:
			return turnResult{}, fmt.Errorf("%w within sessionInitTimeout %s", errNoInit, initTimeout)
		case e, ok := <-c.events:
			if !ok {
				if c.readErr != nil {
					return turnResult{}, c.readErr
				}
				return turnResult{}, c.exitError(io.ErrUnexpectedEOF)
			}
			initC = nil
			if started != nil {
				started()
				started = nil
			}
			switch e.Type {
			case "control_request", "control_cancel_request":
				c.control(e)
			case "assistant":
				if t := e.text(); t != "" && progress != nil {
					progress(t)
				}
			case "result":
				r := turnResult{Text: e.Result, IsError: e.IsError, Subtype: e.Subtype, NumTurns: e.NumTurns}
				if r.Text == "" {
					r.Text = strings.Join(publicErrors(e.Errors), "; ")
				}
				return r, nil
			}
		case <-ctx.Done():
			return turnResult{}, ctx.Err()
		}
	}
}

// drain discards buffered events without blocking.
func (c *claude) drain() {
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// exitError explains a failed turn: when the process died, its exit status and
// the tail of its stderr say more than the write or read error.
func (c *claude) exitError(err error) error {
	select {
	case <-c.done:
		return c.err
	case <-time.After(2 * time.Second):
		return err
	}
}

// interrupt asks Claude to stop the running turn; the turn then ends with a
// result whose subtype is error_during_execution and the process stays usable.
func (c *claude) interrupt() error { return c.controlRequest("interrupt") }

// controlRequest sends the broker's own control request of subtype; Claude's
// control_response to it carries nothing the broker needs, and read drops it.
func (c *claude) controlRequest(subtype string) error {
	c.writeMu.Lock()
	c.nextReq++
	id := fmt.Sprintf("switchboard-%s-%d", subtype, c.nextReq)
	c.writeMu.Unlock()
	return c.writeLine(map[string]any{
		"type":       "control_request",
		"request_id": id,
		"request":    map[string]string{"subtype": subtype},
	})
}

// call sends a control request and waits for Claude's answer: the inner
// response of a success, or an error carrying Claude's error text. Claude
// answers control requests while idle and during a turn alike.
func (c *claude) call(ctx context.Context, request map[string]any) (json.RawMessage, error) {
	ch := make(chan json.RawMessage, 1)
	c.writeMu.Lock()
	c.nextReq++
	id := fmt.Sprintf("switchboard-%v-%d", request["subtype"], c.nextReq)
	c.writeMu.Unlock()
	c.callsMu.Lock()
	if c.calls == nil {
		c.calls = map[string]chan json.RawMessage{}
	}
	c.calls[id] = ch
	c.callsMu.Unlock()
	defer func() {
		c.callsMu.Lock()
		delete(c.calls, id)
		c.callsMu.Unlock()
	}()
	if err := c.writeLine(map[string]any{"type": "control_request", "request_id": id, "request": request}); err != nil {
		return nil, err
	}
	select {
	case raw := <-ch:
		var r struct {
			Subtype  string          `json:"subtype"`
			Error    string          `json:"error"`
			Response json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("control request %v: undecodable answer %.200s", request["subtype"], raw)
		}
		if r.Subtype != "success" {
			return nil, fmt.Errorf("control request %v: %s %s", request["subtype"], r.Subtype, r.Error)
		}
		return r.Response, nil
	case <-c.done:
		return nil, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("control request %v: %w", request["subtype"], ctx.Err())
	}
}

// answered hands a control_response to the call waiting for it, if any.
func (c *claude) answered(raw json.RawMessage) {
	var r struct {
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return
	}
	c.callsMu.Lock()
	ch := c.calls[r.RequestID]
	c.callsMu.Unlock()
	if ch != nil {
		select {
		case ch <- raw:
		default:
		}
	}
}

// stop ends the process: closing stdin lets Claude flush its session file,
// and a kill follows when it does not exit in time.
func (c *claude) stop(grace time.Duration) {
	c.writeMu.Lock()
	_ = c.p.Stdin().Close()
	c.writeMu.Unlock()
	select {
	case <-c.done:
		return
	case <-time.After(grace):
	}
	_ = c.p.Kill()
	<-c.done
}
