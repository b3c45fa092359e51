package broker

import (
	"sync"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/models"
)

// Every answered ask passes every Stage once, in order, so that the
// benchmark's per-stage breakdown of switchboard's own time (internal/bench)
// adds up: a stage left out or reported out of order would show as a wait
// that is not there.
func TestStagesReportedInOrder(t *testing.T) {
	h := newHarness(t, fakeBackend, "", "web", "api")
	var mu sync.Mutex
	seen := map[uint64][]Stage{}
	at := map[uint64][]time.Time{}
	// Set before the first Send: the pair's worker starts with it.
	h.b.stages = func(id uint64, s Stage, when time.Time) {
		mu.Lock()
		defer mu.Unlock()
		seen[id] = append(seen[id], s)
		at[id] = append(at[id], when)
	}
	var ids []uint64
	for _, q := range []string{"first question", "second question"} {
		r := h.ask("web", "api", q)
		if r.Status != models.MessageAnswered {
			t.Fatalf("ask %q: %s %s", q, r.Status, r.Error)
		}
		ids = append(ids, r.MessageID)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		got := seen[id]
		if len(got) != len(StageNames) {
			t.Fatalf("message %d passed stages %v, want each of the %d once", id, got, len(StageNames))
		}
		for i, s := range got {
			if s != Stage(i) {
				t.Errorf("message %d: stage %d is %s, want %s", id, i, StageNames[s], StageNames[i])
			}
		}
		times := make([]time.Time, len(StageNames))
		for i, s := range got {
			times[s] = at[id][i]
		}
		for s := 1; s < len(times); s++ {
			if times[s].Before(times[s-1]) {
				t.Errorf("message %d: %s at %v, before %s at %v", id, StageNames[s], times[s], StageNames[s-1], times[s-1])
			}
		}
	}
}
