package daemon

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The HTTP endpoint answers only requests that carry the daemon's token,
// name its loopback address as Host, come from no foreign origin and post
// JSON; and another local user cannot read the token.
func TestHTTPGuard(t *testing.T) {
	dir := shortDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	socket := filepath.Join(dir, "run", "broker.sock")
	serve(t, socket, addr)
	tok, err := ReadToken(socket)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 64 {
		t.Errorf("token %q, want 32 random bytes in hex", tok)
	}
	fi, err := os.Stat(TokenPath(socket))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %o, want 600", fi.Mode().Perm())
	}

	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		name    string
		headers map[string]string
		host    string
		want    int
	}{
		{"no token", map[string]string{"Content-Type": "application/json"}, "", http.StatusUnauthorized},
		{"wrong token", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + strings.Repeat("0", 64)}, "", http.StatusUnauthorized},
		{"rebinding Host", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + tok}, "evil.example:" + port, http.StatusForbidden},
		{"other port in Host", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + tok}, "127.0.0.1:1", http.StatusForbidden},
		{"foreign Origin", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + tok, "Origin": "http://evil.example"}, "", http.StatusForbidden},
		{"foreign Origin without token", map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example"}, "", http.StatusForbidden},
		{"simple POST", map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer " + tok}, "", http.StatusUnsupportedMediaType},
		{"with token", map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream", "Authorization": "Bearer " + tok}, "", http.StatusOK},
		{"own Origin", map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream", "Authorization": "Bearer " + tok, "Origin": "http://" + addr}, "", http.StatusOK},
		{"localhost Host", map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream", "Authorization": "Bearer " + tok}, "localhost:" + port, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(initialize))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, body, tc.want)
			}
			if tc.want == http.StatusOK && !strings.Contains(string(body), "serverInfo") {
				t.Errorf("answer %s, want an initialize result", body)
			}
		})
	}

	t.Run("another user cannot read the token", func(t *testing.T) {
		cmd := asOther(t, "cat", TokenPath(socket))
		out, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(string(out), tok) {
			t.Fatalf("user %s read the token file: %v %s", otherUserName, err, out)
		}
		if !strings.Contains(string(out), "Permission denied") {
			t.Errorf("cat as %s: %s, want Permission denied", otherUserName, out)
		}
	})
}
