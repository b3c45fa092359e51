//go:build !linux

package local

// raiseNice does nothing where niceness belongs to the whole process, not
// to a thread: raising it before a fork would lower the broker's own
// priority too, the opposite of what it is for. Processes start at the
// broker's niceness there.
func raiseNice(n int) error { return nil }

// onMainThread is false: raiseNice changes no thread here.
func onMainThread() bool { return false }
