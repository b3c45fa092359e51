// Package remote runs Claude Code on other hosts over SSH. It dials natively
// with golang.org/x/crypto/ssh (no OpenSSH client process), resolves hosts
// through ssh_config, checks host keys against known_hosts, shares one
// connection per host among every runner, and reaches files over SFTP.
package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// Host key checking modes, as ssh_config spells them.
const (
	StrictYes       = "yes"
	StrictNo        = "no"
	StrictAcceptNew = "accept-new"
)

// Defaults applied when neither ssh_config nor the team sets a value. The
// keepalive defaults are on purpose: a dead connection must be noticed.
const (
	DefaultPort                = 22
	DefaultConnectTimeout      = 10 * time.Second
	DefaultServerAliveInterval = 15 * time.Second
	DefaultServerAliveCountMax = 3
)

// maxJumpDepth bounds ProxyJump resolution so a config whose jump host jumps
// through itself fails instead of recursing forever.
const maxJumpDepth = 8

// Target is a fully resolved SSH destination: everything needed to dial it
// without reading any configuration again.
type Target struct {
	// Alias is the name the user wrote (an ssh_config Host or a destination);
	// it is what people see in Where.
	Alias    string
	HostName string
	Port     int
	User     string
	// IdentityFiles are tried in order after the agent's keys.
	IdentityFiles []string
	// IdentitiesOnly limits agent keys to those matching IdentityFiles.
	IdentitiesOnly bool
	// KnownHostsFiles are read for host keys; accept-new appends to the first.
	KnownHostsFiles []string
	// HashKnownHosts makes accept-new write hashed host names.
	HashKnownHosts bool
	// StrictHostKeyChecking is StrictYes, StrictNo or StrictAcceptNew.
	StrictHostKeyChecking string
	ConnectTimeout        time.Duration
	ServerAliveInterval   time.Duration
	ServerAliveCountMax   int
	// ProxyJump lists the hops to go through, first hop first.
	ProxyJump []Target
}

// Addr is host:port as dialled and as looked up in known_hosts.
func (t Target) Addr() string {
	return net.JoinHostPort(t.HostName, strconv.Itoa(t.Port))
}

// Destination is user@host:port.
func (t Target) Destination() string {
	return t.User + "@" + t.Addr()
}

// Key identifies the connection a Target needs: two targets with the same
// key share one *ssh.Client. It holds, for every hop, everything that
// decides trust and identity (user, known_hosts files, host key checking,
// identity files), not only the address: a connection that a lenient team
// (accept-new) opened must never serve a team whose known_hosts holds
// another or a revoked key for the host.
func (t Target) Key() string {
	var b strings.Builder
	b.WriteString(t.trustKey())
	for i := len(t.ProxyJump) - 1; i >= 0; i-- {
		b.WriteString(" via ")
		b.WriteString(t.ProxyJump[i].trustKey())
	}
	return b.String()
}

func (t Target) trustKey() string {
	return fmt.Sprintf("%s{strict=%s known_hosts=%q identity=%q only=%t}", t.Destination(),
		t.StrictHostKeyChecking, t.KnownHostsFiles, t.IdentityFiles, t.IdentitiesOnly)
}

// Options say how to reach one host, as a team configures it: SSH or Remote
// (exactly one), and overrides applied over ssh_config (zero means unset).
type Options struct {
	// SSH is a Host alias from ssh_config, [user@]host[:port] or ssh://...
	SSH string
	// Remote is the iris form: "ssh -J jump -p 22 user@host".
	Remote                string
	Identity              string
	Port                  int
	StrictHostKeyChecking string
	ConnectTimeout        time.Duration
	ServerAliveInterval   time.Duration
	ServerAliveCountMax   int
}

// Resolve turns an ssh or remote setting into a Target, reading
// sshConfigPath (not the global default; "" or a missing file means no
// config) and applying the option overrides last.
func Resolve(sshConfigPath string, team Options) (Target, error) {
	cfg, err := loadSSHConfig(sshConfigPath)
	if err != nil {
		return Target{}, err
	}
	var t Target
	switch {
	case team.SSH != "" && team.Remote != "":
		return Target{}, errors.New("team sets both ssh and remote; keep one")
	case team.SSH != "":
		t, err = resolveHost(cfg, team.SSH, nil, 0)
	case team.Remote != "":
		t, err = resolveRemote(cfg, team.Remote)
	default:
		return Target{}, errors.New("team has neither ssh nor remote set")
	}
	if err != nil {
		return Target{}, err
	}
	if err := applyRemoteOptions(&t, team); err != nil {
		return Target{}, err
	}
	return t, nil
}

