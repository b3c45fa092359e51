package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
)

// profileEnv, when set, lets a benchmark take a CPU profile of a running
// switchboard process (the daemon, or the `switchboard mcp` proxy) over a
// window it chooses: SIGUSR1 starts writing $SWITCHBOARD_CPUPROFILE.<pid>,
// SIGUSR2 ends it. Unset, nothing listens for the signals.
const profileEnv = "SWITCHBOARD_CPUPROFILE"

func init() {
	prefix := os.Getenv(profileEnv)
	if prefix == "" {
		return
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		var f *os.File
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
			case s == syscall.SIGUSR2 && f != nil:
				pprof.StopCPUProfile()
				f.Close()
				f = nil
			}
		}
	}()
}
