package configs

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// valueError is a bad scalar value; the decoder turns it into a Problem at
// the value's line, and its Error text still carries the line for callers
// that use yaml.Unmarshal directly.
type valueError struct {
	Line int
	Msg  string
}

func (e *valueError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// UnmarshalYAML accepts a Go duration ("90s", "1h30m") or a whole number of
// milliseconds (120000), which is how iris-mcp writes every timeout.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	const hint = `(write a duration like "90s" or "2m", or whole milliseconds like 120000)`
	if n.Kind != yaml.ScalarNode {
		return &valueError{n.Line, "want a duration, got a " + kindName(n) + " " + hint}
	}
	s := strings.TrimSpace(n.Value)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return &valueError{n.Line, fmt.Sprintf("%s is negative %s", s, hint)}
		}
		if ms > math.MaxInt64/int64(time.Millisecond) {
			return &valueError{n.Line, fmt.Sprintf("%s milliseconds is too long %s", s, hint)}
		}
		d.Duration = time.Duration(ms) * time.Millisecond
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &valueError{n.Line, fmt.Sprintf("%q is not a duration %s", n.Value, hint)}
	}
	if v < 0 {
		return &valueError{n.Line, fmt.Sprintf("%s is negative %s", s, hint)}
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the Go form ("2m0s"), which UnmarshalYAML reads back.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "value"
	}
}
