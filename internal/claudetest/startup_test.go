package claudetest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/switchboard-mcp/switchboard/internal/claudetest"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

// TestLocalCommandWarmup checks what a broker relies on to warm a process
// up before the first real message (PROTOCOL.md, "Start-up, flag order and
// side traffic"): a local slash command runs without any API request, ends
// with an ordinary result, and afterwards each turn is exactly one request.
func TestLocalCommandWarmup(t *testing.T) {
	claudetest.Binary(t)
	if testing.Short() {
		t.Skip("starts the real Claude Code")
	}
	api := fakeapi.New(t)
	env := claudetest.Env(t, api)
	dir, id := projectDir(t), uuid.NewString()
	p := claudetest.Start(t, env, dir, "--session-id", id)
	p.Send("/cost")
	res, _ := p.Until("result", turnTimeout)
	if res.IsError || res.NumTurns != 0 || !strings.HasPrefix(res.Result, "Estimated cost:") {
		t.Errorf("/cost result = %.500s", res.Raw)
	}
	if n := api.Count(); n != 0 {
		t.Errorf("%d API requests before the first real message, want 0: %+v", n, api.Requests())
	}
	// The local command already wrote the session file: a restart must
	// --resume, not reuse --session-id.
	matches, _ := filepath.Glob(filepath.Join(claudetest.ConfigDir(env), "projects", "*", id+".jsonl"))
	if len(matches) != 1 {
		t.Errorf("session file after /cost: %v", matches)
	} else if b, _ := os.ReadFile(matches[0]); !strings.Contains(string(b), `"isMeta":true`) {
		t.Errorf("session file holds no meta line for the local command:\n%s", b)
	}
	for i, msg := range []string{"REPLY one", "REPLY two"} {
		p.Send(msg)
		if res, _ := p.Until("result", turnTimeout); res.Result != strings.TrimPrefix(msg, "REPLY ") {
			t.Errorf("turn %d: %.300s", i, res.Raw)
		}
		if n := api.Count(); n != i+1 {
			t.Errorf("after turn %d: %d API requests, want %d (no side requests)", i+1, n, i+1)
		}
	}
}

// warmHook is the UserPromptSubmit hook broker/claude_warm.go installs for
// a standby's warm-up prompt only.
const warmHook = `echo '{"decision":"block","reason":"switchboard standby warm-up"}'`

func hooksSettings(command string) map[string]any {
	hooks := map[string]any{}
	if command != "" {
		hooks["UserPromptSubmit"] = []any{map[string]any{"hooks": []any{map[string]any{"type": "command", "command": command}}}}
	}
	return map[string]any{"subtype": "apply_flag_settings", "settings": map[string]any{"hooks": hooks}}
}

// promptHooksListed returns the UserPromptSubmit hooks get_hooks_listing
// reports, as "command disabled=BOOL".
func promptHooksListed(t *testing.T, p *claudetest.Process, id string) []string {
	t.Helper()
	ev := p.Control(id, map[string]any{"subtype": "get_hooks_listing"}, turnTimeout)
	var r struct {
		Response struct {
			Subtype  string `json:"subtype"`
			Response struct {
				Hooks []struct {
					Event       string `json:"event"`
					Source      string `json:"source"`
					CommandText string `json:"commandText"`
					Disabled    bool   `json:"disabled"`
				} `json:"hooks"`
			} `json:"response"`
		} `json:"response"`
	}
	if err := json.Unmarshal(ev.Raw, &r); err != nil || r.Response.Subtype != "success" {
		t.Fatalf("get_hooks_listing: %v %.500s", err, ev.Raw)
	}
	var out []string
	for _, h := range r.Response.Response.Hooks {
		if h.Event == "UserPromptSubmit" {
			out = append(out, fmt.Sprintf("%s %s disabled=%v", h.Source, h.CommandText, h.Disabled))
		}
	}
	return out
}