func loadSSHConfig(path string) (*ssh_config.Config, error) {
	if path == "" {
		return &ssh_config.Config{}, nil
	}
	path = expandTilde(path)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &ssh_config.Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ssh config: %w", err)
	}
	cfg, err := ssh_config.DecodeBytes(b)
	if err != nil {
		return nil, fmt.Errorf("parse ssh config %s: %w", path, err)
	}
	return cfg, nil
}

// options holds ssh_config keywords given on an iris command line (-o, -p,
// -i, -J, -l); they take precedence over the config file as with ssh(1).
type options map[string][]string

func (o options) add(key, val string) {
	k := strings.ToLower(key)
	o[k] = append(o[k], val)
}

// lookup reads ssh_config keywords for one alias with command-line overrides.
type lookup struct {
	cfg   *ssh_config.Config
	alias string
	over  options
}

func (l lookup) get(key string) (string, error) {
	if v := l.over[strings.ToLower(key)]; len(v) > 0 {
		return v[0], nil
	}
	v, err := l.cfg.Get(l.alias, key)
	if err != nil {
		return "", fmt.Errorf("ssh config for %s: %s: %w", l.alias, key, err)
	}
	return v, nil
}

func (l lookup) getAll(key string) ([]string, error) {
	vals := append([]string(nil), l.over[strings.ToLower(key)]...)
	v, err := l.cfg.GetAll(l.alias, key)
	if err != nil {
		return nil, fmt.Errorf("ssh config for %s: %s: %w", l.alias, key, err)
	}
	return append(vals, v...), nil
}

// resolveHost resolves one destination ([user@]host[:port], an alias, or
// ssh://...) through the config with optional command-line overrides.
func resolveHost(cfg *ssh_config.Config, dest string, over options, depth int) (Target, error) {
	if depth > maxJumpDepth {
		return Target{}, fmt.Errorf("ProxyJump chain through %s is longer than %d hops (a loop?)", dest, maxJumpDepth)
	}
	destUser, alias, destPort, err := parseDestination(dest)
	if err != nil {
		return Target{}, err
	}
	l := lookup{cfg: cfg, alias: alias, over: over}
	t := Target{Alias: dest}

	hostName, err := l.get("HostName")
	if err != nil {
		return Target{}, err
	}
	if hostName == "" {
		hostName = alias
	}
	t.HostName = strings.ReplaceAll(hostName, "%h", alias)

	t.User = destUser
	if t.User == "" {
		if t.User, err = l.get("User"); err != nil {
			return Target{}, err
		}
	}
	if t.User == "" {
		t.User = currentUser()
	}

	t.Port = destPort
	if t.Port == 0 {
		p, err := l.get("Port")
		if err != nil {
			return Target{}, err
		}
		if p != "" {
			if t.Port, err = parsePort(p); err != nil {
				return Target{}, fmt.Errorf("%s: Port: %w", alias, err)
			}
		}
	}
	if t.Port == 0 {
		t.Port = DefaultPort
	}

	if pc, err := l.get("ProxyCommand"); err != nil {
		return Target{}, err
	} else if pc != "" && !strings.EqualFold(pc, "none") {
		return Target{}, fmt.Errorf("%s: ProxyCommand is not supported (switchboard dials natively); use ProxyJump", alias)
	}

	ids, err := l.getAll("IdentityFile")
	if err != nil {
		return Target{}, err
	}
	for _, id := range ids {
		if strings.EqualFold(id, "none") {
			continue
		}
		t.IdentityFiles = append(t.IdentityFiles, expandTokens(id, t, alias))
	}
	if len(t.IdentityFiles) == 0 {
		home := homeDir()
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			t.IdentityFiles = append(t.IdentityFiles, filepath.Join(home, ".ssh", name))
		}
	}
	if t.IdentitiesOnly, err = getBool(l, "IdentitiesOnly"); err != nil {
		return Target{}, err
	}
	if t.HashKnownHosts, err = getBool(l, "HashKnownHosts"); err != nil {
		return Target{}, err
	}

	khs, err := l.getAll("UserKnownHostsFile")
	if err != nil {
		return Target{}, err
	}
	for _, kh := range khs {
		for _, f := range strings.Fields(kh) {
			if !strings.EqualFold(f, "none") {
				t.KnownHostsFiles = append(t.KnownHostsFiles, expandTokens(f, t, alias))
			}
		}
	}
	if len(t.KnownHostsFiles) == 0 {
		t.KnownHostsFiles = []string{filepath.Join(homeDir(), ".ssh", "known_hosts")}
	}

	shkc, err := l.get("StrictHostKeyChecking")
	if err != nil {
		return Target{}, err
	}
	if t.StrictHostKeyChecking, err = normalizeStrict(shkc); err != nil {
		return Target{}, fmt.Errorf("%s: %w", alias, err)
	}

	if t.ConnectTimeout, err = getSeconds(l, "ConnectTimeout"); err != nil {
		return Target{}, err
	}
	if t.ServerAliveInterval, err = getSeconds(l, "ServerAliveInterval"); err != nil {
		return Target{}, err
	}
	if n, err := l.get("ServerAliveCountMax"); err != nil {
		return Target{}, err
	} else if n != "" {
		if t.ServerAliveCountMax, err = strconv.Atoi(n); err != nil || t.ServerAliveCountMax < 0 {
			return Target{}, fmt.Errorf("%s: ServerAliveCountMax %q is not a count", alias, n)
		}
	}
	applyDefaults(&t)

	jump, err := l.get("ProxyJump")
	if err != nil {
		return Target{}, err
	}
	if jump != "" && !strings.EqualFold(jump, "none") {
		for _, hop := range strings.Split(jump, ",") {
			hop = strings.TrimSpace(hop)
			if hop == "" {
				return Target{}, fmt.Errorf("%s: empty hop in ProxyJump %q", alias, jump)
			}
			// A hop is resolved like any host, so its own ProxyJump comes
			// first: ssh(1) behaves the same when it re-runs itself per hop.
			ht, err := resolveHost(cfg, hop, nil, depth+1)
			if err != nil {
				return Target{}, fmt.Errorf("ProxyJump hop %s: %w", hop, err)
			}
			t.ProxyJump = append(t.ProxyJump, ht.ProxyJump...)
			ht.ProxyJump = nil
			t.ProxyJump = append(t.ProxyJump, ht)
		}
		if len(t.ProxyJump) > maxJumpDepth {
			return Target{}, fmt.Errorf("%s: ProxyJump chain is longer than %d hops (a loop?)", alias, maxJumpDepth)
		}
	}
	return t, nil
}

