package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// lines splits output into trimmed, non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// oneErrorLine checks a failed command: exit code, nothing on stdout, and
// one line on stderr that contains want.
func oneErrorLine(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code || r.stdout != "" || len(lines(r.stderr)) != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and one stderr line containing %q", r.code, r.stdout, r.stderr, code, want)
	}
}

// TestCLIUsage holds what needs no daemon, in a world of its own, so it runs
// beside TestCLI's long chain instead of in it.
func TestCLIUsage(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket
	w := newWorld(t, "web", "api")

	t.Run("version", func(t *testing.T) {
		r := w.run("", "version")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "switchboard v0.0.0-test ") {
			t.Errorf("version: exit %d, %q", r.code, r.stdout)
		}
	})

	t.Run("usage errors exit 2", func(t *testing.T) {
		for _, args := range [][]string{{"bogus"}, {"ask", "api"}, {"ask", "--nope", "api", "hi"}, {"ask", "--from", "../x", "api", "hi"},
			{"sessions", "show"}, {"sessions", "show", "not-a-uuid"}, {"install", "--scope", "global"}, {"--log-format", "xml", "version"}} {
			r := w.run("", args...)
			if r.code != 2 || r.stdout != "" || len(lines(r.stderr)) != 1 {
				t.Errorf("switchboard %v: exit %d, stdout %q, stderr %q; want exit 2 and one line", args, r.code, r.stdout, r.stderr)
			}
		}
	})
}

