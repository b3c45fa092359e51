package main

import (
	"strings"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	s := samples{5, 1, 4, 2, 3} // sorted: 1..5
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0, 1}, {0.5, 3}, {1, 5}, {0.25, 2}, {0.1, 1}, // 0.1*4 = 0.4 -> 1 + 0.4 -> 1 (integer ns)
	}
	for _, tt := range tests {
		if got := s.quantile(tt.q); got != tt.want {
			t.Errorf("quantile(%v) = %d, want %d", tt.q, got, tt.want)
		}
	}
	if got := (samples{10, 20}).median(); got != 15 {
		t.Errorf("median of 10,20 = %d, want 15", got)
	}
	if got := (samples{}).median(); got != 0 {
		t.Errorf("median of nothing = %d", got)
	}
	if s[0] != 5 {
		t.Error("quantile sorted its receiver in place")
	}
}

func TestMinusAndRatio(t *testing.T) {
	a := samples{30 * time.Millisecond, 50 * time.Millisecond, 40 * time.Millisecond}
	b := samples{10 * time.Millisecond, 20 * time.Millisecond}
	d := a.minus(b)
	if len(d) != 2 || d[0] != 20*time.Millisecond || d[1] != 30*time.Millisecond {
		t.Errorf("minus = %v", d)
	}
	if got := ratio(a, b); got != "2.67×" {
		t.Errorf("ratio = %q, want 2.67×", got)
	}
	if got := ratio(a, nil); got != "–" {
		t.Errorf("ratio against nothing = %q", got)
	}
}

func TestMS(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Microsecond: "1.5 ms",
		-2 * time.Millisecond:   "-2.0 ms",
		2345 * time.Millisecond: "2345 ms",
	} {
		if got := ms(d); got != want {
			t.Errorf("ms(%v) = %q, want %q", d, got, want)
		}
	}
}

// The store section has one table per size dimension, each operation with
// its two sizes and growth, and the empty-store benchmarks on their own.
func TestStoreTableGroupsBySize(t *testing.T) {
	out := parseBench(`
BenchmarkListSessions/sessions=10000/team-2         100  1000000 ns/op  10 B/op  5 allocs/op
BenchmarkListSessions/sessions=100000/team-2        100  1500000 ns/op  10 B/op  5 allocs/op
BenchmarkWarmAskStatements-2                        100  2000000 ns/op  10 B/op  1121 allocs/op
BenchmarkMessages/messages=100000/MessageCounts_team-2   100  200000 ns/op
BenchmarkMessages/messages=1000000/MessageCounts_team-2  100  400000 ns/op
`)
	var b strings.Builder
	storeTable(&b, out)
	for _, want := range []string{
		"| ListSessions team | 1.00 ms (1.00 ms–1.00 ms) | 1.50 ms (1.50 ms–1.50 ms) | 1.50× |",
		"| WarmAskStatements (empty store) | 2.00 ms (2.00 ms–2.00 ms) (1121 allocs) | | |",
		"| MessageCounts team | 200 µs (200 µs–200 µs) | 400 µs (400 µs–400 µs) | 2.00× |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("store section lacks %q:\n%s", want, b.String())
		}
	}
}