func applyDefaults(t *Target) {
	if t.StrictHostKeyChecking == "" {
		t.StrictHostKeyChecking = StrictYes
	}
	if t.ConnectTimeout <= 0 {
		t.ConnectTimeout = DefaultConnectTimeout
	}
	if t.ServerAliveInterval <= 0 {
		t.ServerAliveInterval = DefaultServerAliveInterval
	}
	if t.ServerAliveCountMax <= 0 {
		t.ServerAliveCountMax = DefaultServerAliveCountMax
	}
}

// resolveRemote parses the iris form: ssh [-F file] [-J jump[,jump2]] [-p N]
// [-i key] [-l user] [-o Key=val] [user@]host. -F replaces the ssh_config
// for this team, as it does for ssh(1).
func resolveRemote(cfg *ssh_config.Config, remote string) (Target, error) {
	words, err := splitWords(remote)
	if err != nil {
		return Target{}, fmt.Errorf("remote %q: %w", remote, err)
	}
	if len(words) == 0 || (words[0] != "ssh" && !strings.HasSuffix(words[0], "/ssh")) {
		return Target{}, fmt.Errorf("remote %q: must start with ssh", remote)
	}
	over := options{}
	var dest string
	args := words[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if dest != "" {
			return Target{}, fmt.Errorf("remote %q: unexpected %q after the destination (a remote command is not allowed)", remote, a)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			dest = a
			continue
		}
		flag, val := a[:2], a[2:]
		switch flag {
		case "-J", "-p", "-i", "-l", "-o", "-F":
			if val == "" {
				i++
				if i >= len(args) {
					return Target{}, fmt.Errorf("remote %q: %s needs a value", remote, flag)
				}
				val = args[i]
			}
		default:
			if strings.Trim(a[1:], "46AaCgKkNnqsTtvXxYy") != "" {
				return Target{}, fmt.Errorf("remote %q: option %s is not supported (use -F, -J, -p, -i, -l or -o)", remote, a)
			}
			continue // flags about terminals, verbosity, forwarding: irrelevant here
		}
		switch flag {
		case "-J":
			over.add("ProxyJump", val)
		case "-p":
			over.add("Port", val)
		case "-i":
			over.add("IdentityFile", val)
		case "-l":
			over.add("User", val)
		case "-F":
			if cfg, err = loadExplicitSSHConfig(val); err != nil {
				return Target{}, fmt.Errorf("remote %q: %w", remote, err)
			}
		case "-o":
			k, v, ok := strings.Cut(val, "=")
			if !ok {
				k, v, ok = strings.Cut(val, " ")
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" {
				return Target{}, fmt.Errorf("remote %q: -o %q is not Key=value", remote, val)
			}
			over.add(k, v)
		}
	}
	if dest == "" {
		return Target{}, fmt.Errorf("remote %q: no destination host", remote)
	}
	t, err := resolveHost(cfg, dest, over, 0)
	if err != nil {
		return Target{}, fmt.Errorf("remote %q: %w", remote, err)
	}
	return t, nil
}

