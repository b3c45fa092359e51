package configs

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// irisKey says what switchboard does with a key only iris-mcp reads, so an
// iris config.yaml loads unchanged.
type irisKey struct {
	// why is the warning for a key switchboard has no use for. "" means
	// switchboard already does what the key asks, so it is accepted quietly.
	why string
	// apply maps the key onto switchboard's settings; nil if nothing to map.
	apply func(d *decoder, k, v *yaml.Node, path string, out reflect.Value)
}

// irisKeys lists, per section, the keys of iris-mcp's config schema that
// switchboard does not spell the same way.
var irisKeys = map[reflect.Type]map[string]irisKey{
	reflect.TypeFor[Config](): {
		"dashboard": {apply: (*decoder).mapIrisDashboard},
		"database":  {why: "is iris's own session database; switchboard keeps its own store (settings.database, by default ~/.switchboard/switchboard.db)"},
	},
	reflect.TypeFor[Settings](): {
		"httpPort": {apply: func(d *decoder, k, v *yaml.Node, path string, _ reflect.Value) { d.irisHTTPPort = v }},
		"defaultTransport": {apply: func(d *decoder, k, v *yaml.Node, path string, _ reflect.Value) {
			d.irisTransport, d.irisTransportLine = v, k.Line
		}},
		"wonderLoggerConfig": {why: "is not read; switchboard logs through log/slog (set settings.logLevel, or --log-level and --log-format)"},
		"hotReloadConfig":    {}, // switchboard always follows its config file
		"sessionMcpEnabled":  {}, // switchboard always gives team Claudes its tools
		"sessionMcpPath":     {why: "is not used; switchboard hands each Claude its tools directly and writes no MCP config files into team directories"},
	},
	reflect.TypeFor[Team](): {
		"color":             {why: "is not used; switchboard shows no team colours"},
		"skipPermissions":   {why: "is not read; switchboard never skips Claude's permission checks (use grantPermission: yes to allow every tool)"},
		"ssh2":              {}, // switchboard has one SSH client
		"enableReverseMcp":  {apply: (*decoder).irisReverseMCP},
		"reverseMcpPort":    {why: "is not used; switchboard forwards its tools over the team's SSH connection and picks the port itself"},
		"allowHttp":         {why: "is not used; the forwarded endpoint listens on the remote host's loopback and needs the session's token"},
		"mcpConfigScript":   {why: "is not used; switchboard writes each Claude's MCP config itself"},
		"sessionMcpEnabled": {},
		"sessionMcpPath":    {why: "is not used; switchboard hands each Claude its tools directly and writes no MCP config files into team directories"},
	},
	reflect.TypeFor[RemoteOptions](): {
		"compression":  {why: "is not supported by switchboard's SSH client, ignored"},
		"forwardAgent": {why: "is not supported; agent forwarding is never offered to remote hosts"},
		"extraSshArgs": {apply: (*decoder).irisExtraSSHArgs},
	},
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// maxMergeDepth bounds YAML merge-key (<<) expansion, which can refer to
// itself through an anchor.
const maxMergeDepth = 32

// maxExpandedNodes bounds how many nodes aliases (*name, including merge
// keys' sources) add to a document when written out. yaml.v3 keeps aliases
// as pointers, but the decoder walks each one as if written out, so a file
// of a few hundred bytes with nested aliases ("billion laughs") would take
// minutes or all memory to decode. Real configs add a few hundred.
const maxExpandedNodes = 10000

// checkAliases refuses a document whose aliases expand past
// maxExpandedNodes or nest past maxMergeDepth, before anything walks it. It
// visits each node once: the expanded size of every anchored value is
// computed once and remembered.
func (d *decoder) checkAliases(root *yaml.Node) bool {
	a := &aliasCheck{sizes: map[*yaml.Node]expanded{}}
	var walk func(n *yaml.Node, path string) bool
	walk = func(n *yaml.Node, path string) bool {
		if n.Kind == yaml.AliasNode {
			if n.Alias == nil {
				return true
			}
			a.extra += a.size(n).size
			switch {
			case a.tooDeep:
				d.problem(n.Line, path, "alias *%s nests aliases more than %d deep (an anchored value refers to another anchor, and so on; write the values out)", n.Value, maxMergeDepth)
				return false
			case a.extra > maxExpandedNodes:
				d.problem(n.Line, path, "aliases expand the file past %d values at alias *%s (each *alias repeats its anchor's whole value, so aliases of aliases multiply; refer to plain anchors instead of chaining them)", maxExpandedNodes, n.Value)
				return false
			}
			return true
		}
		for i, c := range n.Content {
			p := path
			if n.Kind == yaml.MappingNode && i%2 == 1 && n.Content[i-1].Kind == yaml.ScalarNode {
				p = join(path, n.Content[i-1].Value)
			}
			if !walk(c, p) {
				return false
			}
		}
		return true
	}
	return walk(root, "")
}

// aliasCheck computes the expanded sizes of anchored values.
type aliasCheck struct {
	sizes   map[*yaml.Node]expanded
	extra   int // nodes added by the aliases seen so far
	tooDeep bool
}

// expanded describes a node with its aliases written out.
type expanded struct {
	size  int // nodes, at most maxExpandedNodes+1
	depth int // aliases followed, at most maxMergeDepth+1
}

// size returns what n stands for with its aliases written out.
func (a *aliasCheck) size(n *yaml.Node) expanded {
	if e, ok := a.sizes[n]; ok {
		return e
	}
	e := expanded{size: 1}
	if n.Kind == yaml.AliasNode {
		if n.Alias != nil {
			e = a.size(n.Alias)
			e.depth++
		}
	} else {
		for _, c := range n.Content {
			ce := a.size(c)
			e.size = min(e.size+ce.size, maxExpandedNodes+1)
			e.depth = max(e.depth, ce.depth)
		}
	}
	if e.depth > maxMergeDepth {
		a.tooDeep = true
		e.depth = maxMergeDepth + 1
	}
	a.sizes[n] = e
	return e
}

// decoder walks the yaml.Node tree into the Config structs field by field,
// so that every bad value is reported with its own line and dotted key
// instead of stopping at the first one, as yaml's own Decode does.
type decoder struct {
	file     string
	lookup   func(string) (string, bool)
	lines    map[string]int
	problems []Problem
	warnings []Problem

	// irisWarned maps an iris-only key to the index of its warning, so each
	// is warned about once however many teams set it.
	irisWarned map[string]int
	// iris keys mapped after decoding, when switchboard's own spelling is
	// absent: dashboard, defaultTransport with httpPort, extraSshArgs.
	irisDashboard     string
	irisDashboardLine int
	irisHTTPPort      *yaml.Node
	irisTransport     *yaml.Node
	irisTransportLine int
	irisSSHArgs       map[*RemoteOptions][]string
}

func (d *decoder) problem(line int, key, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

type pair struct{ key, val *yaml.Node }

// object decodes mapping n into the struct out.
func (d *decoder) object(n *yaml.Node, path string, out reflect.Value) {
	t := out.Type()
	for _, p := range d.pairs(n, path, 0) {
		name := p.key.Value
		kp := join(path, name)
		i, ok := fieldIndex(t, name)
		if !ok {
			d.unknown(t, p.key, p.val, kp, out)
			continue
		}
		d.lines[kp] = p.key.Line
		d.value(p.val, kp, out.Field(i))
	}
}

// value decodes one node into out, which is addressable.
func (d *decoder) value(n *yaml.Node, path string, out reflect.Value) {
	n = unalias(n)
	if isNull(n) {
		return // left zero; applyDefaults fills it
	}
	_, custom := out.Addr().Interface().(yaml.Unmarshaler)
	switch {
	case out.Kind() == reflect.Struct && !custom:
		if n.Kind != yaml.MappingNode {
			d.problem(n.Line, path, "want a mapping of keys, got %s (indent the keys under %s:)", describe(n), lastKey(path))
			return
		}
		d.object(n, path, out)
	case out.Kind() == reflect.Map && out.Type().Elem().Kind() == reflect.Pointer:
		d.structMap(n, path, out)
	default:
		c := d.interpolated(n, path, 0)
		if err := c.Decode(out.Addr().Interface()); err != nil {
			d.problem(n.Line, path, "%s", explain(err, c, out.Type()))
		}
	}
}

// structMap decodes a mapping of name -> struct, i.e. teams.
func (d *decoder) structMap(n *yaml.Node, path string, out reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.problem(n.Line, path, "want a mapping of names, got %s (indent the entries under %s:)", describe(n), lastKey(path))
		return
	}
	elem := out.Type().Elem().Elem()
	m := reflect.MakeMap(out.Type())
	for _, p := range d.pairs(n, path, 0) {
		kp := join(path, p.key.Value)
		d.lines[kp] = p.key.Line
		v := reflect.New(elem)
		if val := unalias(p.val); !isNull(val) {
			if val.Kind != yaml.MappingNode {
				d.problem(val.Line, kp, "want a mapping of settings (path:, description:, ...), got %s", describe(val))
			} else {
				d.object(val, kp, v.Elem())
			}
		}
		m.SetMapIndex(reflect.ValueOf(p.key.Value), v)
	}
	out.Set(m)
}

// pairs returns the entries of mapping n with YAML merge keys (<<: *base)
// expanded; keys written in n win over merged ones. A key written twice is
// a problem (yaml.v3 only checks that when decoding into Go values, which
// we do not do for whole mappings).
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	if depth > maxMergeDepth {
		d.problem(n.Line, path, "merge keys (<<) nest too deeply (does an anchor merge itself?)")
		return nil
	}
	var merged, own []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], unalias(n.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, s := range srcs {
				if s = unalias(s); s.Kind != yaml.MappingNode {
					d.problem(k.Line, path, "<< must merge a mapping, got %s", describe(s))
					continue
				}
				merged = append(merged, d.pairs(s, path, depth+1)...)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.problem(k.Line, path, "keys must be plain names, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.problem(k.Line, join(path, k.Value), "defined twice, first at line %d (keep one)", first)
			continue
		}
		seen[k.Value] = k.Line
		own = append(own, pair{k, v})
	}
	out := make([]pair, 0, len(merged)+len(own))
	for _, p := range merged {
		if _, dup := seen[p.key.Value]; !dup {
			seen[p.key.Value] = p.key.Line // the first merged source wins, as in YAML
			out = append(out, p)
		}
	}
	return append(out, own...)
}

