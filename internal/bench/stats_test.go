package main

import (
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
