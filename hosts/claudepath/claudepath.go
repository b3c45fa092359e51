// Package claudepath knows where Claude Code keeps a session's transcript:
// <config dir>/projects/<escaped working directory>/<session id>.jsonl.
package claudepath

import (
	"path"
	"strconv"
	"strings"
	"unicode/utf16"
)

// maxEscaped is the longest project folder name Claude Code uses as is;
// longer names are cut and given a hash suffix.
const maxEscaped = 200

// Escape turns an absolute directory into the name Claude Code gives its
// project folder: every UTF-16 code unit that is not an ASCII letter or digit
// becomes '-' ("/tmp/a.b_c d/x-y" becomes "-tmp-a-b-c-d-x-y", an emoji two
// dashes). A name longer than 200 characters is cut to 200 and suffixed with
// "-" and the base-36 absolute value of the path's 32-bit Java-style string
// hash, as Claude Code 2.1.332 does.
func Escape(dir string) string {
	var b strings.Builder
	var h int32
	for _, u := range utf16.Encode([]rune(dir)) {
		if 'a' <= u && u <= 'z' || 'A' <= u && u <= 'Z' || '0' <= u && u <= '9' {
			b.WriteByte(byte(u))
		} else {
			b.WriteByte('-')
		}
		h = 31*h + int32(u) // wraps like JavaScript's |0
	}
	s := b.String()
	if len(s) <= maxEscaped {
		return s
	}
	abs := int64(h)
	if abs < 0 {
		abs = -abs
	}
	return s[:maxEscaped] + "-" + strconv.FormatInt(abs, 36)
}

// SessionFile is the transcript of session id run in directory cwd, under
// Claude Code's config directory. Paths are slash-separated: they may name a
// file on a remote host.
func SessionFile(configDir, cwd, id string) string {
	return path.Join(configDir, "projects", Escape(cwd), id+".jsonl")
}
