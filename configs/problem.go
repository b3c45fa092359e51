package configs

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong (or ignored) in a config file, located by file,
// line and dotted key.
type Problem struct {
	File string
	Line int    // 1-based; a key missing from the file is at line 1; 0 for a config built in code
	Key  string // dotted path, e.g. "teams.api.path"
	Msg  string // what is wrong, then what to do in parentheses
}

// String formats the problem as FILE:LINE: key: message.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is a refused configuration. It holds every problem found, so a
// user can fix them all in one pass.
type Error struct {
	Problems []Problem
}

// Error lists the problems one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
