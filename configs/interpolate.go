package configs

import (
	"regexp"
)

// envRef matches ${VAR} and ${VAR:-default}. The default runs to the first
// '}', so defaults cannot contain one; that keeps "${A:-x}-${B:-y}" two
// references, which a greedy match (as in iris) would not.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// interpolate replaces environment references in s. As in a shell, the
// default is used when the variable is unset or empty. It returns the names
// of referenced variables that are unset and have no default.
func interpolate(s string, lookup func(string) (string, bool)) (string, []string) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		name, hasDefault, def := m[1], m[2] != "", m[3]
		v, ok := lookup(name)
		switch {
		case ok && v != "":
			return v
		case hasDefault:
			return def
		case ok:
			return ""
		default:
			missing = append(missing, name)
			return ref
		}
	})
	return out, missing
}
