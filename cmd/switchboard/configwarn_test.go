package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Config warnings come out through the command's own slog handler, so
// --log-format json makes them JSON like every other line.
func TestConfigWarningsUseLogFormat(t *testing.T) {
	t.Parallel() // its own world: temp dir, socket, daemon
	dir := t.TempDir()
	cfg := filepath.Join(dir, "switchboard.yaml")
	yaml := "settings:\n  socket: " + filepath.Join(dir, "s.sock") + "\n  database: {path: " + filepath.Join(dir, "db") + "}\n" +
		"teams:\n  web:\n    path: " + dir + "\n    colour: red\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	a := &app{configFlag: cfg, logFormat: "json", stdout: &bytes.Buffer{}, stderr: &stderr}
	if _, _, err := a.loadConfig(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("stderr = %q, want one warning line", stderr.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("warning %q is not a JSON log line: %v", lines[0], err)
	}
	if rec["level"] != "WARN" || rec["file"] != cfg || rec["line"] != float64(7) || rec["key"] != "teams.web.colour" ||
		!strings.Contains(rec["reason"].(string), "unknown key") {
		t.Errorf("warning record = %v", rec)
	}
}