// interpolated returns a copy of n with ${VAR} references in scalar values
// replaced. Working on nodes, not on the raw text, means an environment
// value can never change the YAML structure or shift line numbers, and a
// ${VAR} in a comment or in an ignored iris-only key is never an error.
func (d *decoder) interpolated(n *yaml.Node, path string, depth int) *yaml.Node {
	if depth > maxMergeDepth {
		return n
	}
	n = unalias(n)
	c := *n
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return n
		}
		v, missing := interpolate(n.Value, d.lookup)
		for _, name := range missing {
			d.problem(n.Line, path, "environment variable %s is not set (set it, or give a default: ${%s:-value})", name, name)
		}
		c.Value = v
		// A plain (unquoted, untagged) scalar is re-resolved from its new
		// text, so "${N:-10}" decodes as the number 10 where a number is due.
		if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			c.Tag = ""
		}
	case yaml.MappingNode, yaml.SequenceNode:
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, child := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				c.Content[i] = child // keys are not interpolated
				continue
			}
			c.Content[i] = d.interpolated(child, path, depth+1)
		}
	}
	return &c
}

func (d *decoder) unknown(t reflect.Type, k, v *yaml.Node, key string, out reflect.Value) {
	name := k.Value
	if ik, ok := irisKeys[t][name]; ok {
		if ik.apply != nil {
			ik.apply(d, k, unalias(v), key, out)
		}
		if ik.why != "" {
			d.irisWarn(k, name, key, ik.why)
		}
		return
	}
	if t == reflect.TypeFor[Config]() && strings.HasPrefix(name, "x-") {
		return // extension keys, as in docker compose: a home for YAML anchors
	}
	msg := "unknown key, ignored"
	switch s := suggest(t, name); {
	case t == reflect.TypeFor[RemoteOptions]() && name == "passphrase":
		msg = "passphrases are not read from config, ignored (load the key into ssh-agent with ssh-add)"
	case s != "":
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	d.warnings = append(d.warnings, Problem{File: d.file, Line: k.Line, Key: key, Msg: msg})
}

// irisWarn warns about an iris-only key once: later uses of the same key
// (every team's color) are listed on the first warning.
func (d *decoder) irisWarn(k *yaml.Node, name, key, why string) {
	if d.irisWarned == nil {
		d.irisWarned = map[string]int{}
	}
	if i, seen := d.irisWarned[name]; seen {
		w := &d.warnings[i]
		if strings.HasSuffix(w.Msg, ")") && strings.Contains(w.Msg, " (iris-mcp key; also at line") {
			w.Msg = strings.TrimSuffix(w.Msg, ")") + fmt.Sprintf(", %d)", k.Line)
		} else {
			w.Msg = strings.TrimSuffix(w.Msg, " (iris-mcp key)") + fmt.Sprintf(" (iris-mcp key; also at line %d)", k.Line)
		}
		return
	}
	d.irisWarned[name] = len(d.warnings)
	d.warnings = append(d.warnings, Problem{File: d.file, Line: k.Line, Key: key, Msg: why + " (iris-mcp key)"})
}

// mapIrisDashboard maps iris's dashboard: {enabled, host, http, https, ...}
// onto settings.dashboard. switchboard's dashboard serves plain HTTP on
// loopback only, so anything else is said, and leaves it off.
func (d *decoder) mapIrisDashboard(k, v *yaml.Node, key string, _ reflect.Value) {
	if v.Kind != yaml.MappingNode {
		return // iris's own default: nothing to map
	}
	var dash struct {
		Enabled *bool  `yaml:"enabled"`
		Host    string `yaml:"host"`
		HTTP    int    `yaml:"http"`
		HTTPS   int    `yaml:"https"`
	}
	if err := d.interpolated(v, key, 0).Decode(&dash); err != nil {
		d.irisWarn(k, "dashboard", key, fmt.Sprintf("could not be read (%s), so the dashboard stays off (set settings.dashboard: 127.0.0.1:3100)", strings.TrimPrefix(err.Error(), "yaml: ")))
		return
	}
	if dash.Enabled != nil && !*dash.Enabled {
		return
	}
	host := cmpOr(dash.Host, "localhost")
	port := dash.HTTP
	if port == 0 {
		port = dash.HTTPS
		if port == 0 {
			return
		}
		d.irisWarn(k, "dashboard.https", key+".https", fmt.Sprintf("is not supported; switchboard's dashboard serves plain HTTP on loopback, at http://%s", net.JoinHostPort(host, strconv.Itoa(port))))
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if err := loopbackAddr(addr); err != nil {
		d.irisWarn(k, "dashboard.host", key+".host", fmt.Sprintf("%v, so the dashboard stays off: it can approve tool use and listens on loopback only (set settings.dashboard: 127.0.0.1:%d, and use an SSH tunnel to reach it)", err, port))
		return
	}
	d.irisDashboard, d.irisDashboardLine = addr, k.Line
}

// irisReverseMCP accepts enableReverseMcp: every team's Claude gets
// switchboard's tools, so only false needs a word.
func (d *decoder) irisReverseMCP(k, v *yaml.Node, key string, _ reflect.Value) {
	var on bool
	if err := d.interpolated(v, key, 0).Decode(&on); err == nil && !on {
		d.irisWarn(k, "enableReverseMcp", key, "false is ignored: every team's Claude can ask other teams through switchboard (to stop one, add mcp__switchboard to its disallowedTools)")
	}
}

// irisExtraSSHArgs keeps remoteOptions.extraSshArgs to add to the team's
// iris remote: command line, where remote's own parser reads them.
func (d *decoder) irisExtraSSHArgs(k, v *yaml.Node, key string, out reflect.Value) {
	var args []string
	if err := d.interpolated(v, key, 0).Decode(&args); err != nil {
		d.problem(k.Line, key, "want a list of ssh arguments, e.g. [\"-o\", \"ProxyJump=bastion\"]")
		return
	}
	if d.irisSSHArgs == nil {
		d.irisSSHArgs = map[*RemoteOptions][]string{}
	}
	ro := out.Addr().Interface().(*RemoteOptions)
	d.irisSSHArgs[ro] = args
	d.lines[key] = k.Line
}

// applyIris maps the iris keys kept while decoding onto c.
func (d *decoder) applyIris(c *Config) {
	s := &c.Settings
	if d.irisDashboard != "" && s.Dashboard == "" && !c.has("settings.dashboard") {
		s.Dashboard = d.irisDashboard
		d.lines["settings.dashboard"] = d.irisDashboardLine
	}
	if d.irisTransport != nil && s.HTTPAddr == "" && !c.has("settings.httpAddr") {
		var transport string
		port := 1615 // iris's default
		_ = d.interpolated(d.irisTransport, "settings.defaultTransport", 0).Decode(&transport)
		if d.irisHTTPPort != nil {
			_ = d.interpolated(d.irisHTTPPort, "settings.httpPort", 0).Decode(&port)
		}
		if transport == "http" {
			s.HTTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			d.lines["settings.httpAddr"] = d.irisTransportLine
		}
	}
	for _, name := range c.TeamNames() {
		t := c.Teams[name]
		args, ok := d.irisSSHArgs[&t.RemoteOptions]
		if !ok || len(args) == 0 {
			continue
		}
		key := "teams." + name + ".remoteOptions.extraSshArgs"
		if t.Remote == "" {
			d.warnings = append(d.warnings, Problem{File: d.file, Line: c.line(key), Key: key,
				Msg: "applies only to an iris remote: command line, ignored (put ssh options for " + t.SSH + " in your ssh_config)"})
			continue
		}
		// Inserted after "ssh", each word quoted, so remote's parser reads
		// them as iris's ssh would, and refuses what it cannot honour.
		first, rest, _ := strings.Cut(strings.TrimSpace(t.Remote), " ")
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		t.Remote = first + " " + strings.Join(quoted, " ") + " " + rest
	}
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// fieldIndex finds the field of struct type t whose yaml tag is name.
func fieldIndex(t reflect.Type, name string) (int, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag != "-" && tag != "" && tag == name {
			return i, true
		}
	}
	return 0, false
}

// suggest returns the key of t closest to a misspelt name, or "".
func suggest(t reflect.Type, name string) string {
	best, bestDist := "", 3 // at most two edits away
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		if strings.EqualFold(tag, name) {
			return tag
		}
		if dist := editDistance(strings.ToLower(tag), strings.ToLower(name)); dist < bestDist {
			best, bestDist = tag, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// explain turns a decode error into a message a user can act on.
func explain(err error, n *yaml.Node, t reflect.Type) string {
	var ve *valueError
	if errors.As(err, &ve) {
		return ve.Msg
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return fmt.Sprintf("%s is not a whole number (write e.g. 10)", describe(n))
	case reflect.String:
		return fmt.Sprintf("want a single value, got %s (quote it if it is text)", describe(n))
	case reflect.Map:
		return fmt.Sprintf("want a mapping of NAME: value, got %s", describe(n))
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func unalias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxMergeDepth; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}
