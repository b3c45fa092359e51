package remote

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// auth is what a dial authenticates with, and what to say when it fails.
type auth struct {
	signers []ssh.Signer
	// tried describes the sources for error messages.
	tried []string
	// notes explain keys that could not be used (encrypted, unreadable).
	notes []string
	agent io.Closer
}

func (a *auth) Close() {
	if a.agent != nil {
		a.agent.Close()
	}
}

// explain adds what was tried to an authentication failure.
func (a *auth) explain(err error) error {
	msg := "tried " + strings.Join(a.tried, ", ")
	if len(a.notes) > 0 {
		msg += "; " + strings.Join(a.notes, "; ")
	}
	return fmt.Errorf("%w (%s)", err, msg)
}

// loadAuth collects keys: the agent's first (SSH_AUTH_SOCK), then identity
// files. Passwords are never used. An encrypted key the agent does not hold
// is reported with the ssh-add command that fixes it.
func loadAuth(t Target, log *slog.Logger) (*auth, error) {
	a := &auth{}
	var agentKeys []ssh.Signer
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		conn, err := net.DialTimeout("unix", sock, 5*time.Second)
		if err != nil {
			log.Debug("ssh-agent unreachable", "socket", sock, "err", err)
		} else {
			a.agent = conn
			if agentKeys, err = agent.NewClient(conn).Signers(); err != nil {
				log.Debug("ssh-agent keys", "err", err)
				agentKeys = nil
			}
			a.tried = append(a.tried, fmt.Sprintf("%d ssh-agent key(s)", len(agentKeys)))
		}
	}
	agentHas := func(pub ssh.PublicKey) bool {
		for _, s := range agentKeys {
			if bytes.Equal(s.PublicKey().Marshal(), pub.Marshal()) {
				return true
			}
		}
		return false
	}

	var fileKeys []ssh.Signer
	var idPubs []ssh.PublicKey
	for _, f := range t.IdentityFiles {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		a.tried = append(a.tried, f)
		if err != nil {
			a.notes = append(a.notes, fmt.Sprintf("identity file %s: %v", f, err))
			continue
		}
		signer, err := ssh.ParsePrivateKey(b)
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			pub := missing.PublicKey
			if pub == nil {
				pub = readPublicKey(f + ".pub")
			}
			if pub != nil {
				idPubs = append(idPubs, pub)
				if agentHas(pub) {
					continue
				}
			}
			a.notes = append(a.notes, fmt.Sprintf("%s is encrypted; add it to ssh-agent with: ssh-add %s", f, ShellWord(f)))
		case err != nil:
			a.notes = append(a.notes, fmt.Sprintf("identity file %s: %v", f, err))
		default:
			idPubs = append(idPubs, signer.PublicKey())
			if !agentHas(signer.PublicKey()) {
				fileKeys = append(fileKeys, signer)
			}
		}
	}
	if t.IdentitiesOnly {
		agentKeys = filterSigners(agentKeys, idPubs)
	}
	a.signers = append(agentKeys, fileKeys...)
	if len(a.signers) == 0 {
		a.Close()
		if len(a.notes) > 0 {
			return nil, errors.New(strings.Join(a.notes, "; "))
		}
		return nil, fmt.Errorf("no SSH key to log in to %s: no keys in ssh-agent (SSH_AUTH_SOCK) and none of %s exist",
			t.Destination(), strings.Join(t.IdentityFiles, ", "))
	}
	return a, nil
}

func filterSigners(signers []ssh.Signer, allowed []ssh.PublicKey) []ssh.Signer {
	var out []ssh.Signer
	for _, s := range signers {
		for _, p := range allowed {
			if bytes.Equal(s.PublicKey().Marshal(), p.Marshal()) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

func readPublicKey(path string) ssh.PublicKey {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	return pub
}
