package remote

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is a host key that was refused: unknown, changed or revoked.
// Its message names the host, the key and the file, and says how to fix it.
type HostKeyError struct {
	// Host is host:port as dialled.
	Host string
	// KeyType and Fingerprint (SHA256:...) describe the key the host offered.
	KeyType     string
	Fingerprint string
	// File is the known_hosts file to add the key to, or the one holding the
	// old key when Changed or Revoked; Line is that key's line.
	File string
	Line int
	// OldKeyType and OldFingerprint describe the recorded key when Changed.
	OldKeyType     string
	OldFingerprint string
	Changed        bool
	Revoked        bool
}

func (e *HostKeyError) Error() string {
	host, port, _ := net.SplitHostPort(e.Host)
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key %s %s of %s is marked revoked in %s:%d; refusing to connect",
			e.KeyType, e.Fingerprint, e.Host, e.File, e.Line)
	case e.Changed:
		return fmt.Sprintf("HOST KEY CHANGED for %s: %s:%d has %s %s but the host offered %s %s; "+
			"this can be a man-in-the-middle attack. If the host was really reinstalled, remove the old key with: "+
			"ssh-keygen -R %s -f %s (then connect once more with strictHostKeyChecking: accept-new, or add the new key with ssh-keyscan)",
			e.Host, e.File, e.Line, e.OldKeyType, e.OldFingerprint, e.KeyType, e.Fingerprint,
			ShellWord(knownhosts.Normalize(e.Host)), ShellWord(e.File))
	default:
		return fmt.Sprintf("host key for %s is unknown: %s %s is not in %s; if you trust it, add it with: "+
			"ssh-keyscan -p %s %s >> %s (or set strictHostKeyChecking: accept-new)",
			e.Host, e.KeyType, e.Fingerprint, e.File, port, ShellWord(host), ShellWord(e.File))
	}
}

// ShellWord quotes s for a POSIX shell only when the shell would need it, so
// commands shown to people stay readable; a leading "~/" stays unquoted so
// the shell expands it.
func ShellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@+=,~") == "" {
		return s
	}
	return shellQuote(s)
}

// knownHostsMu serialises appends to known_hosts files by this process.
var knownHostsMu sync.Mutex

// probeKey is a key no host has; checking it reveals which keys a
// known_hosts file holds for a host.
var probeKey = sync.OnceValue(func() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
})

// hostKeyCheck returns the callback verifying t's host key and the host key
// algorithms to offer, known key types first so the server presents the key
// we have on record (ssh(1) orders them the same way).
func hostKeyCheck(t Target, log *slog.Logger) (ssh.HostKeyCallback, []string, error) {
	var files []string
	for _, f := range t.KnownHostsFiles {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("known hosts file: %w", err)
		}
	}
	check, err := knownhosts.New(files...)
	if err != nil {
		return nil, nil, fmt.Errorf("read known hosts %s: %w", strings.Join(files, ", "), err)
	}
	addFile := t.KnownHostsFiles[0]

	var algos []string
	var ke *knownhosts.KeyError
	if err := check(t.Addr(), zeroAddr, probeKey()); errors.As(err, &ke) {
		for _, k := range ke.Want {
			if k.Key.Type() == ssh.KeyAlgoRSA {
				algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
			} else {
				algos = append(algos, k.Key.Type())
			}
		}
	}
	if len(algos) > 0 {
		for _, a := range ssh.SupportedAlgorithms().HostKeys {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}

	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		if err == nil {
			return nil
		}
		hkErr := &HostKeyError{Host: hostname, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), File: addFile}
		var re *knownhosts.RevokedError
		var ke *knownhosts.KeyError
		switch {
		case errors.As(err, &re):
			hkErr.Revoked, hkErr.File, hkErr.Line = true, re.Revoked.Filename, re.Revoked.Line
			return hkErr
		case errors.As(err, &ke) && len(ke.Want) > 0:
			old := ke.Want[0]
			for _, w := range ke.Want {
				if w.Key.Type() == key.Type() {
					old = w
					break
				}
			}
			hkErr.Changed, hkErr.File, hkErr.Line = true, old.Filename, old.Line
			hkErr.OldKeyType, hkErr.OldFingerprint = old.Key.Type(), ssh.FingerprintSHA256(old.Key)
			return hkErr
		case errors.As(err, &ke):
			switch t.StrictHostKeyChecking {
			case StrictAcceptNew:
				if err := addKnownHost(addFile, hostname, key, t.HashKnownHosts); err != nil {
					return fmt.Errorf("accept new host key for %s: %w", hostname, err)
				}
				log.Info("accepted new SSH host key", "host", hostname, "key", key.Type(), "fingerprint", hkErr.Fingerprint, "file", addFile)
				return nil
			case StrictNo:
				log.Warn("SSH host key not verified (StrictHostKeyChecking no)", "host", hostname, "key", key.Type(), "fingerprint", hkErr.Fingerprint)
				return nil
			}
			return hkErr
		}
		return fmt.Errorf("check host key of %s: %w", hostname, err)
	}
	return cb, algos, nil
}

var zeroAddr = &net.TCPAddr{IP: net.IPv4zero}

// addKnownHost appends key for hostname (host:port) to file, unless another
// dial got there first.
func addKnownHost(file, hostname string, key ssh.PublicKey, hashed bool) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()

	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	existing, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(existing) > 0 {
		if check, err := knownhosts.New(file); err == nil && check(hostname, zeroAddr, key) == nil {
			return nil
		}
	}
	host := knownhosts.Normalize(hostname)
	if hashed {
		host = knownhosts.HashHostname(host)
	}
	line := knownhosts.Line([]string{host}, key) + "\n"
	if len(existing) > 0 && !bytes.HasSuffix(existing, []byte("\n")) {
		line = "\n" + line
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
