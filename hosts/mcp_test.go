package hosts

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/local"
)

// This machine's teams share one loopback listener serving the broker's
// handler; nothing listens before the handler is handed over or after Close.
func TestLocalMCPEndpoint(t *testing.T) {
	hs := New(Options{Local: local.New(local.Options{}), CredentialDir: "/private/run"})
	a, _ := hs.For(&configs.Team{Name: "a", Path: t.TempDir()})
	b, _ := hs.For(&configs.Team{Name: "b", Path: t.TempDir()})
	ctx := context.Background()
	if _, _, err := a.MCPEndpoint(ctx); !errors.Is(err, ErrNoMCPHandler) {
		t.Fatalf("before ServeMCP: %v, want ErrNoMCPHandler", err)
	}
	hs.ServeMCP(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	urlA, dir, err := a.MCPEndpoint(ctx)
	if err != nil || dir != "/private/run" {
		t.Fatalf("MCPEndpoint: %q %q %v", urlA, dir, err)
	}
	urlB, _, _ := b.MCPEndpoint(ctx)
	if urlA != urlB {
		t.Fatalf("two local teams got %s and %s, want one listener", urlA, urlB)
	}
	resp, err := http.Get(urlA)
	if err != nil || resp.StatusCode != http.StatusTeapot {
		t.Fatalf("GET %s: %v %v", urlA, resp, err)
	}
	resp.Body.Close()
	if err := a.CheckAskBack(ctx); err != nil {
		t.Fatalf("CheckAskBack on this machine: %v", err)
	}
	hs.Close()
	if _, err := http.Get(urlA); err == nil {
		t.Fatalf("%s still answers after Close", urlA)
	}
}
