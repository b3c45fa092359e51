package daemon

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/poll"
)

// cpuTime is this process's user and system CPU time so far: on a busy
// machine it varies far less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRelayCall measures the MCP relay alone: an MCP client calls
// send_message through the `switchboard mcp` proxy (stdio pipes) and the
// daemon's socket and go-sdk server, with a progress token as Claude Code
// passes one, to a team that does not exist, so the broker answers at once
// with a tool error and neither the store nor Claude is on the path. It
// reports CPU per call beside wall time (the proxy, the daemon and the
// client share this process); run it under the bench lock, with
// -cpuprofile to see where the relay's CPU goes.
func BenchmarkRelayCall(b *testing.B) {
	dir := shortDir(b)
	socket := filepath.Join(dir, "run", "broker.sock")
	lock, err := Acquire(socket)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lock.Release() })
	quiet := slog.New(slog.DiscardHandler)
	br := newBrokerLog(b, dir, quiet)
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(sctx, Options{Lock: lock, Broker: br, Version: "test", Logger: quiet}) }()
	b.Cleanup(func() { stop(); <-served })
	poll.Until(b, "the daemon to listen", func() bool { return Running(context.Background(), socket) })
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Proxy(ctx, ProxyOptions{Socket: socket, Caller: "web", In: inR, Out: outW, Logger: quiet})
	}()
	b.Cleanup(func() {
		inW.Close()
		cancel()
		<-done
	})
	var sess *mcp.ClientSession
	c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	sess, err = c.Connect(ctx, &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sess.Close() })
	call := func(i int) {
		p := &mcp.CallToolParams{Name: "send_message", Arguments: map[string]any{"toTeam": "nope", "fromTeam": "web", "message": "what does the auth middleware check?", "timeout": 120000}}
		p.SetProgressToken(i)
		res, err := sess.CallTool(ctx, p)
		if err != nil || !res.IsError {
			b.Fatalf("call: %v %+v", err, res)
		}
	}
	call(-1)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		call(i)
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}
