package claudetest_test

import (
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
