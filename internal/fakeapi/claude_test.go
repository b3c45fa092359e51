package fakeapi_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-mcp/switchboard/hosts/claudepath"
	"github.com/switchboard-mcp/switchboard/internal/claudetest"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

// turnTimeout bounds one turn of the real binary, start-up included; several
// processes starting at once on two cores have taken ~9 s to reach init.
const turnTimeout = 45 * time.Second

// workDir makes a project directory whose name needs escaping.
func workDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "my.team_dir x")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestClaude runs the real Claude Code against the fake.
func TestClaude(t *testing.T) {
	claudetest.Binary(t) // skip early when absent

	t.Run("EchoAndSessionFile", func(t *testing.T) {
		t.Parallel()
		api := fakeapi.New(t)
		env := claudetest.Env(t, api)
		dir, id := workDir(t), uuid.NewString()
		p := claudetest.Start(t, env, dir, "--session-id", id)
		p.Send("hello fake")

		init, _ := p.Until("system", turnTimeout)
		if init.Subtype != "init" || init.SessionID != id || init.CWD != dir {
			t.Errorf("first event = %s", init.Raw)
		}
		res, _ := p.Until("result", turnTimeout)
		if want := "ECHO: hello fake | CWD: " + dir; res.Result != want || res.IsError || res.Subtype != "success" || res.SessionID != id {
			t.Errorf("result = %s\nwant result %q", res.Raw, want)
		}
		if err := p.Close(turnTimeout); err != nil {
			t.Errorf("exit after stdin closed: %v", err)
		}

		turns := api.Turns()
		if len(turns) != 1 || turns[0].UserText != "hello fake" || turns[0].CWD != dir {
			t.Errorf("API saw %+v", turns)
		}
		file := claudepath.SessionFile(claudetest.ConfigDir(env), dir, id)
		if texts := userTexts(t, file); len(texts) != 1 || texts[0] != "hello fake" {
			t.Errorf("session file user texts = %q", texts)
		}
	})

	t.Run("TwoTurnsThenResume", func(t *testing.T) {
		t.Parallel()
		api := fakeapi.New(t)
		env := claudetest.Env(t, api)
		dir, id := workDir(t), uuid.NewString()

		p := claudetest.Start(t, env, dir, "--session-id", id)
		for _, msg := range []string{"REPLY one", "REPLY two"} {
			p.Send(msg)
			res, _ := p.Until("result", turnTimeout)
			if want := strings.TrimPrefix(msg, "REPLY "); res.Result != want {
				t.Errorf("answer to %q = %s", msg, res.Raw)
			}
		}
		if err := p.Close(turnTimeout); err != nil {
			t.Fatalf("first process: %v", err)
		}

		// The id is taken now: a new session with it is refused.
		again := claudetest.Start(t, env, dir, "--session-id", id)
		if err := again.Wait(turnTimeout); err == nil || !strings.Contains(again.Stderr(), "is already in use") {
			t.Errorf("--session-id of an existing session: err %v, stderr %q", err, again.Stderr())
		}

		r := claudetest.Start(t, env, dir, "--resume", id)
		r.Send("REPLY three")
		res, _ := r.Until("result", turnTimeout)
		if res.Result != "three" || res.SessionID != id {
			t.Errorf("resumed turn: %s", res.Raw)
		}
		if err := r.Close(turnTimeout); err != nil {
			t.Errorf("resumed process: %v", err)
		}
		last := api.Turns()[len(api.Turns())-1]
		if !strings.Contains(string(last.Body), `"one"`) {
			t.Errorf("resumed request does not carry the earlier conversation")
		}
		file := claudepath.SessionFile(claudetest.ConfigDir(env), dir, id)
		if got := strings.Join(userTexts(t, file), ","); got != "REPLY one,REPLY two,REPLY three" {
			t.Errorf("session file user texts = %s", got)
		}
	})

	t.Run("InterruptSleep", func(t *testing.T) {
		t.Parallel()
		api := fakeapi.New(t)
		dir := workDir(t)
		p := claudetest.Start(t, claudetest.Env(t, api), dir, "--session-id", uuid.NewString())
		p.Send("wait for me\nSLEEP 1h")
		// Interrupt once the turn is in the API's hands.
		waitFor(t, func() bool { return len(api.Turns()) == 1 }, turnTimeout)
		p.Interrupt("int-1")

		resp, _ := p.Until("control_response", turnTimeout)
		if !strings.Contains(string(resp.Raw), `"request_id":"int-1"`) || !strings.Contains(string(resp.Raw), `"subtype":"success"`) {
			t.Errorf("control_response = %s", resp.Raw)
		}
		res, _ := p.Until("result", turnTimeout)
		if res.Subtype != "error_during_execution" || !res.IsError {
			t.Errorf("interrupted result = %s", res.Raw)
		}

		p.Send("still there?")
		res, _ = p.Until("result", turnTimeout)
		if want := "ECHO: still there? | CWD: " + dir; res.Result != want {
			t.Errorf("turn after interrupt = %s", res.Raw)
		}
	})

	t.Run("APIErrors", func(t *testing.T) {
		t.Parallel()
		api := fakeapi.New(t)
		// Without a cap Claude Code retries a 500 for about three minutes.
		env := append(claudetest.Env(t, api), "CLAUDE_CODE_MAX_RETRIES=0")
		p := claudetest.Start(t, env, workDir(t), "--session-id", uuid.NewString())
		for _, code := range []string{"500", "400"} {
			p.Send("break\nFAIL " + code)
			res, _ := p.Until("result", turnTimeout)
			if !res.IsError || !strings.HasPrefix(res.Result, "API Error: "+code) {
				t.Errorf("FAIL %s: result %s", code, res.Raw)
			}
		}
		p.Send("REPLY recovered")
		if res, _ := p.Until("result", turnTimeout); res.IsError || res.Result != "recovered" {
			t.Errorf("turn after errors: %s", res.Raw)
		}
	})

	t.Run("ToolRoundTrip", func(t *testing.T) {
		t.Parallel()
		api := fakeapi.New(t)
		dir := workDir(t)
		p := claudetest.Start(t, claudetest.Env(t, api), dir, "--session-id", uuid.NewString())
		// A read-only command runs without any permission flag.
		p.Send(`TOOL Bash {"command":"pwd","description":"show dir"}`)
		res, before := p.Until("result", turnTimeout)
		if want := "TOOL RESULT: " + dir; res.Result != want {
			t.Errorf("result = %s\nwant %q", res.Raw, want)
		}
		var sawToolResult bool
		for _, ev := range before {
			sawToolResult = sawToolResult || ev.Type == "user" && strings.Contains(string(ev.Raw), `"tool_result"`)
		}
		if !sawToolResult {
			t.Errorf("no tool_result event before the result")
		}
		if turns := api.Turns(); len(turns) != 2 || !turns[1].HasToolResult {
			t.Errorf("API turns = %d, want the call and the tool result", len(turns))
		}
	})
}

func waitFor(t *testing.T, cond func() bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// userTexts returns the text of the human user lines of a session file.
func userTexts(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("session file: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var line struct {
			Type    string `json:"type"`
			Message struct {
				Content []struct{ Type, Text string }
			}
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Type != "user" {
			continue
		}
		for _, c := range line.Message.Content {
			if c.Type == "text" {
				out = append(out, c.Text)
			}
		}
	}
	return out
}
