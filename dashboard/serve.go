package dashboard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TokenFileName is the file, next to the daemon's socket, that holds the
// running dashboard's token and address (mode 0600). `switchboard
// dashboard` reads it to print the page's URL.
const TokenFileName = "dashboard.token"

// TokenPath is the token file of the daemon on socket.
func TokenPath(socket string) string { return filepath.Join(filepath.Dir(socket), TokenFileName) }

// Access is what a client needs to open the daemon's dashboard.
type Access struct {
	Token string
	// Addr is the listener's host:port.
	Addr string
}

// URL opens the page with the token, which the page swaps for a cookie.
func (a Access) URL() string { return "http://" + a.Addr + "/?token=" + a.Token }

// NewToken returns a fresh random token: 32 bytes, hex.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make the dashboard token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// WriteAccess writes a, mode 0600, to path (token, then address, a line
// each), replacing the file atomically so a reader never sees half of it.
func WriteAccess(path string, a Access) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dashboard.token-*")
	if err != nil {
		return fmt.Errorf("write the dashboard token: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(a.Token + "\n" + a.Addr + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write the dashboard token: %w", err)
	}
	return nil
}

// ReadAccess reads what WriteAccess wrote.
func ReadAccess(path string) (Access, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Access{}, err
	}
	tok, addr, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	if tok == "" || addr == "" {
		return Access{}, fmt.Errorf("%s is incomplete; restart the daemon (switchboard restart)", path)
	}
	return Access{Token: strings.TrimSpace(tok), Addr: strings.TrimSpace(addr)}, nil
}

// AllowedHosts are the Host header values a browser sends for a loopback
// listener at addr: the address itself ("127.0.0.1:P", "[::1]:P") and
// "localhost:P". The other loopback family is not listed: the listener is
// not reachable through it.
func AllowedHosts(addr net.Addr) []string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return nil
	}
	return []string{net.JoinHostPort(host, port), "localhost:" + port}
}

// Serve serves h on ln until ctx ends, then shuts the server down. Every
// request's context derives from ctx, so open /events streams end with it
// and do not hold the shutdown; requests still running after a few seconds
// are cut off.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve the dashboard on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve the dashboard on %s: %w", ln.Addr(), err)
	}
	return nil
}
