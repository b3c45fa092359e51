package daemon

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// TokenFileName is the file next to the socket that holds the HTTP
// endpoint's bearer token while the daemon runs.
const TokenFileName = "http.token"

// TokenPath is the token file for the daemon on socket.
func TokenPath(socket string) string {
	return filepath.Join(filepath.Dir(socket), TokenFileName)
}

// ReadToken returns the bearer token of the daemon on socket.
func ReadToken(socket string) (string, error) {
	data, err := os.ReadFile(TokenPath(socket))
	if err != nil {
		return "", fmt.Errorf("read the HTTP token (is the daemon running with settings.httpAddr?): %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// writeToken makes a fresh random token and writes it, mode 0600, to the
// token file of socket. A new token per daemon start means a token that
// leaked is good only until the next restart.
func writeToken(socket string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make the HTTP token: %w", err)
	}
	tok := hex.EncodeToString(b)
	path := TokenPath(socket)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".http.token-*")
	if err != nil {
		return "", fmt.Errorf("write the HTTP token: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600; say so for umask-proof clarity.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write the HTTP token: %w", err)
	}
	if _, err := tmp.WriteString(tok + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write the HTTP token: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write the HTTP token: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("write the HTTP token: %w", err)
	}
	return tok, nil
}

// HTTPGuard admits only requests that this user's own clients make to a
// loopback endpoint: the Host is the endpoint's loopback address (no DNS
// rebinding), an Origin, when a browser sends one, is that same address,
// the bearer token is the daemon's, and a POST says it is JSON (which a
// page cannot send cross-origin without a CORS preflight, which nothing
// here answers). The dashboard reuses it.
type HTTPGuard struct {
	// Token is the bearer token every request must carry.
	Token string
	// Port is the endpoint's TCP port; Host and Origin must name it.
	Port string
}

// Wrap returns h behind the guard.
func (g HTTPGuard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.check(r); err != nil {
			var ge guardError
			code := http.StatusForbidden
			if errors.As(err, &ge) {
				code = ge.code
			}
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
			}
			http.Error(w, err.Error(), code)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type guardError struct {
	code int
	msg  string
}

func (e guardError) Error() string { return e.msg }

func (g HTTPGuard) check(r *http.Request) error {
	if !g.loopbackHost(r.Host) {
		return guardError{http.StatusForbidden, fmt.Sprintf("forbidden: Host %q is not this endpoint's loopback address", r.Host)}
	}
	if o := r.Header.Get("Origin"); o != "" && !g.ownOrigin(o) {
		return guardError{http.StatusForbidden, fmt.Sprintf("forbidden: cross-origin request from %q", o)}
	}
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" && sfs != "none" {
		return guardError{http.StatusForbidden, "forbidden: cross-site request (Sec-Fetch-Site: " + sfs + ")"}
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || g.Token == "" || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(g.Token)) != 1 {
		return guardError{http.StatusUnauthorized, "unauthorized: send Authorization: Bearer <the token in " + TokenFileName + " next to the daemon socket>"}
	}
	if r.Method == http.MethodPost {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return guardError{http.StatusUnsupportedMediaType, "unsupported media type: POST needs Content-Type: application/json"}
		}
	}
	return nil
}

// loopbackHost reports whether host (a Host header) names a loopback
// address with the endpoint's port.
func (g HTTPGuard) loopbackHost(host string) bool {
	h, port, err := net.SplitHostPort(host)
	if err != nil || port != g.Port {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (g HTTPGuard) ownOrigin(origin string) bool {
	rest, ok := strings.CutPrefix(origin, "http://")
	return ok && !strings.ContainsAny(rest, "/?#@") && g.loopbackHost(rest)
}
