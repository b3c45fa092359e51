// Package sdkjson decodes JSON as the MCP Go SDK's internal JSON package
// does (github.com/segmentio/encoding/json, exact-case field names, nesting
// at most 1000 deep), without the 32 KiB buffer that package allocates on
// every call: it wraps each value in a json.Decoder, whose first read
// allocates that much, where Unmarshal here parses the value in place.
//
// The daemon and the broker use it on the path of every MCP call, where
// the SDK's own decoding was most of the relay's CPU and garbage (see
// BenchmarkRelayCall in daemon). Decoding must stay the SDK's, so that what
// a client sees does not change: same library, same flags, same bound.
package sdkjson

import (
	"fmt"

	"github.com/segmentio/encoding/json"
)

// maxDepth is the SDK's bound on nesting (internal/json.defaultMaxDepth).
const maxDepth = 1000

var errMaxDepth = fmt.Errorf("json: exceeded maximum nesting depth of %d", maxDepth)

// Unmarshal decodes the first JSON value of data into v, as the SDK's
// json.Unmarshal does; what follows that value is ignored, as there.
func Unmarshal(data []byte, v any) error {
	if err := checkMaxDepth(data); err != nil {
		return err
	}
	_, err := json.Parse(data, v, json.DontMatchCaseInsensitiveStructFields)
	return err
}

// checkMaxDepth is the SDK's: one pass counting '{' and '[' against '}' and
// ']' outside strings.
func checkMaxDepth(data []byte) error {
	var depth int
	var inString, escaped bool
	for _, b := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
			continue
		}
		switch b {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > maxDepth {
				return errMaxDepth
			}
		case '}', ']':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}