// TestPromptHookWarmup checks the warm-up a standby gets (PROTOCOL.md,
// "Warming a process up without a model call"): a UserPromptSubmit hook
// added through apply_flag_settings blocks one prompt, which makes no API
// request and ends in a result with num_turns 0; once the hook is removed
// it is no longer listed and real prompts run unhooked, one request each; the
// blocked prompt reaches the model neither in that process nor after a
// --resume; and get_hooks_listing marks the hook disabled where a setting
// turns hooks off (the case the broker must detect, since the prompt would
// then go to the model).
func TestPromptHookWarmup(t *testing.T) {
	claudetest.Binary(t)
	if testing.Short() {
		t.Skip("starts the real Claude Code")
	}
	const prompt = "standby warm-up prompt"
	api := fakeapi.New(t)
	env := claudetest.Env(t, api)
	dir, id := projectDir(t), uuid.NewString()
	p := claudetest.Start(t, env, dir, "--session-id", id)
	p.Control("init-1", map[string]any{"subtype": "initialize"}, turnTimeout)
	if ev := p.Control("hook-1", hooksSettings(warmHook), turnTimeout); !strings.Contains(string(ev.Raw), `"subtype":"success"`) {
		t.Fatalf("apply_flag_settings: %.500s", ev.Raw)
	}
	if got := promptHooksListed(t, p, "list-1"); len(got) != 1 || got[0] != "flagSettings "+warmHook+" disabled=false" {
		t.Fatalf("prompt hooks listed after adding the warm-up hook: %q", got)
	}
	p.Send(prompt)
	res, before := p.Until("result", turnTimeout)
	if res.IsError || res.NumTurns != 0 {
		t.Errorf("blocked prompt result = %.500s", res.Raw)
	}
	blocked := false
	for _, ev := range before {
		blocked = blocked || strings.Contains(string(ev.Raw), `"kind":"blocked_by_hook"`)
		if ev.Type == "assistant" {
			t.Errorf("the blocked prompt got an assistant event: %.300s", ev.Raw)
		}
	}
	if !blocked {
		t.Errorf("no blocked_by_hook outcome among the events before the result")
	}
	p.Control("hook-2", hooksSettings(""), turnTimeout)
	if got := promptHooksListed(t, p, "list-2"); len(got) != 0 {
		t.Fatalf("prompt hooks listed after removing the warm-up hook: %q", got)
	}
	p.Control("ctx-1", map[string]any{"subtype": "get_context_usage", "detail": "summary"}, turnTimeout)
	if n := api.Count(); n != 0 {
		t.Fatalf("%d API requests during the warm-up, want 0: %+v", n, api.Requests())
	}
	for i, msg := range []string{"REPLY one", "REPLY two"} {
		p.Send(msg)
		if res, _ := p.Until("result", turnTimeout); res.Result != strings.TrimPrefix(msg, "REPLY ") || res.NumTurns != 1 {
			t.Errorf("turn %d after the warm-up (the hook must be gone): %.300s", i, res.Raw)
		}
	}
	if err := p.Close(turnTimeout); err != nil {
		t.Fatalf("claude exit: %v", err)
	}
	// The session resumes, and the blocked prompt is in no request.
	p = claudetest.Start(t, env, dir, "--resume", id)
	p.Send("REPLY three")
	if res, _ := p.Until("result", turnTimeout); res.Result != "three" {
		t.Errorf("resumed turn: %.300s", res.Raw)
	}
	reqs := api.Requests()
	if len(reqs) != 3 {
		t.Errorf("%d API requests, want 3 (one per real message)", len(reqs))
	}
	for _, r := range reqs {
		if strings.Contains(string(r.Body), prompt) {
			t.Errorf("the blocked prompt reached the model in request %q", r.UserText)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(claudetest.ConfigDir(env), "projects", "*", id+".jsonl"))
	if len(matches) != 1 {
		t.Fatalf("session file: %v", matches)
	}
	b, _ := os.ReadFile(matches[0])
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, prompt) && !strings.Contains(line, `"type":"system"`) {
			t.Errorf("the blocked prompt is in a session line other than Claude's system note: %.300s", line)
		}
	}

	// A setting that turns hooks off: the hook is listed as disabled, and
	// the broker then warms with /cost instead.
	t.Run("hooks disabled", func(t *testing.T) {
		settings := filepath.Join(t.TempDir(), "settings.json")
		if err := os.WriteFile(settings, []byte(`{"disableAllHooks":true}`), 0o600); err != nil {
			t.Fatal(err)
		}
		p := claudetest.Start(t, env, projectDir(t), "--session-id", uuid.NewString(), "--settings", settings)
		p.Control("hook-1", hooksSettings(warmHook), turnTimeout)
		if got := promptHooksListed(t, p, "list-1"); len(got) != 1 || !strings.HasSuffix(got[0], "disabled=true") {
			t.Fatalf("prompt hooks listed with disableAllHooks: %q, want the warm-up hook, disabled", got)
		}
	})
}
