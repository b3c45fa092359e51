// Package configs loads switchboard's YAML configuration: it finds the file,
// interpolates environment variables, applies defaults and refuses a bad
// config with every problem located by file, line and key. An iris-mcp
// config.yaml loads unchanged.
package configs

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads, interpolates, defaults and validates the config file at path.
// A refused config returns an *Error listing every problem.
func Load(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("load config %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(data, abs)
}

// Parse builds a Config from YAML text, taking ${VAR} values from the
// process environment. file names the source in error messages, and its
// directory is where relative local paths are resolved; with file "" they
// are refused. A refused config returns an *Error listing every problem.
func Parse(data []byte, file string) (*Config, error) {
	return parse(data, file, os.LookupEnv)
}

func parse(data []byte, file string, lookup func(string) (string, bool)) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{Problems: []Problem{syntaxProblem(data, file, err)}}
	}
	d := &decoder{file: file, lookup: lookup, lines: map[string]int{}}
	if !d.checkAliases(&doc) {
		return nil, &Error{Problems: d.problems}
	}
	c := &Config{File: file}
	if root := unalias(documentRoot(&doc)); !isNull(root) {
		if root.Kind != yaml.MappingNode {
			d.problem(root.Line, "", "the file must be a mapping with settings: and teams:, got %s", describe(root))
		} else {
			d.object(root, "", reflect.ValueOf(c).Elem())
		}
	}
	c.lines = d.lines
	for name, t := range c.Teams {
		t.Name, t.Line = name, c.lines["teams."+name]
	}
	d.applyIris(c)
	c.Warnings = d.warnings

	applyDefaults(c)
	problems := d.problems
	// A key whose value could not be decoded already has its problem;
	// validating its zero value would only repeat it.
	for _, p := range validate(c) {
		if !slices.ContainsFunc(d.problems, func(q Problem) bool { return covers(q.Key, p.Key) }) {
			problems = append(problems, p)
		}
	}
	c.Warnings = append(c.Warnings, sharedPaths(c)...)
	c.Warnings = append(c.Warnings, fleetWarnings(c)...)
	if file != "" {
		// A key that is missing altogether (no teams:) has no line of its
		// own; the top of the file is where to add it, and every problem
		// a person reads then has a file:line to jump to.
		atTop(problems)
		atTop(c.Warnings)
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
		return nil, &Error{Problems: problems}
	}
	return c, nil
}

// sharedPaths warns about teams that work in the same directory on the
// same host: their Claude sessions would share one project history and
// edit the same files, which is rarely meant.
func sharedPaths(c *Config) []Problem {
	var out []Problem
	first := map[string]string{}
	for _, name := range c.TeamNames() {
		t := c.Teams[name]
		if t.Path == "" {
			continue
		}
		where := "local"
		if t.IsRemote() {
			where = "ssh " + t.SSH + t.Remote
		}
		k := where + "\x00" + strings.TrimSuffix(t.Path, "/")
		other, dup := first[k]
		if !dup {
			first[k] = name
			continue
		}
		out = append(out, Problem{File: c.File, Line: c.line("teams." + name + ".path"), Key: "teams." + name + ".path",
			Msg: fmt.Sprintf("teams %s and %s both use %s (their sessions would share one directory and its files; give each team its own path)", other, name, t.Path)})
	}
	return out
}

// atTop gives problems with no known line the file's first line.
func atTop(problems []Problem) {
	for i := range problems {
		if problems[i].Line < 1 {
			problems[i].Line = 1
		}
	}
}

// covers reports whether a problem at key a makes one at key b redundant:
// b is a itself or lies inside it.
func covers(a, b string) bool {
	return a == "" || a == b || strings.HasPrefix(b, a+".")
}

func documentRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0]
	}
	return doc
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// maxSyntaxScan bounds the prefix re-parsing in syntaxProblem.
const maxSyntaxScan = 5000

func syntaxProblem(data []byte, file string, err error) Problem {
	p := Problem{File: file, Msg: err.Error()}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = m[2]
		p.Line = offendingLine(data, p.Line, p.Msg)
	} else {
		// yaml.v3 gives no line for errors found at the end of the stream
		// (an unclosed quote or bracket); point at the last line.
		p.Line = strings.Count(strings.TrimRight(string(data), "\n"), "\n") + 1
	}
	p.Msg = "invalid YAML: " + p.Msg + " (check indentation, and quote values that contain ': ' or start with a special character)"
	return p
}

// offendingLine improves on yaml.v3's error line, which is often where the
// enclosing mapping starts rather than the line at fault: it finds the
// first prefix of the document, from line `from` on, that fails with the
// same message. A prefix failing differently (say, cut inside a quoted
// string) is skipped.
func offendingLine(data []byte, from int, msg string) int {
	lines := strings.SplitAfter(string(data), "\n")
	for k := max(from, 1); k <= len(lines) && k-from < maxSyntaxScan; k++ {
		var n yaml.Node
		err := yaml.Unmarshal([]byte(strings.Join(lines[:k], "")), &n)
		if err == nil {
			continue
		}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil && m[2] == msg {
			return k
		}
	}
	return from
}
