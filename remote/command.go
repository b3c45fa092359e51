package remote

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

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
// script checks the directory and the program, reports readiness with its
// pid (which exec keeps), then execs the program with the env as a prefix.
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
	// If stderr is gone (Start gave up and closed the channel), stop here
	// even where SIGPIPE is ignored.
	fmt.Fprintf(&b, "printf '%s%%s\\n' \"$$\" >&2 || exit %d\n", readyMarker, exitNoReady)
	b.WriteString("exec ")
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
	return `exec "${SHELL:-/bin/sh}" -lc ` + shellQuote(b.String()) + ` 3>&1 1>&2`, nil
}
