package broker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/models"
)

// pid is the pid of the pair's live process, 0 when none.
func (h *harness) pid(from, to string) int {
	p := h.b.existingPair(from, to)
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cl == nil {
		return 0
	}
	return p.cl.p.Pid()
}

// reloadWith parses the harness's config with edit applied and reloads it.
func (h *harness) reloadWith(edit func(c *configs.Config)) ReloadResult {
	h.t.Helper()
	c := *h.cfg
	c.Teams = make(map[string]*configs.Team)
	for name, t := range h.cfg.Teams {
		cp := *t
		c.Teams[name] = &cp
	}
	edit(&c)
	res, err := h.b.Reload(&c)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

// Reload adds, changes and removes teams; a pair of an unchanged team
// keeps its process, a changed team's pair gets a new one, a removed team's
// queued message stays queued and is delivered when the team comes back.
func TestReloadTeams(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api", "db", "old")
	ctx := context.Background()
	for _, to := range []string{"api", "db"} {
		if r := h.ask("web", to, "hello "+to); r.Status != models.MessageAnswered {
			t.Fatalf("ask %s: %+v", to, r)
		}
	}
	apiPID, dbPID := h.pid("web", "api"), h.pid("web", "db")
	if apiPID == 0 || dbPID == 0 {
		t.Fatalf("pids api=%d db=%d, want live processes", apiPID, dbPID)
	}
	ghostDir := filepath.Join(h.root, "teams", "ghost dir")
	if err := os.MkdirAll(ghostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	res := h.reloadWith(func(c *configs.Config) {
		delete(c.Teams, "old")
		c.Teams["db"].Description = "the database team, renamed"
		g := *c.Teams["api"]
		g.Name, g.Path, g.Description = "ghost", ghostDir, "new"
		c.Teams["ghost"] = &g
		c.Settings.ResponseTimeout.Duration = 7 * 60e9
		c.Settings.MaxProcesses = 99
	})
	if strings.Join(res.Added, ",") != "ghost" || strings.Join(res.Removed, ",") != "old" ||
		strings.Join(res.Changed, ",") != "db" || strings.Join(res.NeedRestart, ",") != "maxProcesses" {
		t.Errorf("reload result = %+v", res)
	}
	if got := h.b.Config().Settings.ResponseTimeout.Duration; got != 7*60e9 {
		t.Errorf("responseTimeout after reload = %s, want it live", got)
	}
	if got := h.b.Config().Settings.MaxProcesses; got == 99 {
		t.Errorf("maxProcesses changed live to %d; it needs a restart", got)
	}
	waitFor(t, "the changed team's process to stop", func() bool { return h.pid("web", "db") == 0 })
	if got := h.pid("web", "api"); got != apiPID {
		t.Errorf("unchanged team's pid = %d, want %d kept", got, apiPID)
	}
	if r := h.ask("web", "ghost", "hello ghost"); r.Status != models.MessageAnswered {
		t.Errorf("ask the added team: %+v", r)
	}
	if r := h.ask("web", "db", "hello again"); r.Status != models.MessageAnswered {
		t.Errorf("ask the changed team: %+v", r)
	}
	if got := h.pid("web", "db"); got == 0 || got == dbPID {
		t.Errorf("changed team's pid = %d, want a new process (old %d)", got, dbPID)
	}
	if _, err := h.b.Send(ctx, SendRequest{From: "web", To: "old", Text: "x", NoWait: true}); !errors.Is(err, ErrUnknownTeam) {
		t.Errorf("send to the removed team: %v, want unknown team", err)
	}
	if got := h.pid("web", "api"); got != apiPID {
		t.Errorf("unchanged team's pid after the others were used = %d, want %d", got, apiPID)
	}
}

// A removed team's queued message stays queued and is delivered once the
// team is configured again.
func TestReloadRemovedTeamKeepsQueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "old")
	ctx := context.Background()
	team := h.cfg.Teams["old"]
	good := team.ClaudePath
	team.ClaudePath = filepath.Join(h.root, "missing", "claude")
	q, err := h.b.Send(ctx, SendRequest{From: "web", To: "old", Text: "keep me", NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a failed delivery attempt", func() bool {
		m, _ := h.b.Message(ctx, q.MessageID)
		return m.Attempts >= 1
	})
	h.reloadWith(func(c *configs.Config) { delete(c.Teams, "old") })
	if m, _ := h.b.Message(ctx, q.MessageID); m.Status != models.MessageQueued {
		t.Fatalf("after removing the team the message is %s, want queued", m.Status)
	}
	back := *team
	back.ClaudePath = good
	h.reloadWith(func(c *configs.Config) { c.Teams["old"] = &back })
	// Its backoff may have a while to run; a send to the team kicks its pair.
	if r := h.ask("web", "old", "and this one"); r.Status != models.MessageAnswered {
		t.Fatalf("ask the team that came back: %s %q", r.Status, r.Error)
	}
	if fin := h.waitFinal(q.MessageID); fin.Status != models.MessageAnswered || !strings.Contains(fin.Answer, "keep me") {
		t.Fatalf("the kept message: %s %q %q", fin.Status, fin.Answer, fin.Error)
	}
}
