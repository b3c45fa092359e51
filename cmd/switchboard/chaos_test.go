package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/hosts/claudepath"
	"github.com/switchboard-mcp/switchboard/internal/claudetest"
	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
)

// userTexts returns the text of every user entry of a Claude session file.
func userTexts(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var line struct {
			Type    string `json:"type"`
			Message struct {
				Content json.RawMessage `json:"content"`
			} `json:"message"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Type != "user" {
			continue
		}
		var s string
		if json.Unmarshal(line.Message.Content, &s) == nil {
			out = append(out, s)
			continue
		}
		var blocks []struct{ Type, Text string }
		if json.Unmarshal(line.Message.Content, &blocks) == nil && len(blocks) > 0 && blocks[0].Type == "text" {
			out = append(out, blocks[0].Text)
		}
	}
	return out
}

// The chaos run: the daemon is SIGKILLed repeatedly (up to 8 times, within a
// bounded time) while messages to two teams are queued and answered by the
// real Claude Code. Afterwards every accepted message is answered exactly
// once, each reached its session once (read from the session files), and
// no answer belongs to another message.
func TestChaosDaemonKilledRepeatedly(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the chaos run uses the real Claude Code")
	}
	w := newWorld(t, "web", "api", "db")
	// A third team over the real sshd: mixed local and remote traffic.
	srv := sshdtest.Start(t)
	far := w.teamDir("far")
	if err := os.MkdirAll(far, 0o755); err != nil {
		t.Fatal(err)
	}
	var env strings.Builder
	for _, kv := range w.env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ANTHROPIC_") || strings.HasPrefix(k, "DISABLE_") || strings.HasPrefix(k, "CLAUDE_") || k == "HOME" {
			fmt.Fprintf(&env, "      %s: %q\n", k, v)
		}
	}
	cfg, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(cfg), "settings:\n", fmt.Sprintf("settings:\n  sshConfig: %q\n", srv.SSHConfig), 1) +
		fmt.Sprintf("  far:\n    path: %q\n    ssh: %s\n    claudePath: %q\n    description: the far team, over SSH\n    remoteOptions: { serverAliveInterval: 1s, serverAliveCountMax: 3 }\n    env:\n%s",
			far, srv.Alias, filepath.Join(w.root, "bin", "claude"), env.String())
	mustWrite(t, w.config, y, 0o600)
	type sent struct {
		id        uint64
		to, token string
	}
	var msgs []sent
	kills := 0
	stop := time.Now().Add(90 * time.Second)
	for round := 0; kills < 8 && time.Now().Before(stop); round++ {
		before, _ := w.claudeStarts()
		sess := w.proxy("web", nil)
		for _, to := range []string{"api", "db", "far"} {
			token := fmt.Sprintf("chaos-token-%d-%s", round, to)
			out, isErr := callTool(t, sess, "quick_message", map[string]any{"toTeam": to, "message": "SLEEP 1s\n" + token})
			var id uint64
			if _, err := fmt.Sscanf(out, "Message %d for", &id); isErr || err != nil || id == 0 {
				t.Fatalf("quick_message: %s", out)
			}
			msgs = append(msgs, sent{id, to, token})
		}
		sess.Close()
		// Kill once a delivery is under way (a Claude process was started
		// for it), so kills land mid-start, mid-turn and mid-answer.
		waitFor(t, "a claude start in this round", func() bool {
			now, _ := w.claudeStarts()
			return len(now) > len(before)
		})
		pid := w.daemonPID()
		if pid == 0 || !alive(pid) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the killed daemon to go", func() bool { return !alive(pid) })
		kills++
	}
	if kills < 3 {
		t.Fatalf("only %d daemon kills in the time bound", kills)
	}
	t.Logf("%d daemon kills, %d messages", kills, len(msgs))

	sess := w.proxy("web", nil)
	type reply struct {
		Status    string `json:"status"`
		Answer    string `json:"response"`
		Error     string `json:"error"`
		SessionID string `json:"sessionId"`
	}
	header := regexp.MustCompile(`\[switchboard message (\d+) `)
	sessions := map[string]string{}
	for _, m := range msgs {
		var r reply
		waitFor(t, fmt.Sprintf("message %d to be settled", m.id), func() bool {
			out, isErr := callTool(t, sess, "message_status", map[string]any{"messageId": m.id})
			return !isErr && json.Unmarshal([]byte(out), &r) == nil && r.Status != "queued" && r.Status != "running"
		})
		if r.Status != "answered" {
			t.Errorf("message %d (%s) ended %s: %s", m.id, m.token, r.Status, r.Error)
			continue
		}
		for _, h := range header.FindAllStringSubmatch(r.Answer, -1) {
			if h[1] != fmt.Sprint(m.id) {
				t.Errorf("message %d got an answer to message %s: %q", m.id, h[1], r.Answer)
			}
		}
		if !strings.Contains(r.Answer, fmt.Sprintf("[switchboard message %d ", m.id)) {
			t.Errorf("message %d's answer does not answer it: %q", m.id, r.Answer)
		}
		sessions[m.to] = r.SessionID
	}
	configDir := claudetest.ConfigDir(w.env)
	for _, m := range msgs {
		id := sessions[m.to]
		if id == "" {
			continue
		}
		once := regexp.MustCompile(fmt.Sprintf(`^\[switchboard message %d from team "web" nonce [0-9a-f]{16}\]`, m.id))
		n := 0
		for _, text := range userTexts(t, claudepath.SessionFile(configDir, w.teamDir(m.to), id)) {
			if once.MatchString(text) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("message %d (%s) reached Claude %d times, want exactly once", m.id, m.token, n)
		}
	}
}
