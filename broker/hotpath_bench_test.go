package broker

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
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
