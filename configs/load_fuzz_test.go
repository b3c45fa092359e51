package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary text to the config loader. Whatever the text, it
// must not panic, and it must either return a usable config or refuse it
// with problems a person can find: each names the file and a line in it.
// The seed corpus is the examples, the iris fixture and testdata/fuzz.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("examples/*.yaml")
	more, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range append(seeds, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	env := map[string]string{"SET": "value", "EMPTY": "", "NUM": "10"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "/cfg/fuzz.yaml"
		lines := strings.Count(string(data), "\n") + 1
		located := func(kind string, p Problem) {
			if p.File != file || p.Line < 1 || p.Line > lines {
				t.Errorf("%s %q is not at a line of %s (1-%d)", kind, p, file, lines)
			}
			if p.Msg == "" {
				t.Errorf("%s %q says nothing", kind, p)
			}
		}
		c, err := parse(data, file, lookup)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error %v (%T) is not a *configs.Error with problems", err, err)
			}
			for _, p := range ce.Problems {
				located("problem", p)
			}
			return
		}
		if c == nil || len(c.Teams) == 0 {
			t.Fatalf("accepted config %+v has no teams", c)
		}
		for name, team := range c.Teams {
			if ValidTeamName(name) != nil || team == nil || team.Name != name || team.Path == "" {
				t.Errorf("accepted team %q = %+v", name, team)
			}
		}
		for _, w := range c.Warnings {
			located("warning", w)
		}
	})
}
