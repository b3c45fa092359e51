package local

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// maxNice is the lowest CPU priority Linux has.
const maxNice = 19

// raiseNice lowers the calling thread's CPU priority by n (nice(1)'s -n),
// capped at maxNice. Linux keeps a niceness per thread: who 0 is this thread
// alone, and the caller has locked itself to it.
func raiseNice(n int) error {
	// The raw getpriority returns 20 - nice, so that it is never negative.
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		return fmt.Errorf("read this thread's niceness: %w", err)
	}
	to := min(20-prio+n, maxNice)
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, to); err != nil {
		return fmt.Errorf("set this thread's niceness to %d: %w", to, err)
	}
	return nil
}

// onMainThread reports whether the calling thread is the process's first.
func onMainThread() bool { return unix.Gettid() == unix.Getpid() }
