package broker

import (
	"os"
	"runtime"
	"testing"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/proc/proctest"
)

// TestClaudeRunsAtConfiguredNiceness: every thread of a local team's Claude,
// a pair's process and a standby process alike, runs settings.claudeNice
// lower than the broker (the default when the key is left out, the
// broker's own when it is 0).
func TestClaudeRunsAtConfiguredNiceness(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("niceness per thread is Linux's")
	}
	t.Parallel()
	// The broker's niceness: its threads' least (a thread that forked a
	// lowered Claude stays lowered until that Claude exits).
	base := 19
	for _, n := range proctest.ThreadNices(t, os.Getpid()) {
		base = min(base, n)
	}
	tests := []struct {
		name     string
		settings string
		nice     int
	}{
		{"default", "", configs.DefaultClaudeNice},
		{"ten", "  claudeNice: 10", 10},
		{"seven", "  claudeNice: 7", 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, be backend) {
				h := newHarness(t, be, tc.settings, "web", "api")
				want := min(base+tc.nice, 19)
				// A standby of web (started ahead of need), and api's
				// process started for web's question (no standby there).
				h.withStandby("web", 1)
				sb := h.readyStandby("web", 1)[0]
				h.ask("web", "api", "which niceness?")
				cl := h.pairProcess("web", "api")
				if cl == nil {
					t.Fatal("web→api has no process after its answer")
				}
				for what, pid := range map[string]int{"the pair's claude": cl.p.Pid(), "web's standby claude": sb.cl.p.Pid()} {
					threads := proctest.ThreadNices(t, pid)
					if len(threads) == 0 {
						t.Fatalf("%s (pid %d) is not running", what, pid)
					}
					for tid, nice := range threads {
						if nice != want {
							t.Errorf("%s (pid %d): thread %d has niceness %d, want %d (broker's %d + claudeNice %d)", what, pid, tid, nice, want, base, tc.nice)
						}
					}
				}
			})
		})
	}
}