func TestCLI(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	w := newWorld(t, "web", "api")

	t.Run("ask", func(t *testing.T) {
		// From web's directory the asker is web; the answer is written in api's.
		r := w.runIn(w.teamDir("web"), w.env, "", "ask", "api", "how does auth work?")
		if r.code != 0 || !strings.Contains(r.stdout, "how does auth work?") || !strings.Contains(r.stdout, "CWD: "+w.teamDir("api")) {
			t.Fatalf("ask: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		// The message from stdin, shell metacharacters and all.
		msg := "$(rm -rf /); `id` && echo 'quoted' | tee \"x\" > /dev/null"
		r = w.run(msg, "ask", "--from", "web", "api", "-")
		if r.code != 0 || !strings.Contains(r.stdout, msg) {
			t.Fatalf("ask -: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		// The id goes to stderr as soon as the message is accepted; the
		// answer goes to stdout only, once.
		if !regexp.MustCompile(`^switchboard: message \d+ accepted; .*switchboard status \d+`).MatchString(r.stderr) {
			t.Errorf("ask printed no message id on stderr: %q", r.stderr)
		}
		if strings.Contains(r.stderr, msg) || strings.Count(r.stdout, msg) != 1 {
			t.Errorf("the answer is printed more than once: stdout %q, stderr %q", r.stdout, r.stderr)
		}
		oneErrorLine(t, w.run("", "ask", "apii", "hello"), 1, "unknown team")
		oneErrorLine(t, w.run("", "ask", "api", "   "), 1, "message is empty")
		// A failing team: the API answers 500 and Claude gives up.
		r = w.run("", "ask", "--from", "web", "api", "FAIL 500")
		if r.code != 1 || r.stdout != "" || len(lines(r.stderr)) == 0 || !strings.HasPrefix(lines(r.stderr)[len(lines(r.stderr))-1], "switchboard: ") {
			t.Errorf("ask that fails: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		} else if last := lines(r.stderr)[len(lines(r.stderr))-1]; strings.Count(r.stderr, strings.TrimPrefix(last, "switchboard: ")) != 1 {
			t.Errorf("ask that fails prints its failure more than once: %q", r.stderr)
		}
	})

	t.Run("teams", func(t *testing.T) {
		r := w.run("", "teams")
		got := lines(r.stdout)
		if r.code != 0 || len(got) != 3 {
			t.Fatalf("teams: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if f := strings.Fields(got[0]); !slices.Equal(f, []string{"NAME", "WHERE", "PATH", "STATE", "SESSIONS"}) {
			t.Errorf("header %q", got[0])
		}
		// ask above left web->api and user->api... only web asked api.
		api := strings.Fields(got[1])
		if len(api) != 5 || api[0] != "api" || api[1] != "local" || api[2] != w.teamDir("api") || api[3] != "idle" || api[4] != "1" {
			t.Errorf("api row %q, want api local PATH idle 1", got[1])
		}
		web := strings.Fields(got[2])
		if len(web) != 5 || web[0] != "web" || web[3] != "stopped" || web[4] != "0" {
			t.Errorf("web row %q, want web ... stopped 0", got[2])
		}
	})

	var sessionID string
	t.Run("sessions", func(t *testing.T) {
		r := w.run("", "sessions")
		got := lines(r.stdout)
		if r.code != 0 || len(got) != 2 {
			t.Fatalf("sessions: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if f := strings.Fields(got[0]); !slices.Equal(f, []string{"FROM", "TO", "SESSION", "STATUS", "MESSAGES", "LAST-USED"}) {
			t.Errorf("header %q", got[0])
		}
		row := strings.Fields(got[1])
		if len(row) < 6 || row[0] != "web" || row[1] != "api" || row[3] != "active" || row[4] < "2" {
			t.Fatalf("row %q, want web api ID active and at least the 2 answered messages", got[1])
		}
		sessionID = row[2]
		if ls := w.run("", "sessions", "ls"); ls.stdout != r.stdout {
			t.Errorf("sessions ls %q differs from sessions %q", ls.stdout, r.stdout)
		}

		r = w.run("", "sessions", "show", sessionID)
		if r.code != 0 || !regexp.MustCompile(`(?m)^session:\s+`+sessionID+`$`).MatchString(r.stdout) ||
			!regexp.MustCompile(`(?m)^from:\s+web$`).MatchString(r.stdout) || !strings.Contains(r.stdout, "how does auth work?") {
			t.Errorf("sessions show: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		oneErrorLine(t, w.run("", "sessions", "show", "6e0ffbcb-09a6-42d6-b8b7-06f441de4ea7"), 1, "no session 6e0ffbcb-09a6-42d6-b8b7-06f441de4ea7")
		// A unique prefix is enough, and each question shows its answer.
		r = w.run("", "sessions", "show", sessionID[:8])
		if r.code != 0 || !strings.Contains(r.stdout, sessionID) ||
			!regexp.MustCompile(`(?m)^  Q: how does auth work\?\n  A: .*how does auth work\?`).MatchString(r.stdout) {
			t.Errorf("sessions show PREFIX: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		oneErrorLine(t, w.run("", "sessions", "show", "0000"), 1, "no session starts with 0000")

		// The daemon runs: rm goes through it.
		r = w.run("", "sessions", "rm", sessionID)
		if r.code != 0 || !strings.Contains(r.stdout, "removed session "+sessionID+" (web -> api)") {
			t.Fatalf("sessions rm: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if r := w.run("", "sessions"); len(lines(r.stdout)) != 1 {
			t.Errorf("sessions after rm: %q", r.stdout)
		}
		oneErrorLine(t, w.run("", "sessions", "rm", sessionID), 1, "no session")
	})

	t.Run("ask --timeout", func(t *testing.T) {
		r := w.run("", "ask", "--from", "api", "--timeout", "50ms", "web", "SLEEP 5s\nslow one")
		l := lines(r.stderr)
		if r.code != 1 || r.stdout != "" || len(l) != 2 || !strings.Contains(l[0], "accepted") ||
			!regexp.MustCompile(`^switchboard: message \d+ to web is (queued|running); run .switchboard status \d+. again later`).MatchString(l[1]) {
			t.Errorf("timed-out ask: exit %d, stdout %q, stderr %q; want the id, then how to get the answer", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("sessions rm without a daemon", func(t *testing.T) {
		if r := w.run("", "ask", "--from", "web", "api", "a new session"); r.code != 0 {
			t.Fatalf("ask: %q", r.stderr)
		}
		w.stopDaemon()
		r := w.run("", "sessions")
		var id string
		for _, l := range lines(r.stdout) {
			if f := strings.Fields(l); f[0] == "web" && f[1] == "api" {
				id = f[2]
			}
		}
		if id == "" || id == sessionID {
			t.Errorf("the removed session %s came back", id)
		}
		r = w.run("", "sessions", "rm", id)
		if r.code != 0 || !strings.Contains(r.stdout, "removed session "+id) {
			t.Fatalf("sessions rm: exit %d, %q %q", r.code, r.stdout, r.stderr)
		}
		if w.daemonPID() != 0 {
			t.Error("sessions rm started a daemon")
		}
		if r := w.run("", "sessions"); strings.Contains(r.stdout, id) {
			t.Errorf("sessions after rm: %q", r.stdout)
		}
	})
}

func TestDoctor(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	w := newWorld(t, "web", "api")
	// A team whose directory is gone: the broken one.
	if err := os.RemoveAll(w.teamDir("api")); err != nil {
		t.Fatal(err)
	}
	r := w.run("", "doctor")
	if r.code != 1 {
		t.Fatalf("doctor with a broken team: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if len(lines(r.stderr)) != 1 || !strings.Contains(r.stderr, "1 of ") {
		t.Errorf("doctor stderr %q, want one line counting one failure", r.stderr)
	}
	has := func(pattern string) {
		t.Helper()
		if !regexp.MustCompile(`(?m)^` + pattern).MatchString(r.stdout) {
			t.Errorf("doctor output has no line matching %q:\n%s", pattern, r.stdout)
		}
	}
	has(`TEAM\s+CHECK\s+RESULT\s+FIX$`)
	has(`api\s+path\s+FAIL: .*no such file or directory\s+create ` + regexp.QuoteMeta(w.teamDir("api")) + `, or fix teams\.api\.path in ` + regexp.QuoteMeta(w.config) + `$`)
	has(`web\s+path\s+ok: ` + regexp.QuoteMeta(w.teamDir("web")) + `\s+-$`)
	has(`web\s+claude\s+ok: ` + regexp.QuoteMeta(filepath.Join(w.root, "bin", "claude")) + `\s+-$`)
	has(`web\s+claude version\s+ok: 2\.1\.\d+ \(Claude Code\)\s+-$`)
	has(`\*\s+session store\s+ok: .*switchboard\.db: \d+ sessions`)

	// Healthy again: exit 0.
	if err := os.MkdirAll(w.teamDir("api"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := w.run("", "doctor"); r.code != 0 || strings.Contains(r.stdout, "FAIL") {
		t.Errorf("doctor with healthy teams: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestInstall(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	w := newWorld(t, "web")
	home := t.TempDir()
	project := t.TempDir()
	noClaude := []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
	want := mcpServer{Type: "stdio", Command: binary, Args: []string{"mcp", "--config", w.config}, Env: map[string]string{}}
	wantJSON, _ := json.Marshal(want)

	// Without the claude CLI: the documented file, merged.
	userFile := filepath.Join(home, ".claude.json")
	mustWrite(t, userFile, `{"theme":"dark","mcpServers":{"other":{"type":"stdio","command":"x","args":[],"env":{}}}}`, 0o600)
	r := w.runIn(project, noClaude, "", "install", "--dry-run")
	if r.code != 0 || strings.TrimSpace(r.stdout) != fmt.Sprintf("would write %s: mcpServers.switchboard = %s (the claude CLI is not on PATH)", userFile, wantJSON) {
		t.Errorf("install --dry-run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if data, _ := os.ReadFile(userFile); strings.Contains(string(data), "switchboard") {
		t.Error("--dry-run changed the file")
	}
	r = w.runIn(project, noClaude, "", "install")
	if r.code != 0 || !strings.Contains(r.stdout, "registered switchboard") {
		t.Fatalf("install: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	var doc struct {
		Theme      string               `json:"theme"`
		MCPServers map[string]mcpServer `json:"mcpServers"`
	}
	data, _ := os.ReadFile(userFile)
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Theme != "dark" || doc.MCPServers["other"].Command != "x" || !sameServer(doc.MCPServers["switchboard"], want) {
		t.Errorf("~/.claude.json after install:\n%s", data)
	}
	if fi, _ := os.Stat(userFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("~/.claude.json mode %o", fi.Mode().Perm())
	}
	r = w.runIn(project, noClaude, "", "install")
	if r.code != 0 || !strings.Contains(r.stdout, "already registered") {
		t.Errorf("second install: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}

	// Project scope writes ./.mcp.json.
	r = w.runIn(project, noClaude, "", "install", "--scope", "project")
	if r.code != 0 {
		t.Fatalf("install --scope project: %q", r.stderr)
	}
	if s, err := readServer(filepath.Join(project, ".mcp.json")); err != nil || s == nil || !sameServer(*s, want) {
		t.Errorf(".mcp.json entry %+v, %v", s, err)
	}

	// With the claude CLI on PATH: `claude mcp add`, and the result is what
	// Claude Code itself reads back.
	if testing.Short() {
		return // the fake claude has no `mcp add`; the full run checks it
	}
	binDir := filepath.Dir(w.claude)
	withClaude := []string{"HOME=" + t.TempDir(), "PATH=" + binDir + ":/usr/bin:/bin", "DISABLE_TELEMETRY=1", "DISABLE_AUTOUPDATER=1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"}
	r = w.runIn(project, withClaude, "", "install", "--dry-run")
	wantRun := fmt.Sprintf("would run: %s mcp add --scope user switchboard -- %s mcp --config %s", filepath.Join(binDir, "claude"), binary, w.config)
	if r.code != 0 || strings.TrimSpace(r.stdout) != wantRun {
		t.Errorf("install --dry-run with claude: exit %d, stdout %q, want %q; stderr %q", r.code, r.stdout, wantRun, r.stderr)
	}
	r = w.runIn(project, withClaude, "", "install")
	if r.code != 0 || !strings.Contains(r.stdout, "through "+filepath.Join(binDir, "claude")) {
		t.Fatalf("install with claude: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	home2 := strings.TrimPrefix(withClaude[0], "HOME=")
	if s, err := readServer(filepath.Join(home2, ".claude.json")); err != nil || s == nil || !sameServer(*s, want) {
		t.Errorf("claude mcp add wrote %+v, %v", s, err)
	}
	if r := w.runIn(project, withClaude, "", "install"); r.code != 0 || !strings.Contains(r.stdout, "already registered") {
		t.Errorf("second install with claude: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestRotateLog(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	dir := t.TempDir()
	log := filepath.Join(dir, "daemon.log")
	if err := rotateLog(log, 10); err != nil {
		t.Fatalf("no log yet: %v", err)
	}
	mustWrite(t, log, "small\n", 0o600)
	if err := rotateLog(log, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(log + ".1"); !os.IsNotExist(err) {
		t.Fatalf("a small log was rotated: %v", err)
	}
	mustWrite(t, log, "a line longer than ten bytes\n", 0o600)
	mustWrite(t, log+".1", "older\n", 0o600)
	if err := rotateLog(log, 10); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(log + ".1"); string(got) != "a line longer than ten bytes\n" {
		t.Fatalf("daemon.log.1 = %q, want the rotated log", got)
	}
	if _, err := os.Stat(log); !os.IsNotExist(err) {
		t.Fatalf("daemon.log still there after rotation: %v", err)
	}
}
