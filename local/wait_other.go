//go:build !linux

package local

// awaitExit returns at once where waitid(WNOWAIT) is unavailable; Kill then
// relies on the tiny window between reaping and marking the process exited.
func awaitExit(pid int) {}
