package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
