package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hoptrace"
)

// The hops a warm ask passes, in order, on each path (internal/hoptrace).
var (
	productHops = []string{hoptrace.ClientSend, hoptrace.ProxyIn, hoptrace.ProxyFwd, hoptrace.DaemonRead,
		hoptrace.HandlerStart, hoptrace.Enqueued, hoptrace.QueueRead, hoptrace.Delivering, hoptrace.TurnStart,
		hoptrace.TurnEnd, hoptrace.Finished, hoptrace.SendReturn, hoptrace.HandlerEnd, hoptrace.DaemonWrite,
		hoptrace.DaemonSent, hoptrace.ProxyBack, hoptrace.ProxyOut, hoptrace.ClientRecv}
	inprocHops = []string{hoptrace.ClientSend, hoptrace.Enqueued, hoptrace.QueueRead, hoptrace.Delivering,
		hoptrace.TurnStart, hoptrace.TurnEnd, hoptrace.Finished, hoptrace.ClientRecv}
)

// hopNames says what happens between the previous hop and the named one.
var hopNames = map[string]string{
	hoptrace.ProxyIn:      "MCP client encodes the call → stdin pipe → proxy reads the line",
	hoptrace.ProxyFwd:     "proxy: peek at the JSON, track the request in flight",
	hoptrace.DaemonRead:   "proxy writes to the unix socket → daemon reads the bytes",
	hoptrace.HandlerStart: "go-sdk: decode JSON-RPC, middleware (caller identity), validate and decode the arguments",
	hoptrace.Enqueued:     "handler → broker.Send: route, checks, store the message (one transaction)",
	hoptrace.QueueRead:    "hand-off to the pair's worker (poke)",
	hoptrace.Delivering:   "worker reads its queue head from the store",
	hoptrace.TurnStart:    "worker: record the delivery (store), reserve the process",
	hoptrace.TurnEnd:      "**Claude's turn** (user line written → result line read; the reply's duration)",
	hoptrace.Finished:     "worker: record the end of the turn and the answer (store)",
	hoptrace.SendReturn:   "hand-off to the waiting Send (waiter channel)",
	hoptrace.HandlerEnd:   "handler builds the tool result",
	hoptrace.DaemonWrite:  "go-sdk: encode the result, write it to the connection's out queue",
	hoptrace.DaemonSent:   "hand-off to the out queue's writer",
	hoptrace.ProxyBack:    "writer sends it on the unix socket → proxy reads the line",
	hoptrace.ProxyOut:     "proxy: peek at the JSON",
	hoptrace.ClientRecv:   "proxy writes to stdout → MCP client reads and decodes the result",
}

// timedAsk is one sample's window and Claude's turn as the reply gave it.
type timedAsk struct {
	t0, t1 time.Time
	reply  time.Duration // the reply's duration: whole milliseconds
}

// ownArm is an arm whose asks return Claude's turn as the broker timed
// it, so that switchboard's own time (latency − turn) can be told apart
// from Claude's, and whose asks pass the hops in seq.
type ownArm struct {
	*arm
	seq  []string
	asks []timedAsk
	res  *ownResult
}

func newOwnArm(name, path string, seq []string, ask func(ctx context.Context, i int) (time.Duration, error)) *ownArm {
	o := &ownArm{seq: seq}
	o.arm = &arm{name: name, path: path, do: func(ctx context.Context, i int) error {
		t0 := time.Now()
		turn, err := ask(ctx, i)
		t1 := time.Now()
		if err == nil && i >= 0 { // i < 0: warm-up
			o.asks = append(o.asks, timedAsk{t0, t1, turn})
		}
		return err
	}}
	return o
}

// ownResult is what an ownArm's samples and hop marks show.
type ownResult struct {
	own  samples // latency − Claude's turn
	turn samples // Claude's turn, from the marks (µs), else the reply
	// skew is the marks' turn − the reply's duration: in [0, 1 ms) when
	// the two are the same interval, the reply's truncated to whole ms.
	skew     samples
	hops     map[string]samples // per hop, the time since the hop before it
	complete int                // samples with every hop marked
}

