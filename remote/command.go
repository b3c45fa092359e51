package remote

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/proc"
)

// Markers the start script writes on stderr. They let Start tell "running"
// from "could not start" without guessing from timing, and carry the pid.
const (
	readyMarker  = "\x1eswitchboard-ready "
	noDirMarker  = "\x1eswitchboard-nodir"
	noCmdMarker  = "\x1eswitchboard-nocmd"
	exitNoDir    = 126
	exitNoCmd    = 127
	exitNoReady  = 125
	markerPrefix = "\x1eswitchboard-"
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// shellQuote quotes s for any POSIX shell: single quotes, with each ' closed,
// escaped and reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// quoteCommand quotes the program name. A "~/" path expands to the remote
// $HOME (quoted, so a home with spaces is safe); other names stay literal.
func quoteCommand(c string) string {
	if rest, ok := strings.CutPrefix(c, "~/"); ok {
		return `"$HOME"/` + shellQuote(rest)
	}
	return shellQuote(c)
}

// buildCommand makes the one command line sent in the SSH exec request. The
// outer line re-runs the user's login shell so PATH additions from
// ~/.profile apply (sshd runs exec commands without a login shell). The inner
// script checks the directory and the program, starts the program (env as a
// prefix) behind a stdin watcher, then reports readiness with its pid.
func buildCommand(spec proc.Spec) (string, error) {
	if !strings.HasPrefix(spec.Dir, "/") {
		return "", fmt.Errorf("directory %q is not absolute", spec.Dir)
	}
	if spec.Command == "" {
		return "", fmt.Errorf("no command")
	}
	if strings.HasPrefix(spec.Command, "-") {
		return "", fmt.Errorf("command %q starts with '-'", spec.Command)
	}
	for _, s := range append([]string{spec.Dir, spec.Command}, spec.Args...) {
		if strings.IndexByte(s, 0) >= 0 {
			return "", fmt.Errorf("NUL byte in %q", s)
		}
	}
	keys := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		if !envName.MatchString(k) {
			return "", fmt.Errorf("environment variable name %q is not valid", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return "", fmt.Errorf("NUL byte in environment variable %s", k)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)

	prog := quoteCommand(spec.Command)
	var check string
	if strings.Contains(spec.Command, "/") {
		check = fmt.Sprintf(`[ -f %s ] && [ -x %s ]`, prog, prog)
	} else {
		check = fmt.Sprintf(`command -v %s >/dev/null 2>&1`, prog)
	}

	var b strings.Builder
	// The login shell ran with stdout on stderr so ~/.profile chatter cannot
	// corrupt the stream-json on stdout; restore it.
	b.WriteString("exec 1>&3 3>&-\n")
	fmt.Fprintf(&b, "cd %s 2>/dev/null || { printf '%s\\n' >&2; exit %d; }\n", shellQuote(spec.Dir), noDirMarker, exitNoDir)
	fmt.Fprintf(&b, "%s || { printf '%s\\n' >&2; exit %d; }\n", check, noCmdMarker, exitNoCmd)
	// The program does not read the channel itself: a watcher copies the
	// channel into a FIFO the program reads, so that when the channel
	// closes (the daemon stopped or was killed, the connection was lost)
	// the program sees EOF and, if it has not exited within
	// stdinCloseGrace, is killed. Otherwise sshd leaves it running, and a
	// restarted daemon would resume its session in a second process.
	fmt.Fprintf(&b, `d=$(mktemp -d "${TMPDIR:-/tmp}/switchboard.XXXXXX") && mkfifo "$d/in" || exit %d`+"\n", exitNoReady)
	b.WriteString("exec 5<&0\n")
	if len(keys) > 0 {
		b.WriteString("env")
		for _, k := range keys {
			b.WriteString(" " + shellQuote(k+"="+spec.Env[k]))
		}
		b.WriteString(" ")
	}
	b.WriteString(prog)
	for _, a := range spec.Args {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString(` <"$d/in" 5<&- &` + "\n")
	b.WriteString("pid=$!\n")
	b.WriteString(`exec 4>"$d/in"; rm -rf "$d"` + "\n")
	// Ready, with the program's pid. If stderr is gone (Start gave up and
	// closed the channel), stop here even where SIGPIPE is ignored.
	fmt.Fprintf(&b, "printf '%s%%s\\n' \"$pid\" >&2 || { kill -KILL \"$pid\"; exit %d; }\n", readyMarker, exitNoReady)
	fmt.Fprintf(&b, `(cat <&5 >&4; exec 4>&- 5<&-; i=0; while kill -0 "$pid" 2>/dev/null; do [ "$i" -ge %d ] && { kill -KILL "$pid"; break; }; sleep 1; i=$((i+1)); done) </dev/null >/dev/null 2>&1 &`+"\n", int(stdinCloseGrace.Seconds()))
	// Only the watcher holds the channel's stdin and the FIFO now.
	b.WriteString("exec 4>&- 5<&- 0</dev/null\n")
	// The program's exit is the session's: a signal death is passed on.
	b.WriteString(`wait "$pid"; st=$?; [ "$st" -gt 128 ] && kill -s "$(kill -l "$st")" $$; exit "$st"`)
	return `exec "${SHELL:-/bin/sh}" -lc ` + shellQuote(b.String()) + ` 3>&1 1>&2`, nil
}

// stdinCloseGrace is how long a program may run on after its channel
// closed (to write its session file) before the host kills it.
const stdinCloseGrace = 10 * time.Second
