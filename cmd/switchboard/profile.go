package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"syscall"
)

// profileEnv, when set, lets a benchmark take a CPU profile of a running
// switchboard process (the daemon, or the `switchboard mcp` proxy) over a
// window it chooses: SIGUSR1 starts writing $SWITCHBOARD_CPUPROFILE.<pid>,
// SIGUSR2 ends it. Unset, nothing listens for the signals.
//
// traceEnv, when set as well, has the same window also write a runtime
// execution trace to $SWITCHBOARD_TRACE.<pid> (go tool trace): the CPU
// profile shows where CPU went, the trace where an ask waited (the store's
// one connection, the scheduler, a pipe). It is separate because tracing
// costs CPU of its own, which the benchmark's CPU figures must not include.
const (
	profileEnv = "SWITCHBOARD_CPUPROFILE"
	traceEnv   = "SWITCHBOARD_TRACE"
)

func init() {
	prefix := os.Getenv(profileEnv)
	if prefix == "" {
		return
	}
	tracePrefix := os.Getenv(traceEnv)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		var f, tf *os.File
		for s := range sigs {
			switch {
			case s == syscall.SIGUSR1 && f == nil:
				var err error
				f, err = os.Create(prefix + "." + strconv.Itoa(os.Getpid()))
				if err == nil {
					err = pprof.StartCPUProfile(f)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "switchboard: cpu profile:", err)
					f = nil
				}
				if tracePrefix != "" {
					tf, err = os.Create(tracePrefix + "." + strconv.Itoa(os.Getpid()))
					if err == nil {
						err = trace.Start(tf)
					}
					if err != nil {
						fmt.Fprintln(os.Stderr, "switchboard: execution trace:", err)
						tf = nil
					}
				}
			case s == syscall.SIGUSR2 && f != nil:
				pprof.StopCPUProfile()
				f.Close()
				f = nil
				if tf != nil {
					trace.Stop()
					tf.Close()
					tf = nil
				}
			}
		}
	}()
}
