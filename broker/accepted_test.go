package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/poll"
)

// A client that asks for progress (as Claude Code does for every tool
// call) hears first that its message was accepted, with the id the answer
// then carries; Claude's relayed progress comes after that notice.
func TestAcceptedNoticeComesFirst(t *testing.T) {
	t.Parallel()
	h := newHarness(t, fakeBackend, "", "web", "api")
	var (
		mu    sync.Mutex
		notes = map[string][]string{} // by progress token
	)
	cs := h.connect("web", &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
		mu.Lock()
		defer mu.Unlock()
		tok := fmt.Sprint(req.Params.ProgressToken)
		notes[tok] = append(notes[tok], req.Params.Message)
	}})
	ids := map[string]uint64{}
	for i := range 3 {
		tok := fmt.Sprintf("ask-%d", i)
		p := &mcp.CallToolParams{Name: "send_message", Arguments: map[string]any{"toTeam": "api", "message": "what is up?", "timeout": 60000}}
		p.SetProgressToken(tok)
		res, err := cs.CallTool(context.Background(), p)
		if err != nil || res.IsError {
			t.Fatalf("ask %d: %v %s", i, err, text(res))
		}
		var r Reply
		if err := json.Unmarshal(mustJSON(t, res.StructuredContent), &r); err != nil || r.Status != "answered" {
			t.Fatalf("ask %d: reply %s: %v", i, text(res), err)
		}
		ids[tok] = r.MessageID
	}
	// The client handles notifications apart from results, in the order
	// they came: wait until each ask's notice and relayed answer are in.
	poll.Until(t, "the notices and the relayed answers of every ask", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for tok := range ids {
			if len(notes[tok]) < 2 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	for tok, id := range ids {
		got := notes[tok]
		if first, ok := ParseAccepted(got[0]); !ok || first != id {
			t.Errorf("%s: first progress notification %q; want the accepted notice of message %d", tok, got[0], id)
		}
		for _, n := range got[1:] {
			if _, ok := ParseAccepted(n); ok {
				t.Errorf("%s: a second accepted notice %q", tok, n)
			}
		}
	}
}
