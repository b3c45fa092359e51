package daemon

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/poll"
)

// The daemon's transport must be invisible: for the same bytes from a
// client, the same MCP server answers the same through it as through the
// SDK's IOTransport, batches, multi-line values, blank lines and bad input
// included.
func TestSocketTransportMatchesIOTransport(t *testing.T) {
	t.Parallel()
	const (
		init0325  = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
		init0618  = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
		inited    = `{"jsonrpc":"2.0","method":"notifications/initialized","params":{}}`
		call      = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"progressToken":"p1"}}}`
		badArgs   = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":7}}}`
		unknown   = `{"jsonrpc":"2.0","id":"u","method":"tools/call","params":{"name":"nope","arguments":{}}}`
		batch     = `[{"jsonrpc":"2.0","id":10,"method":"ping"},{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"echo","arguments":{"text":"b"}}}]`
		multiline = "{\"jsonrpc\":\"2.0\",\n  \"id\":4,\n  \"method\":\"tools/list\"\n}"
	)
	// Each message is written once the answers to the one before are in
	// (answers: the lines it gets back; -1: the session ends), so both
	// transports see the same sequence whatever the scheduling.
	type msg struct {
		text    string
		answers int
	}
	cases := []struct {
		name string
		msgs []msg
	}{
		{"calls", []msg{{init0325, 1}, {inited, 0}, {call, 1}, {badArgs, 1}, {unknown, 1}}},
		{"batch before 2025-06-18", []msg{{init0325, 1}, {inited, 0}, {batch, 1}, {call, 1}}},
		{"batch from 2025-06-18 on ends the session", []msg{{init0618, 1}, {inited, 0}, {batch, -1}}},
		{"batch before initialize", []msg{{batch, 1}}},
		{"empty batch ends the session", []msg{{init0325, 1}, {inited, 0}, {"[]", -1}}},
		{"duplicate ids in a batch end the session", []msg{{init0325, 1}, {inited, 0}, {`[{"jsonrpc":"2.0","id":5,"method":"ping"},{"jsonrpc":"2.0","id":5,"method":"ping"}]`, -1}}},
		{"a value over several lines, blank lines", []msg{{init0325, 1}, {"", 0}, {inited, 0}, {"  ", 0}, {multiline, 1}}},
		{"CRLF line ends", []msg{{init0325 + "\r", 1}, {inited + "\r", 0}, {call + "\r", 1}}},
		{"trailing data after a value ends the session", []msg{{init0325, 1}, {inited, 0}, {call + ` {"x":1}`, -1}}},
		{"not JSON ends the session", []msg{{init0325, 1}, {"hello", -1}}},
		{"wrong version tag ends the session", []msg{{init0325, 1}, {`{"jsonrpc":"1.0","id":6,"method":"ping"}`, -1}}},
		{"call before initialize", []msg{{call, 1}}},
		{"field names are exact-case", []msg{{init0325, 1}, {`{"jsonrpc":"2.0","ID":7,"Method":"ping"}`, -1}}},
		{"a float id", []msg{{init0325, 1}, {`{"jsonrpc":"2.0","id":8.5,"method":"ping"}`, 1}}},
		{"nesting past 1000 ends the session", []msg{{init0325, 1}, {`{"jsonrpc":"2.0","id":9,"method":"ping","params":{"x":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}}`, -1}}},
	}
	quiet := slog.New(slog.DiscardHandler)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run := func(tr func(net.Conn) mcp.Transport) []string {
				c := serveTest(t, tr)
				br := bufio.NewReader(c)
				var out []string
				for _, m := range tc.msgs {
					if _, err := c.Write([]byte(m.text + "\n")); err != nil {
						return append(out, "write: session ended")
					}
					for i := 0; i < m.answers || m.answers < 0; i++ {
						line, err := br.ReadString('\n')
						if err != nil {
							if ne, ok := err.(net.Error); ok && ne.Timeout() {
								t.Fatalf("no answer to %q within %s", m.text, poll.Deadline)
							}
							return append(out, "session ended")
						}
						out = append(out, strings.TrimSpace(line))
					}
				}
				return out
			}
			// The SDK's transport as the daemon used it: through the out queue.
			want := run(func(c net.Conn) mcp.Transport {
				return &mcp.IOTransport{Reader: c, Writer: newOutQueue(c, maxOutQueue, quiet)}
			})
			got := run(func(c net.Conn) mcp.Transport {
				return &socketTransport{r: c, conn: c, out: newOutQueue(c, maxOutQueue, quiet)}
			})
			if !slices.Equal(got, want) {
				t.Errorf("the daemon's transport answered\n%s\nthe SDK's IOTransport\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// serveTest serves a test MCP server, with one tool (echo), on one end of
// a pipe through the transport tr makes, and returns the other end.
func serveTest(t *testing.T, tr func(net.Conn) mcp.Transport) net.Conn {
	t.Helper()
	srv := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	type echoArgs struct {
		Text string `json:"text"`
	}
	mcp.AddTool(srv, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: a.Text}}}, nil, nil
	})
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	ss, err := srv.Connect(context.Background(), tr(server), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	// A bound for a hang only.
	_ = client.SetDeadline(time.Now().Add(poll.Deadline))
	return client
}
