package remote_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-mcp/switchboard/hosts/claudepath"
	"github.com/switchboard-mcp/switchboard/internal/claudetest"
	"github.com/switchboard-mcp/switchboard/internal/fakeapi"
	"github.com/switchboard-mcp/switchboard/internal/sshdtest"
	"github.com/switchboard-mcp/switchboard/proc"
	"github.com/switchboard-mcp/switchboard/remote"
)

// Real Claude Code, started over real sshd, talking to the fake Messages
// API: the answer proves it ran in the remote directory, and its session
// file is then found over SFTP.
func TestSSHDRealClaude(t *testing.T) {
	bin := claudetest.Binary(t)
	s := sshdtest.Start(t)
	api := fakeapi.New(t)
	env := map[string]string{}
	for _, kv := range claudetest.Env(t, api) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	dir := t.TempDir()
	id := uuid.NewString()
	r := newPool(t).Runner(resolve(t, s, remote.Options{}))
	p, err := r.Start(t.Context(), proc.Spec{
		Dir:     dir,
		Command: bin,
		Args:    []string{"-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose", "--session-id", id},
		Env:     env,
	})
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, p.Stderr())
	msg := `{"type":"user","message":{"role":"user","content":[{"type":"text","text":"hello over ssh; it's $HOME"}]}}`
	if _, err := fmt.Fprintln(p.Stdin(), msg); err != nil {
		t.Fatal(err)
	}

	results := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(p.Stdout())
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev["type"] == "result" {
				results <- ev
				break
			}
		}
		io.Copy(io.Discard, p.Stdout())
		close(results)
	}()
	var res map[string]any
	select {
	case res = <-results:
	case <-time.After(2 * time.Minute): // a bound, not an assertion on speed
		p.Kill()
		t.Fatal("no result event from claude")
	}
	want := fmt.Sprintf("ECHO: hello over ssh; it's $HOME | CWD: %s", dir)
	if res == nil || res["result"] != want || res["session_id"] != id {
		t.Fatalf("result event %v, want result %q and session %s", res, want, id)
	}
	p.Stdin().Close()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	file := claudepath.SessionFile(env["CLAUDE_CONFIG_DIR"], dir, id)
	if fi, err := r.Files().Stat(t.Context(), file); err != nil || fi.Size() == 0 {
		t.Errorf("session file over SFTP: %v, %v", fi, err)
	}
}
