package claudepath

import (
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	long := "/tmp/pr/U/" + strings.Repeat("a", 250)
	tests := []struct {
		dir, want string
	}{
		// All cases below were read off the folders Claude Code 2.1.332 created.
		{"/tmp/a.b_c d/x-y", "-tmp-a-b-c-d-x-y"},
		{"/tmp/pr/A/work", "-tmp-pr-A-work"},
		{"/tmp/pr/U/ü😀x", "-tmp-pr-U----x"}, // ü is one UTF-16 unit, 😀 two
		{long, "-tmp-pr-U-" + strings.Repeat("a", 190) + "-8ytfr4"},
	}
	for _, tt := range tests {
		if got := Escape(tt.dir); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.dir, got, tt.want)
		}
	}
}

func TestSessionFile(t *testing.T) {
	got := SessionFile("/h/.claude", "/srv/my.app", "11111111-1111-4111-8111-111111111111")
	want := "/h/.claude/projects/-srv-my-app/11111111-1111-4111-8111-111111111111.jsonl"
	if got != want {
		t.Errorf("SessionFile = %q, want %q", got, want)
	}
}

func TestEscapeMore(t *testing.T) {
	long := "/" + strings.Repeat("a", 250)
	tests := []struct{ dir, want string }{
		{"/tmp/a.b_c d/x-y", "-tmp-a-b-c-d-x-y"},
		{"/home/me/Code2", "-home-me-Code2"},
		{"/tmp/ü", "-tmp--"},
		{"/tmp/🚀", "-tmp---"}, // a surrogate pair: two UTF-16 units
	}
	for _, tc := range tests {
		if got := Escape(tc.dir); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.dir, got, tc.want)
		}
	}
	got := Escape(long)
	if len(got) <= 201 || got[:200] != "-"+strings.Repeat("a", 199) || got[200] != '-' {
		t.Errorf("Escape(long) = %q, want 200 characters, a dash and a hash", got)
	}
}
