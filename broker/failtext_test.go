package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/internal/claudetest"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/models"
)

// A Claude Code with no credentials: the failure says so and how to fix
// it, never Claude's result subtype ("success") as a reason.
func TestNotLoggedInSaysWhatHappened(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: the real Claude Code runs in the full test run")
	}
	noCreds := backend{"real, logged out", func(t *testing.T, root string) (string, []string, string) {
		bin := claudetest.Binary(t)
		var env []string
		for _, kv := range claudetest.Env(t, fakeapi.New(t)) {
			if !strings.HasPrefix(kv, "ANTHROPIC_API_KEY=") {
				env = append(env, kv)
			}
		}
		return bin, env, claudetest.ConfigDir(env)
	}}
	h := newHarness(t, noCreds, "", "web", "alpha")
	r := h.ask("web", "alpha", "hello")
	if r.Status != models.MessageFailed {
		t.Fatalf("status %s answer %q, want failed", r.Status, r.Answer)
	}
	if !strings.Contains(r.Error, "Claude Code in team alpha is not logged in") || !strings.Contains(r.Error, "ANTHROPIC_API_KEY") ||
		strings.Contains(r.Error, "(success)") {
		t.Errorf("error = %q, want what happened and the fix", r.Error)
	}
}

// A waiting send_message to an unreachable team is retried like a
// quick_message until its own timeout, and then returns its id.
func TestWaitingSendToUnreachableTeamRetries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	team, _ := h.cfg.Team("api")
	good := team.ClaudePath
	team.ClaudePath = filepath.Join(h.root, "later", "claude")
	r, err := h.sendUntilFailedAttempt(SendRequest{From: "web", To: "api", Text: "wait for me"})
	if err != nil {
		t.Fatalf("send: %v, want a timed-out reply with the id", err)
	}
	if !r.TimedOut || r.Status != models.MessageQueued || r.MessageID == 0 || !strings.Contains(r.Error, team.ClaudePath) {
		t.Fatalf("reply %+v, want timed out, queued, with the last error", r)
	}
	if txt := timedOutText(r); !strings.Contains(txt, "message_status") || !strings.Contains(txt, team.ClaudePath) {
		t.Errorf("timed-out text %q", txt)
	}
	if err := os.MkdirAll(filepath.Dir(team.ClaudePath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(good, team.ClaudePath); err != nil {
		t.Fatal(err)
	}
	if fin := h.waitFinal(r.MessageID); fin.Status != models.MessageAnswered {
		t.Fatalf("after the team came back: %s %q", fin.Status, fin.Error)
	}
}
