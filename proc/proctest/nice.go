package proctest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ThreadNices returns the niceness of every thread of process pid on this
// machine, by thread id: field 19 of /proc/PID/task/TID/stat, which Linux
// keeps per thread. A thread that ends while it is read is left out. It is
// for runners whose processes run here.
func ThreadNices(t testing.TB, pid int) map[int]int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/[0-9]*", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of pid %d: none found in /proc (%v)", pid, err)
	}
	out := map[int]int{}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(task, "stat"))
		if err != nil {
			continue // the thread ended
		}
		// The command name (field 2) may hold spaces and parentheses; the
		// fields after its last ")" start at field 3.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 17 {
			t.Fatalf("%s/stat: %d fields after the name, want at least 17: %q", task, len(f), s)
		}
		nice, err := strconv.Atoi(f[16])
		if err != nil {
			t.Fatalf("%s/stat: niceness %q: %v", task, f[16], err)
		}
		tid, _ := strconv.Atoi(filepath.Base(task))
		out[tid] = nice
	}
	return out
}