// analyse gives each mark to the sample whose window holds it and, walking
// the arm's hop sequence, takes each hop's time from the first mark of its
// name after the hop before it.
func (o *ownArm) analyse(marks []hoptrace.Mark) {
	res := &ownResult{hops: map[string]samples{}}
	o.res = res
	for _, a := range o.asks {
		lo, hi := a.t0.UnixNano(), a.t1.UnixNano()
		i := sort.Search(len(marks), func(i int) bool { return marks[i].At >= lo })
		var in []hoptrace.Mark
		for ; i < len(marks) && marks[i].At <= hi; i++ {
			in = append(in, marks[i])
		}
		at := map[string]int64{hoptrace.ClientSend: lo}
		prev, ok := lo, true
		for _, name := range o.seq[1:] {
			t, found := int64(0), false
			if name == hoptrace.ClientRecv {
				t, found = hi, true
			}
			for _, m := range in {
				if !found && m.Name == name && m.At >= prev {
					t, found = m.At, true
				}
			}
			if !found {
				ok = false
				break
			}
			at[name], prev = t, t
		}
		turn := a.reply
		if s, e := at[hoptrace.TurnStart], at[hoptrace.TurnEnd]; s != 0 && e != 0 {
			turn = time.Duration(e - s)
			res.skew = append(res.skew, turn-a.reply)
		}
		res.turn = append(res.turn, turn)
		res.own = append(res.own, a.t1.Sub(a.t0)-turn)
		if !ok {
			continue
		}
		res.complete++
		for k, name := range o.seq[1:] {
			res.hops[name] = append(res.hops[name], time.Duration(at[name]-at[o.seq[k]]))
		}
	}
}

func (w *world) hopsPrefix() string { return filepath.Join(w.root, "hops", "h") }

// takeHops collects the hop marks recorded since the last take: those of
// this process (the in-process broker) and of each switchboard process
// pid, which writes them on SIGUSR2 (cmd/switchboard/profile.go); merged,
// oldest first.
func (w *world) takeHops(ctx context.Context, pids ...int) []hoptrace.Mark {
	marks, _ := hoptrace.Take()
	for _, pid := range pids {
		file := fmt.Sprintf("%s.%d", w.hopsPrefix(), pid)
		os.Remove(file)
		if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
			log.Printf("  hop marks of pid %d: %v", pid, err)
			continue
		}
		// The file appears whole (it is renamed into place).
		f, err := os.Open(file)
		for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline) && ctx.Err() == nil; {
			time.Sleep(10 * time.Millisecond)
			f, err = os.Open(file)
		}
		if err != nil {
			log.Printf("  hop marks of pid %d: %v", pid, err)
			continue
		}
		ms, err := hoptrace.Read(f)
		f.Close()
		if err != nil {
			log.Printf("  hop marks of pid %d: %v", pid, err)
		}
		marks = append(marks, ms...)
	}
	sort.Slice(marks, func(i, j int) bool { return marks[i].At < marks[j].At })
	return marks
}

// ownTable renders switchboard's own time per ask beside the latencies of
// a warm comparison whose arms[0] is the floor.
func ownTable(b *strings.Builder, title string, floor *arm, arms []*ownArm) {
	if floor == nil || len(floor.s) == 0 || len(arms) == 0 {
		return
	}
	f := floor.s.median()
	fmt.Fprintf(b, "**%s: switchboard's own time per ask** (latency − Claude's turn as the broker timed it; ", title)
	b.WriteString("ratio A = median latency / floor median, as above; ratio B = (floor median + own-time median) / floor median)\n\n")
	b.WriteString("| | own time: median (p10–p90, n) | Claude's turn in switchboard's process: median (p10–p90) | ratio A | ratio B | turn from the marks − reply's `duration` (min–max) |\n|---|---|---|---|---|---|\n")
	for _, o := range arms {
		r := o.res
		if r == nil || len(r.own) == 0 {
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s (%s–%s) | %s | %.3f× | %s |\n", o.name, r.own.summary(), ms(r.turn.median()),
			ms(r.turn.quantile(0.1)), ms(r.turn.quantile(0.9)), ratio(o.s, floor.s),
			float64(f+r.own.median())/float64(f), skewRange(r.skew, len(r.own)))
	}
	b.WriteString("\n")
}

