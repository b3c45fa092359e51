package broker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/hosts"
	"github.com/switchboard-mcp/switchboard/hosts/claudepath"
	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
	"github.com/switchboard-mcp/switchboard/local"
	"github.com/switchboard-mcp/switchboard/models"
	"github.com/switchboard-mcp/switchboard/remote"
)

// newRemoteHarness configures team "web" on this machine and team "api"
// behind the real sshd srv (reached through its ssh_config alias), both
// running the backend's claude.
func newRemoteHarness(t *testing.T, be backend, srv *sshdtest.Server, sshConfig string) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: SSH integration tests run in the full test run")
	}
	root := t.TempDir()
	bin, env, configDir := be.setup(t, root)
	h := &harness{t: t, root: root, dbPath: filepath.Join(root, "db", "switchboard.db"), configDir: configDir, env: env}
	web := filepath.Join(root, "teams", "web")
	api := filepath.Join(root, "teams", "api remote")
	for _, d := range []string{web, api} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The remote claude gets what it needs through the team's env, as a
	// user's would: the SSH session does not inherit this process's env.
	var envYAML strings.Builder
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ANTHROPIC_") || strings.HasPrefix(k, "DISABLE_") || strings.HasPrefix(k, "CLAUDE_") || k == "HOME" {
			fmt.Fprintf(&envYAML, "      %s: %q\n", k, v)
		}
	}
	y := fmt.Sprintf(`settings:
  healthCheckInterval: 1h
  sshConfig: %q
teams:
  web:
    path: %q
    claudePath: %q
  api:
    path: %q
    ssh: %s
    claudePath: %q
    description: the api team, over SSH
    remoteOptions: { serverAliveInterval: 500ms, serverAliveCountMax: 2 }
    env:
%s`, sshConfig, web, bin, api, srv.Alias, bin, envYAML.String())
	cfg, err := configs.Parse([]byte(y), filepath.Join(root, "switchboard.yaml"))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	h.cfg = cfg
	h.rec = &recorder{Runner: local.New(local.Options{Env: env})}
	pool := remote.NewPool(nil)
	t.Cleanup(func() { pool.Close() })
	h.hosts = hostsOf(hosts.New(hosts.Options{Local: h.rec, Pool: pool, SSHConfig: sshConfig, LocalConfigDir: h.configDir}))
	h.open()
	return h
}

