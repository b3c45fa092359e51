// Package poll is the one way tests wait for state: poll a condition until
// a generous deadline, never sleep a fixed time and hope.
package poll

import (
	"testing"
	"time"
)

// Deadline bounds a wait; only a broken test ever reaches it.
const Deadline = 60 * time.Second

// Until polls cond every 20ms and fails the test, naming what it waited
// for, when cond is still false at the deadline.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Deadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
