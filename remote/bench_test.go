package remote

import (
	"testing"

	"github.com/switchboard-mcp/switchboard/proc"
)

// BenchmarkStartWait measures one remote program start-to-exit over the
// pool's shared connection (in-process server, so it is the client's cost
// plus a local /bin/sh), and checks the pool dialled once for all of them.
func BenchmarkStartWait(b *testing.B) {
	srv := newTestServer(b)
	pool := newTestPool(b)
	r := pool.Runner(srv.target(b))
	spec := proc.Spec{Dir: "/", Command: "true"}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := run(b, r, spec, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if pool.Dials() != 1 {
		b.Errorf("dials = %d, want 1", pool.Dials())
	}
	b.ReportMetric(float64(pool.Dials()), "dials")
}
