package broker

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/claudetest"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
)

// cpuTime is this process's user and system CPU time so far: on a busy
// machine it varies far less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestWarmAskHotPath measures the broker's own time for a warm ask: Send to
// answer through the queue, the store (a SQLite file) and a running fake
// claude, whose turn is a fraction of a millisecond. It reports, never
// asserts; run it with SWITCHBOARD_HOTPATH=1 and -cpuprofile or -trace to see
// where the time goes.
func TestWarmAskHotPath(t *testing.T) {
	if os.Getenv("SWITCHBOARD_HOTPATH") == "" {
		t.Skip("a measurement: set SWITCHBOARD_HOTPATH=1")
	}
	h := newHarness(t, fakeBackend, "", "web", "api")
	ctx := context.Background()
	ask := func(i int) time.Duration {
		r, err := h.b.Send(ctx, SendRequest{From: "web", To: "api", Text: fmt.Sprintf("hot path %d", i), Wait: time.Minute})
		if err != nil || r.Status != "answered" {
			t.Fatalf("ask: %v %+v", err, r)
		}
		return r.Duration
	}
	ask(-1)
	var turn time.Duration
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		turn = 0
		cpu0 := cpuTime()
		for i := 0; b.Loop(); i++ {
			turn += ask(i)
		}
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "broker-cpu-µs/op")
		b.ReportMetric(float64(turn.Microseconds())/float64(b.N), "claude-µs/op")
	})
	t.Logf("warm ask, broker in process with the fake claude: %s %s", res.String(), res.MemString())
}

// TestFirstAskHotPath splits the first ask of a new pair that takes a
// standby process, beside a warm ask, with the real Claude Code and the
// fake Messages API: before Claude's turn (queue, session record, hand-over),
// Claude's turn up to its first API request, the rest of the turn, and after
// the turn (store, waiters). It reports, never asserts; run it with
// SWITCHBOARD_HOTPATH=1 (and SWITCHBOARD_HOTPATH_N for more samples).
func TestFirstAskHotPath(t *testing.T) {
	if os.Getenv("SWITCHBOARD_HOTPATH") == "" {
		t.Skip("a measurement: set SWITCHBOARD_HOTPATH=1")
	}
	n := 6
	if v, err := strconv.Atoi(os.Getenv("SWITCHBOARD_HOTPATH_N")); err == nil && v > 0 {
		n = v
	}
	var api *fakeapi.Server
	real := backend{"real", func(t *testing.T, root string) (string, []string, string) {
		bin := claudetest.Binary(t)
		api = fakeapi.New(t)
		env := append(claudetest.Env(t, api), "CLAUDE_CODE_MAX_RETRIES=0")
		return bin, env, claudetest.ConfigDir(env)
	}}
	teams := []string{"api", "warm", "bench"}
	for i := range n {
		teams = append(teams, fmt.Sprintf("a%02d", i))
	}
	h := newHarness(t, real, "", teams...)
	h.withStandby("api", 1)
	h.ask("bench", "warm", "warm-up")
	type split struct{ total, turn, toAPI time.Duration }
	measure := func(from, to, q string) split {
		n0 := api.Count()
		t0 := time.Now()
		r := h.ask(from, to, q)
		total := time.Since(t0)
		if r.Status != "answered" {
			t.Fatalf("ask %s->%s: %s %q", from, to, r.Status, r.Error)
		}
		s := split{total: total, turn: r.Duration}
		for _, req := range api.Requests()[n0:] {
			if req.Path == "/v1/messages" && !req.Side {
				s.toAPI = req.Time.Sub(t0)
				break
			}
		}
		return s
	}
	var warm, first []split
	for i := range n {
		h.readyStandby("api", 1)
		warm = append(warm, measure("bench", "warm", fmt.Sprintf("warm %d", i)))
		first = append(first, measure(fmt.Sprintf("a%02d", i), "api", fmt.Sprintf("first %d", i)))
		if _, err := h.b.Sleep(context.Background(), fmt.Sprintf("a%02d", i), "api", true); err != nil {
			t.Logf("sleep: %v", err)
		}
	}
	for i := range n {
		w, f := warm[i], first[i]
		t.Logf("warm total %6.1f ms turn %6.1f own %5.1f toAPI %6.1f | first total %6.1f ms turn %6.1f own %5.1f toAPI %6.1f",
			ms(w.total), ms(w.turn), ms(w.total-w.turn), ms(w.toAPI), ms(f.total), ms(f.turn), ms(f.total-f.turn), ms(f.toAPI))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