func TestRemoteTeamOverRealSSH(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, be backend) {
		srv := sshdtest.Start(t)
		h := newRemoteHarness(t, be, srv, srv.SSHConfig)
		ctx := context.Background()

		r1 := h.ask("web", "api", "how does auth work over there?")
		if r1.Status != models.MessageAnswered || !strings.Contains(r1.Answer, "CWD: "+h.teamPath("api")) {
			t.Fatalf("remote ask: %s %q %q", r1.Status, r1.Answer, r1.Error)
		}
		r2 := h.ask("web", "api", "and the second question")
		if r2.SessionID != r1.SessionID {
			t.Fatalf("second ask used session %s, want %s", r2.SessionID, r1.SessionID)
		}
		users := h.userEntries("web", "api") // read over SFTP
		if len(users) != 2 || !strings.Contains(users[1], "the second question") {
			t.Fatalf("remote session file holds %q", users)
		}
		st, err := h.b.Status(ctx, "api")
		if err != nil {
			t.Fatal(err)
		}
		if !st[0].Reachable || st[0].Where != srv.Alias {
			t.Fatalf("team_status: reachable %v where %q problem %q", st[0].Reachable, st[0].Where, st[0].Problem)
		}

		// sshd dies mid-answer: a lost connection is a retryable fault, not
		// the team's answer: the message waits, saying why, and once sshd
		// is back it is settled from the session file and the session goes on.
		q, err := h.b.Send(ctx, SendRequest{From: "web", To: "api", Text: "SLEEP 60s\nlong one", NoWait: true})
		if err != nil {
			t.Fatal(err)
		}
		h.running(q.MessageID)
		// Cut only once Claude holds the message: redelivered, it would
		// sleep its whole minute again.
		waitFor(t, "the message to reach the remote session", func() bool {
			return countContaining(h.userEntries("web", "api"), "long one") == 1
		})
		srv.Stop()
		waitFor(t, "the lost connection to be recorded", func() bool {
			m, err := h.b.Message(ctx, q.MessageID)
			return err == nil && strings.Contains(m.Error, "connection")
		})
		if m, _ := h.b.Message(ctx, q.MessageID); m.Status.Final() {
			t.Fatalf("after sshd died the message is %s (%q); a lost connection must be retried", m.Status, m.Error)
		}
		if st, _ := h.b.Status(ctx, "api"); st[0].Reachable {
			t.Fatal("team_status says a team whose sshd is down is reachable")
		}
		srv.Restart()
		if r := h.waitFinal(q.MessageID); r.Status != models.MessageAnswered {
			t.Fatalf("after sshd came back: %s %q", r.Status, r.Error)
		}
		r3 := h.ask("web", "api", "back again?")
		if r3.Status != models.MessageAnswered || r3.SessionID != r1.SessionID {
			t.Fatalf("after sshd came back: %s session %s (want %s) %q", r3.Status, r3.SessionID, r1.SessionID, r3.Error)
		}

		// A session file removed on the remote host behind the broker's back
		// gives a fresh conversation under the same id, not a failure loop.
		if _, err := h.b.Sleep(ctx, "web", "api", true); err != nil {
			t.Fatal(err)
		}
		rep, err := h.b.Report(ctx, "web", "api", 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(rep.File); err != nil { // same machine: the "remote" file is here
			t.Fatal(err)
		}
		r4 := h.ask("web", "api", "after the file vanished")
		if r4.Status != models.MessageAnswered || r4.SessionID != r1.SessionID {
			t.Fatalf("after the remote file vanished: %s %q", r4.Status, r4.Error)
		}
		if got := h.userEntries("web", "api"); len(got) != 1 {
			t.Fatalf("fresh session holds %d user entries, want 1", len(got))
		}

		// session_delete with deleteFile removes the file over SFTP.
		removed, err := h.b.Delete(ctx, "web", "api", true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(removed); !os.IsNotExist(err) {
			t.Fatalf("session file %s still there after session_delete deleteFile: %v", removed, err)
		}
		if want := claudepath.SessionFile(h.configDir, h.teamPath("api"), r1.SessionID); removed != want {
			t.Fatalf("removed %s, want %s", removed, want)
		}
	})
}

func TestRemoteHostKeyChangedIsRefused(t *testing.T) {
	t.Parallel()
	srv := sshdtest.Start(t)
	// known_hosts holds another server's key for this host and port.
	other := sshdtest.Start(t)
	otherKnown, err := os.ReadFile(other.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "known_hosts")
	line := strings.Replace(string(otherKnown), fmt.Sprintf(":%d]", other.Port), fmt.Sprintf(":%d]", srv.Port), 1)
	if err := os.WriteFile(bad, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgText, err := os.ReadFile(srv.SSHConfig)
	if err != nil {
		t.Fatal(err)
	}
	sshConfig := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(sshConfig, []byte(strings.ReplaceAll(string(cfgText), srv.KnownHosts, bad)), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newRemoteHarness(t, fakeBackend, srv, sshConfig)
	// A refused host is retried like any unreachable one (the fix the
	// error names may be applied meanwhile); the waiting asker gets the id
	// and the refusal when its own wait ends.
	r, err := h.sendUntilFailedAttempt(SendRequest{From: "web", To: "api", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.TimedOut || r.Status != models.MessageQueued || !strings.Contains(r.Error, "SHA256:") || !strings.Contains(r.Error, bad) {
		t.Fatalf("changed host key: %s %q; want it still queued with a refusal naming the fingerprint and %s", r.Status, r.Error, bad)
	}
}

func TestRemoteTeamThroughProxyJump(t *testing.T) {
	t.Parallel()
	jump := sshdtest.StartWith(t, sshdtest.Options{JumpOnly: true})
	target := sshdtest.StartWith(t, sshdtest.Options{Via: jump})
	h := newRemoteHarness(t, fakeBackend, target, target.SSHConfig)
	r := h.ask("web", "api", "through the jump host")
	if r.Status != models.MessageAnswered || !strings.Contains(r.Answer, "through the jump host") {
		t.Fatalf("via ProxyJump: %s %q %q", r.Status, r.Answer, r.Error)
	}
	if n := jump.Forwards(target.Host, target.Port); n != 1 {
		t.Fatalf("the jump host forwarded %d connections to the target, want 1", n)
	}
}
