package main

import (
	"os"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/models"
)

// stageLog keeps the times each message passed each broker.Stage while on
// (the load phase's timed switchboard rounds), for the per-stage breakdown
// of switchboard's own time.
type stageLog struct {
	on atomic.Bool
	mu sync.Mutex
	at map[uint64]*[len(broker.StageNames)]time.Time
}

func (l *stageLog) record(id uint64, s broker.Stage, at time.Time) {
	if !l.on.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.at == nil {
		l.at = map[uint64]*[len(broker.StageNames)]time.Time{}
	}
	t := l.at[id]
	if t == nil {
		t = new([len(broker.StageNames)]time.Time)
		l.at[id] = t
	}
	t[s] = at
}

// stageSpan is one row of the breakdown: the wait from stage from to stage to.
type stageSpan struct {
	from, to broker.Stage
	what     string
}

var stageSpans = []stageSpan{
	{broker.StageSend, broker.StageStored, "Send: route the pair, EnqueueMessage (an INSERT, group-committed)"},
	{broker.StageStored, broker.StageHead, "hand-off to the pair's worker, QueueHead (a SELECT on the read pool)"},
	{broker.StageHead, broker.StageBegun, "BeginTurn (message running, session busy: two UPDATEs, group-committed)"},
	{broker.StageBegun, broker.StageWritten, "to the turn (process check)"},
	{broker.StageWritten, broker.StageResult, "Claude's turn: stdin written … result line read (not switchboard's)"},
	{broker.StageResult, broker.StageEnded, "EndTurn (an UPDATE … RETURNING, group-committed)"},
	{broker.StageEnded, broker.StageFinished, "CompleteMessage (an UPDATE … RETURNING, group-committed)"},
	{broker.StageFinished, broker.StageReplied, "waiter woken, Send returns"},
}

// stageBreakdown is the per-stage table of one set of asks.
type stageBreakdown struct {
	n     int
	spans []samples // per stageSpans row
	own   samples   // (replied − send) − turn
	// Counters over the same rounds, per ask.
	connWaits    float64       // store calls that waited for the connection
	connWait     time.Duration // time they waited, in total per ask
	runDelay     time.Duration // OS: the process's threads runnable, not running
	schedP50     time.Duration // Go: goroutine runnable → running
	schedP99     time.Duration
	haveRunDelay bool
	gc           models.GroupCommitStats // over all asks
}

func (l *stageLog) breakdown() *stageBreakdown {
	l.mu.Lock()
	defer l.mu.Unlock()
	bd := &stageBreakdown{spans: make([]samples, len(stageSpans))}
	for _, t := range l.at {
		complete := true
		for _, v := range t {
			complete = complete && !v.IsZero()
		}
		if !complete {
			continue // failed, or reached the broker outside the rounds
		}
		bd.n++
		for i, s := range stageSpans {
			bd.spans[i] = append(bd.spans[i], t[s.to].Sub(t[s.from]))
		}
		turn := t[broker.StageResult].Sub(t[broker.StageWritten])
		bd.own = append(bd.own, t[broker.StageReplied].Sub(t[broker.StageSend])-turn)
	}
	return bd
}

// counters are process-wide figures read before and after the timed
// rounds: the store's connection pool, the OS's run delay of this
// process's threads, and the Go scheduler's latency histogram.
type counters struct {
	gc        models.GroupCommitStats
	connWaits int64
	connWait  time.Duration
	runDelay  time.Duration
	sched     *metrics.Float64Histogram
}

const schedLatencies = "/sched/latencies:seconds"