func applyRemoteOptions(t *Target, o Options) error {
	if o.Identity != "" {
		t.IdentityFiles = append([]string{expandTilde(o.Identity)}, t.IdentityFiles...)
	}
	if o.Port != 0 {
		if o.Port < 0 || o.Port > 65535 {
			return fmt.Errorf("remoteOptions.port %d is not a port", o.Port)
		}
		t.Port = o.Port
	}
	if o.StrictHostKeyChecking != "" {
		s, err := normalizeStrict(o.StrictHostKeyChecking)
		if err != nil {
			return fmt.Errorf("remoteOptions: %w", err)
		}
		t.StrictHostKeyChecking = s
	}
	if o.ConnectTimeout > 0 {
		t.ConnectTimeout = o.ConnectTimeout
	}
	if o.ServerAliveInterval > 0 {
		t.ServerAliveInterval = o.ServerAliveInterval
	}
	if o.ServerAliveCountMax > 0 {
		t.ServerAliveCountMax = o.ServerAliveCountMax
	}
	return nil
}

// normalizeStrict maps ssh_config and iris spellings onto our three modes.
// "ask" becomes yes: there is nobody to ask.
func normalizeStrict(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return "", nil
	case "yes", "true", "ask":
		return StrictYes, nil
	case "no", "off", "false":
		return StrictNo, nil
	case "accept-new":
		return StrictAcceptNew, nil
	}
	return "", fmt.Errorf("StrictHostKeyChecking %q: want yes, no or accept-new", s)
}

func getBool(l lookup, key string) (bool, error) {
	v, err := l.get(key)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(v) {
	case "", "no", "false":
		return false, nil
	case "yes", "true":
		return true, nil
	}
	return false, fmt.Errorf("%s: %s %q: want yes or no", l.alias, key, v)
}

func getSeconds(l lookup, key string) (time.Duration, error) {
	v, err := l.get(key)
	if err != nil || v == "" {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %s %q is not a number of seconds", l.alias, key, v)
	}
	return time.Duration(n) * time.Second, nil
}

// parseDestination splits [ssh://][user@]host[:port]; host may be a
// bracketed IPv6 address.
func parseDestination(s string) (user, host string, port int, err error) {
	orig := s
	s = strings.TrimPrefix(s, "ssh://")
	if i := strings.LastIndex(s, "@"); i >= 0 {
		user, s = s[:i], s[i+1:]
		if user == "" {
			return "", "", 0, fmt.Errorf("destination %q: empty user", orig)
		}
	}
	host = s
	if h, p, splitErr := net.SplitHostPort(s); splitErr == nil {
		host = h
		if port, err = parsePort(p); err != nil {
			return "", "", 0, fmt.Errorf("destination %q: %w", orig, err)
		}
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if host == "" || strings.ContainsAny(host, " \t\n/\\'\"") || strings.HasPrefix(host, "-") {
		return "", "", 0, fmt.Errorf("destination %q: not a host name", orig)
	}
	return user, host, port, nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return p, nil
}

// expandTokens handles the ssh_config tokens that make sense for file names.
func expandTokens(s string, t Target, alias string) string {
	r := strings.NewReplacer("%d", homeDir(), "%u", currentUser(), "%h", t.HostName,
		"%r", t.User, "%n", alias, "%p", strconv.Itoa(t.Port), "%%", "%")
	return expandTilde(r.Replace(s))
}

func expandTilde(p string) string {
	if p == "~" {
		return homeDir()
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(homeDir(), p[2:])
	}
	return p
}

func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return "/"
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// splitWords splits a command line as a POSIX shell would, without any
// expansion: blanks separate words, quotes and backslashes group them.
func splitWords(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			if s[i] == '\n' {
				continue
			}
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// loadExplicitSSHConfig reads the ssh_config named by a remote's -F. Unlike
// the default file it must exist, as ssh(1) insists, and be absolute or
// under ~/: the daemon's working directory is not the user's.
func loadExplicitSSHConfig(path string) (*ssh_config.Config, error) {
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "~/") {
		return nil, fmt.Errorf("-F %q: write the ssh config file's absolute path (or ~/...)", path)
	}
	if _, err := os.Stat(expandTilde(path)); err != nil {
		return nil, fmt.Errorf("-F: ssh config file: %w", err)
	}
	return loadSSHConfig(path)
}
