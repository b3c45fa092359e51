package main

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// samples are durations measured for one arm of a comparison.
type samples []time.Duration

// quantile is the q-quantile (0..1) by linear interpolation between order
// statistics; 0 for no samples.
func (s samples) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := append(samples(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	pos := q * float64(len(c)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	frac := pos - float64(lo)
	return c[lo] + time.Duration(frac*float64(c[hi]-c[lo]))
}

func (s samples) median() time.Duration { return s.quantile(0.5) }

// summary is "median (p10–p90, n=N)" in milliseconds.
func (s samples) summary() string {
	if len(s) == 0 {
		return "no samples"
	}
	return fmt.Sprintf("%s (p10–p90 %s–%s, n=%d)", ms(s.median()), ms(s.quantile(0.1)), ms(s.quantile(0.9)), len(s))
}

// minus pairs the i-th samples of s and base (taken back to back in the same
// round) and returns their differences.
func (s samples) minus(base samples) samples {
	n := min(len(s), len(base))
	out := make(samples, n)
	for i := range n {
		out[i] = s[i] - base[i]
	}
	return out
}

// ratio is median(s)/median(base), as "1.23×".
func ratio(s, base samples) string {
	b := base.median()
	if b <= 0 || len(s) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(s.median())/float64(b))
}

// ms formats a duration in milliseconds, with one decimal under 100 ms.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if math.Abs(v) < 100 {
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}
