package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/poll"
)

// cpuTime is this process's user and system CPU time so far: on a busy
// machine it varies far less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRelayCall measures the MCP relay alone: a client calls
// send_message through the `switchboard mcp` proxy (stdio pipes) and the
// daemon's socket and go-sdk server, with a progress token as Claude Code
// passes one, to a team that does not exist, so the broker answers at once
// with a tool error and neither the store nor Claude is on the path. The
// client writes and reads raw JSON lines, so the CPU per call it reports
// beside wall time is the proxy's and the daemon's (all three share this
// process). Run it under the bench lock, with -cpuprofile to see where the
// relay's CPU goes.
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
	// The client writes and reads raw lines, as Claude Code (Node) would:
	// the CPU measured is the proxy's and the daemon's alone.
	lines := bufio.NewReader(outR)
	roundTrip := func(line string) string {
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			b.Fatal(err)
		}
		if strings.Contains(line, `"method":"notifications/`) {
			return ""
		}
		resp, err := lines.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		return resp
	}
	roundTrip(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`)
	roundTrip(`{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}`)
	call := func(i int) {
		resp := roundTrip(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"send_message","arguments":{"toTeam":"nope","fromTeam":"web","message":"what does the auth middleware check?","timeout":120000},"_meta":{"progressToken":"bench-%d"}}}`, i+1, i))
		if !strings.Contains(resp, `"isError":true`) {
			b.Fatalf("call %d: %s", i, resp)
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