func skewRange(s samples, n int) string {
	if len(s) == 0 {
		return "no marks"
	}
	return fmt.Sprintf("%s–%s (%d of %d samples)", msf(s.quantile(0)), msf(s.quantile(1)), len(s), n)
}

// num is a duration in milliseconds with two decimals, without the unit.
func num(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

// mean is the arithmetic mean; 0 for no samples.
func (s samples) mean() time.Duration {
	if len(s) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return sum / time.Duration(len(s))
}

// msf is a duration in milliseconds with two decimals.
func msf(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// hopTable renders the per-hop breakdown of the arms' asks: per hop, the
// median and p10–p90 of its time, one column per arm.
func hopTable(b *strings.Builder, arms []*ownArm) {
	var cols []*ownArm
	for _, o := range arms {
		if o.res != nil && o.res.complete > 0 {
			cols = append(cols, o)
		}
	}
	if len(cols) == 0 {
		return
	}
	b.WriteString("### Per hop\n\n")
	b.WriteString("Where a warm ask's time goes, hop by hop, on the samples of the tables above. Each switchboard process ")
	b.WriteString("(the `switchboard mcp` proxy, the daemon, the in-process broker) records the wall-clock time at which an ask passes ")
	b.WriteString("each hop (internal/hoptrace, on while SWITCHBOARD_HOPS is set: a clock read and an append per hop, about 20 per ask); ")
	b.WriteString("the MCP client's own call and return bound each sample. A hop's time is its mark minus the mark before it; ")
	b.WriteString("median (p10–p90) and mean over the samples whose every hop was marked, in ms. The hops are contiguous, so their means ")
	b.WriteString("add up to the mean latency (medians do not add up); the last rows give the whole.\n\n| hop (time since the previous one) |")
	for _, o := range cols {
		fmt.Fprintf(b, " %s (n=%d) |", o.name, o.res.complete)
	}
	b.WriteString("\n|---|")
	for range cols {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, name := range productHops[1:] {
		fmt.Fprintf(b, "| %s |", hopNames[name])
		for _, o := range cols {
			s, ok := o.res.hops[name]
			if !ok {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(b, " %s (%s–%s), mean %s |", num(s.median()), num(s.quantile(0.1)), num(s.quantile(0.9)), num(s.mean()))
		}
		b.WriteString("\n")
	}
	b.WriteString("| **switchboard's own time** (latency − Claude's turn) |")
	for _, o := range cols {
		s := o.res.own
		fmt.Fprintf(b, " **%s** (%s–%s), mean %s |", num(s.median()), num(s.quantile(0.1)), num(s.quantile(0.9)), num(s.mean()))
	}
	b.WriteString("\n| latency |")
	for _, o := range cols {
		fmt.Fprintf(b, " %s (%s–%s), mean %s |", num(o.s.median()), num(o.s.quantile(0.1)), num(o.s.quantile(0.9)), num(o.s.mean()))
	}
	b.WriteString("\n\n")
}

// progressTokens numbers the progress tokens of askAsClaude's calls.
var progressTokens atomic.Int64

// askAsClaude is send_message as Claude Code calls a tool: with a progress
// token in _meta (Claude Code passes onprogress to every MCP tool call), so
// the daemon sends the accepted notice and relays Claude's progress as it
// does for Claude Code. It returns Claude's turn as the broker timed it
// (the reply's duration, in whole ms).
func (c *client) askAsClaude(ctx context.Context, from, to, text string) (time.Duration, error) {
	p := &mcp.CallToolParams{Name: "send_message", Arguments: map[string]any{"toTeam": to, "fromTeam": from, "message": text, "timeout": 120000}}
	p.SetProgressToken(fmt.Sprintf("bench-%d", progressTokens.Add(1)))
	res, err := c.sess.CallTool(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("send_message: %w", err)
	}
	if res.IsError {
		return 0, fmt.Errorf("send_message: tool error: %s", resultText(res))
	}
	return turnOf(to, text, res)
}
