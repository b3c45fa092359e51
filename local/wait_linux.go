package local

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// awaitExit blocks until process pid has exited, without reaping it, so its
// process group id stays ours until the reaper says otherwise.
func awaitExit(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// procAttr puts Claude Code in a process group of its own, so Kill takes its
// children (tools, MCP servers) down with it, and has the kernel kill it if
// the broker dies: a restarted broker must not find the old process still
// writing the session it resumes.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
