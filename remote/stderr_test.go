package remote

import (
	"io"
	"strings"
	"testing"
)

// TestStderrMarkerAmidProgramOutput: the program runs before the start
// script prints its ready marker, so its stderr can come first, on the
// marker's line or in a long run without a newline, and writes can split
// the marker. The marker must still be found and the program's bytes kept.
func TestStderrMarkerAmidProgramOutput(t *testing.T) {
	long := strings.Repeat("x", 3*tailMax)
	for _, tc := range []struct {
		name   string
		writes []string
		want   string // the program's stderr as a reader sees it
	}{
		{"marker first", []string{readyMarker + "42\n", "it broke\n"}, "it broke\n"},
		{"on the marker's line", []string{"partial", readyMarker + "42\n", " more\n"}, "partial more\n"},
		{"after a long line", []string{long, readyMarker + "42\n", "end\n"}, long + "end\n"},
		{"marker split", []string{long + readyMarker[:5], readyMarker[5:] + "4", "2\nend\n"}, long + "end\n"},
		{"profile chatter first", []string{"welcome\n", readyMarker + "42\n"}, "welcome\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newStderrBuf()
			for _, w := range tc.writes {
				b.Write([]byte(w))
			}
			select {
			case <-b.ready:
			default:
				t.Fatal("ready marker not seen")
			}
			if pid, _, _ := b.state(); pid != 42 {
				t.Errorf("pid %d, want 42", pid)
			}
			b.closeWrite()
			got, _ := io.ReadAll(b)
			if string(got) != tc.want {
				t.Errorf("stderr %q…, want %q…", clip(string(got)), clip(tc.want))
			}
		})
	}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:20] + "…" + s[len(s)-20:]
	}
	return s
}
