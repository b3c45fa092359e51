package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"syscall"

	"github.com/switchboard-mcp/switchboard/internal/hoptrace"
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
//
// hopsEnv, when set, records from the start when each ask passes each hop
// of the warm path (package hoptrace: a timestamp per hop, no CPU profile),
// and every SIGUSR2 writes the marks recorded since the last one to
// $SWITCHBOARD_HOPS.<pid>, replacing that file whole, so that a reader
// that sees the file sees all of it.
const (
	profileEnv = "SWITCHBOARD_CPUPROFILE"
	traceEnv   = "SWITCHBOARD_TRACE"
	hopsEnv    = "SWITCHBOARD_HOPS"
)

func init() {
	prefix, hopsPrefix := os.Getenv(profileEnv), os.Getenv(hopsEnv)
	if prefix == "" && hopsPrefix == "" {
		return
	}
	if hopsPrefix != "" {
		hoptrace.Enable()
	}
	tracePrefix := os.Getenv(traceEnv)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		var f, tf *os.File
		for s := range sigs {
			switch {
			case s == syscall.SIGUSR1 && f == nil && prefix != "":
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
			case s == syscall.SIGUSR2:
				if f != nil {
					pprof.StopCPUProfile()
					f.Close()
					f = nil
					if tf != nil {
						trace.Stop()
						tf.Close()
						tf = nil
					}
				}
				if hopsPrefix != "" {
					if err := writeHops(hopsPrefix + "." + strconv.Itoa(os.Getpid())); err != nil {
						fmt.Fprintln(os.Stderr, "switchboard: hop marks:", err)
					}
				}
			}
		}
	}()
}

// writeHops writes the hop marks taken since the last call to path, by
// way of a temporary file renamed over it.
func writeHops(path string) error {
	marks, dropped := hoptrace.Take()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	err = hoptrace.Write(f, marks)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if dropped > 0 {
		fmt.Fprintf(os.Stderr, "switchboard: %d hop marks dropped (more than the buffer holds between two SIGUSR2)\n", dropped)
	}
	return os.Rename(tmp, path)
}
