package dashboard_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/dashboard"
	"github.com/switchboard-mcp/switchboard/dashboard/dashboardtest"
)

// The daemon stops while a page is open: the page's /events stream must
// not hold Serve (and the daemon's shutdown) up.
func TestServeStopsWithOpenEvents(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hosts := dashboard.AllowedHosts(ln.Addr())
	h := dashboard.New(dashboard.Options{Backend: dashboardtest.New(dashboardtest.Demo(time.Now())), Token: token, AllowedHosts: hosts})
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- dashboard.Serve(ctx, ln, h) }()

	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: %s", resp.Status)
	}
	// Host forms a browser uses for this listener, and only those.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if want := []string{"127.0.0.1:" + port, "localhost:" + port}; !slices.Equal(hosts, want) {
		t.Errorf("AllowedHosts = %v, want %v", hosts, want)
	}

	start := time.Now()
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(4 * time.Second): // under Serve's own 5 s cut-off
		t.Fatal("Serve waited for the open /events stream")
	}
	t.Logf("stopped in %s with a page open", time.Since(start))
}

func TestAccessFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), dashboard.TokenFileName)
	want := dashboard.Access{Token: "abc", Addr: "127.0.0.1:1616"}
	if err := dashboard.WriteAccess(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v; want 0600", err, fi.Mode())
	}
	got, err := dashboard.ReadAccess(path)
	if err != nil || got != want {
		t.Fatalf("ReadAccess = %+v, %v; want %+v", got, err, want)
	}
	if got.URL() != "http://127.0.0.1:1616/?token=abc" {
		t.Errorf("URL() = %q", got.URL())
	}
	tok1, _ := dashboard.NewToken()
	tok2, _ := dashboard.NewToken()
	if len(tok1) != 64 || tok1 == tok2 {
		t.Errorf("NewToken gave %q and %q; want two different 32-byte hex tokens", tok1, tok2)
	}
}
