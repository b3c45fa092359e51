package main

import (
	"strings"
	"testing"
	"time"
)

// The goals table judges each goal from the run's own figures: a warm ask
// whose own time keeps (floor + own) / floor within 1.05 is met, one just
// past it is not, and a goal the run did not measure has no row.
func TestGoalsJudgeTheRunsFigures(t *testing.T) {
	ms := func(v ...float64) samples {
		var s samples
		for _, x := range v {
			s = append(s, time.Duration(x*float64(time.Millisecond)))
		}
		return s
	}
	tests := []struct {
		name string
		own  float64
		want string
	}{
		{"within", 2.4, "| **yes** |"},
		{"past", 2.6, "| no |"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			full := &ownArm{arm: &arm{s: ms(52, 53)}, res: &ownResult{own: ms(tc.own)}}
			r := &report{
				warmLocalArms: []*arm{{s: ms(50)}, {}, full.arm},
				warmLocalOwn:  []*ownArm{{}, full},
			}
			var b strings.Builder
			r.writeGoals(&b)
			var line string
			for _, l := range strings.Split(b.String(), "\n") {
				if strings.HasPrefix(l, "| warm ask, local") {
					line = l
				}
			}
			if !strings.Contains(line, tc.want) {
				t.Errorf("own time %.1f ms on a 50 ms floor: row %q, want %q", tc.own, line, tc.want)
			}
			if strings.Contains(b.String(), "over SSH") || strings.Contains(b.String(), "20 teams") {
				t.Errorf("rows for goals the run did not measure:\n%s", b.String())
			}
		})
	}
}
