//go:build !linux

package local

import "syscall"

// awaitExit returns at once where waitid(WNOWAIT) is unavailable; Kill then
// relies on the tiny window between reaping and marking the process exited.
func awaitExit(pid int) {}

// procAttr puts Claude Code in a process group of its own, so Kill takes its
// children down with it.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
