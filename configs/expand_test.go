package configs

import (
	"strings"
	"testing"
)

// Nine levels of nine aliases each: 9^9 (387 million) nodes once expanded,
// from a file well under a kilobyte. The decoder walks aliases and merge
// keys as if written out, so such a file must be refused before decoding.
func TestAliasAmplificationRefused(t *testing.T) {
	setHome(t)
	laughs := func(first, ref string) string {
		var b strings.Builder
		b.WriteString("x-l0: &l0 " + first + "\n")
		for i := 1; i <= 8; i++ {
			b.WriteString("x-l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [")
			for j := range 9 {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString(strings.ReplaceAll(ref, "N", string(rune('0'+i-1))))
			}
			b.WriteString("]\n")
		}
		return b.String()
	}
	merges := func() string {
		// Each level's mapping merges nine copies of the one below; the
		// keys differ per copy only by level, so the walk is exponential.
		var b strings.Builder
		b.WriteString("x-m0: &m0 {grantPermission: \"no\"}\n")
		for i := 1; i <= 8; i++ {
			b.WriteString("x-m" + string(rune('0'+i)) + ": &m" + string(rune('0'+i)) + " {<<: [")
			for j := range 9 {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString("*m" + string(rune('0'+i-1)))
			}
			b.WriteString("]}\n")
		}
		return b.String()
	}
	tests := []struct {
		name, yaml string
		line       int
	}{
		{"sequence aliases", laughs(`["lol"]`, "*lN") + "teams:\n  web:\n    path: /w\n    description: *l8\n", 5},
		{"merge keys", merges() + "teams:\n  web:\n    <<: *m8\n    path: /w\n", 5},
		{"env map", laughs(`{a: b}`, "*lN") + "teams:\n  web:\n    path: /w\n    env: {A: *l8}\n", 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.yaml) > 1024 {
				t.Fatalf("test config is %d bytes, want it small", len(tc.yaml))
			}
			_, err := Parse([]byte(tc.yaml), "t.yaml")
			if err == nil {
				t.Fatal("Parse accepted the config, want it refused")
			}
			got := problems(t, err)
			if len(got) != 1 {
				t.Fatalf("problems = %q, want one", got)
			}
			want := "t.yaml:" + itoa(tc.line) + ": "
			if !strings.HasPrefix(got[0], want) || !strings.Contains(got[0], "expand") || !strings.Contains(got[0], "10000") {
				t.Errorf("problem = %q, want it at %s saying the aliases expand past 10000 nodes", got[0], want)
			}
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func TestAliasDepthRefused(t *testing.T) {
	setHome(t)
	var b strings.Builder
	b.WriteString("x-a0: &a0 x\n")
	for i := 1; i <= 40; i++ {
		b.WriteString("x-a" + itoa(i) + ": &a" + itoa(i) + " [*a" + itoa(i-1) + "]\n")
	}
	b.WriteString("teams:\n  web: {path: /w}\n")
	_, err := Parse([]byte(b.String()), "t.yaml")
	if err == nil {
		t.Fatal("Parse accepted 40 nested aliases, want them refused")
	}
	got := problems(t, err)
	if len(got) != 1 || !strings.HasPrefix(got[0], "t.yaml:") || !strings.Contains(got[0], "more than 32 deep") {
		t.Errorf("problems = %q, want one at a line saying aliases nest more than 32 deep", got)
	}
}

// Anchors used as intended, many times over, stay well inside the bound.
func TestManyPlainAliasesAccepted(t *testing.T) {
	setHome(t)
	var b strings.Builder
	b.WriteString("x-defaults: &d\n  grantPermission: \"no\"\n  env: {A: b, C: d}\n  idleTimeout: 5m\nteams:\n")
	for i := range 200 {
		b.WriteString("  t" + itoa(i) + ": {<<: *d, path: /t" + itoa(i) + "}\n")
	}
	c, err := Parse([]byte(b.String()), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Teams) != 200 || c.Teams["t7"].GrantPermission != "no" {
		t.Errorf("teams = %d, t7 = %+v", len(c.Teams), c.Teams["t7"])
	}
}