func readCounters(b *inproc) counters {
	st := b.sqlStats()
	c := counters{gc: b.store.GroupCommitStats(), connWaits: st.WaitCount, connWait: st.WaitDuration, runDelay: runDelay()}
	s := []metrics.Sample{{Name: schedLatencies}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindFloat64Histogram {
		c.sched = s[0].Value.Float64Histogram()
	}
	return c
}

// addCounters adds what happened between a and z to bd's totals (per ask
// once finish divides).
type counterSum struct {
	gc        models.GroupCommitStats
	connWaits int64
	connWait  time.Duration
	runDelay  time.Duration
	counts    []uint64
	buckets   []float64
}

func (s *counterSum) add(a, z counters) {
	s.gc.Batches += z.gc.Batches - a.gc.Batches
	s.gc.Writes += z.gc.Writes - a.gc.Writes
	s.gc.Wait += z.gc.Wait - a.gc.Wait
	s.connWaits += z.connWaits - a.connWaits
	s.connWait += z.connWait - a.connWait
	s.runDelay += z.runDelay - a.runDelay
	if a.sched == nil || z.sched == nil {
		return
	}
	if s.counts == nil {
		s.counts = make([]uint64, len(z.sched.Counts))
		s.buckets = z.sched.Buckets
	}
	for i := range z.sched.Counts {
		s.counts[i] += z.sched.Counts[i] - a.sched.Counts[i]
	}
}

// quantile of the summed histogram: the upper bound of the bucket holding it.
func (s *counterSum) quantile(q float64) time.Duration {
	var total uint64
	for _, c := range s.counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	want := uint64(q * float64(total))
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen > want {
			return time.Duration(s.buckets[i+1] * float64(time.Second))
		}
	}
	return 0
}

func (bd *stageBreakdown) finish(s *counterSum, asks int) {
	if asks == 0 {
		return
	}
	bd.gc = s.gc
	bd.connWaits = float64(s.connWaits) / float64(asks)
	bd.connWait = s.connWait / time.Duration(asks)
	bd.runDelay = s.runDelay / time.Duration(asks)
	bd.haveRunDelay = s.runDelay > 0
	bd.schedP50, bd.schedP99 = s.quantile(0.5), s.quantile(0.99)
}

// runDelay is runDelayOf this process.
func runDelay() time.Duration { return runDelayOf(os.Getpid()) }

func (bd *stageBreakdown) write(p func(string, ...any)) {
	if bd == nil || bd.n == 0 {
		return
	}
	p("**Where switchboard's own time goes** (in process, the switchboard rounds above; %d asks). ", bd.n)
	p("The broker reports each message's passing of each stage (broker.Options.Stages); each row is the wait between two stages, ")
	p("so the rows but Claude's turn add up to the own time. A store call's row is its wall time: waiting for the store's one SQLite ")
	p("writer (the four writes queue in the store's group committer, and the reads share a read-only pool), running the SQL, ")
	p("and waiting for a CPU while doing either.\n\n")
	p("| stage | p50 | p90 | p99 |\n|---|---|---|---|\n")
	for i, s := range stageSpans {
		v := bd.spans[i]
		p("| %s | %s | %s | %s |\n", s.what, ms(v.quantile(0.5)), ms(v.quantile(0.9)), ms(v.quantile(0.99)))
	}
	p("| **own time** (Send called … returned, minus Claude's turn) | **%s** | %s | **%s** |\n\n", ms(bd.own.quantile(0.5)), ms(bd.own.quantile(0.9)), ms(bd.own.quantile(0.99)))
	p("Over the same rounds: ")
	if bd.gc.Writes > 0 {
		p("the group committer took %d writes in %d batches (%.1f a batch), which waited %s each on average before their batch began; ",
			bd.gc.Writes, bd.gc.Batches, float64(bd.gc.Writes)/float64(max(bd.gc.Batches, 1)), ms(bd.gc.Wait/time.Duration(bd.gc.Writes)))
	}
	p("per ask, %.1f store calls waited for a database/sql connection, %s in all (DBStats); ", bd.connWaits, ms(bd.connWait))
	if bd.haveRunDelay {
		p("this process's threads were runnable but not running (waiting for a CPU, /proc/self/task/*/schedstat) for %s; ", ms(bd.runDelay))
	}
	p("a runnable goroutine waited for the Go scheduler %s at p50, %s at p99 (runtime/metrics %s).\n\n", ms(bd.schedP50), ms(bd.schedP99), schedLatencies)
}
