package broker

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// addTool must be mcp.AddTool to a client: the same tool list and, for the
// same arguments, the same result or error, whatever the handler returns.
func TestAddToolMatchesSDK(t *testing.T) {
	t.Parallel()
	type args struct {
		Name  string   `json:"name" jsonschema:"a name"`
		Count *int64   `json:"count,omitempty"`
		Tags  []string `json:"tags,omitempty"`
		Mode  string   `json:"mode,omitempty"`
	}
	type out struct {
		Echo  string `json:"echo"`
		Count int64  `json:"count,omitempty"`
	}
	handler := func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, *out, error) {
		switch in.Name {
		case "fail":
			return nil, nil, errors.New("the handler failed")
		case "rpc":
			return nil, nil, &jsonrpc.Error{Code: -32001, Message: "a JSON-RPC error"}
		case "nil":
			return nil, nil, nil
		case "text":
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "own text"}}}, &out{Echo: in.Name}, nil
		}
		o := &out{Echo: in.Name}
		if in.Count != nil {
			o.Count = *in.Count
		}
		return nil, o, nil
	}
	plain := func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, any, error) {
		return textResult("plain "+in.Name, nil), nil, nil
	}
	connect := func(add func(*mcp.Server)) *mcp.ClientSession {
		s := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, nil)
		add(s)
		st, ct := mcp.NewInMemoryTransports()
		ss, err := s.Connect(context.Background(), st, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ss.Close() })
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(context.Background(), ct, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	sdk := connect(func(s *mcp.Server) {
		mcp.AddTool(s, &mcp.Tool{Name: "typed", Description: "d"}, handler)
		mcp.AddTool(s, &mcp.Tool{Name: "plain"}, plain)
	})
	ours := connect(func(s *mcp.Server) {
		addTool(s, &mcp.Tool{Name: "typed", Description: "d"}, handler)
		addTool(s, &mcp.Tool{Name: "plain"}, plain)
	})
	show := func(v any, err error) string {
		b, _ := json.Marshal(v)
		if err != nil {
			return "error: " + err.Error()
		}
		return string(b)
	}
	if a, b := show(sdk.ListTools(context.Background(), nil)), show(ours.ListTools(context.Background(), nil)); a != b {
		t.Errorf("tools/list: addTool gives\n%s\nmcp.AddTool\n%s", b, a)
	}
	for _, tc := range []struct {
		tool string
		args any
	}{
		{"typed", map[string]any{"name": "a"}},
		{"typed", map[string]any{"name": "a", "count": 3, "tags": []string{"x"}}},
		{"typed", map[string]any{"name": 7}},
		{"typed", map[string]any{}},
		{"typed", nil},
		{"typed", map[string]any{"name": "a", "extra": true}},
		{"typed", map[string]any{"Name": "a"}},
		{"typed", map[string]any{"name": "a", "count": 1.5}},
		{"typed", []int{1}},
		{"typed", "a string"},
		{"typed", map[string]any{"name": "fail"}},
		{"typed", map[string]any{"name": "rpc"}},
		{"typed", map[string]any{"name": "nil"}},
		{"typed", map[string]any{"name": "text"}},
		{"typed", map[string]any{"name": "a\u00e9\u2028\"\\"}},
		{"plain", map[string]any{"name": "p"}},
		{"plain", map[string]any{"name": 1}},
	} {
		p := &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args}
		a, b := show(sdk.CallTool(context.Background(), p)), show(ours.CallTool(context.Background(), p))
		if a != b {
			t.Errorf("%s %v: addTool gives\n%s\nmcp.AddTool\n%s", tc.tool, tc.args, b, a)
		}
	}
}
