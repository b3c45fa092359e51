package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Decision answers a Claude Code permission prompt, in the shape its
// --permission-prompt-tool expects.
type Decision struct {
	Behavior     string         `json:"behavior"` // allow | deny
	UpdatedInput map[string]any `json:"updatedInput,omitempty"`
	Message      string         `json:"message,omitempty"`
}

// Approve decides whether team's Claude may use tool with input, by the
// team's grantPermission. Every decision is logged.
func (b *Broker) Approve(team, tool string, input map[string]any) Decision {
	t, ok := b.config().Team(team)
	var d Decision
	switch {
	case !ok:
		d = Decision{Behavior: "deny", Message: fmt.Sprintf("switchboard has no team %q to decide for", team)}
	case t.GrantPermission == "yes":
		if input == nil {
			input = map[string]any{}
		}
		d = Decision{Behavior: "allow", UpdatedInput: input}
	case t.GrantPermission == "no":
		d = Decision{Behavior: "deny", Message: fmt.Sprintf("team %s does not grant tool permissions (grantPermission: no); use only the tools its allowedTools lists", team)}
	default:
		d = Decision{Behavior: "deny", Message: fmt.Sprintf("team %s has grantPermission %q and switchboard has no one to ask; set grantPermission: yes or list %s in allowedTools", team, t.GrantPermission, tool)}
	}
	b.log.Info("permission "+d.Behavior, "team", team, "tool", tool, "input", clip(fmt.Sprint(input), 200))
	return d
}

// clip shortens s to at most n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// ApproveArgs are what Claude Code passes its permission prompt tool.
type ApproveArgs struct {
	ToolName  string         `json:"tool_name" jsonschema:"the tool Claude wants to use"`
	Input     map[string]any `json:"input,omitempty" jsonschema:"the tool's input"`
	ToolUseID string         `json:"tool_use_id,omitempty" jsonschema:"the tool use being decided"`
	Reason    string         `json:"reason,omitempty" jsonschema:"why Claude asks; accepted from iris-mcp clients"`
}

// approveTool registers permissions__approve: schema, annotations and handler together.
func (t *tools) approveTool(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{Name: "permissions__approve", Description: "Claude Code's --permission-prompt-tool for a team's own Claude: allows or denies a tool use by the team's grantPermission (yes or no). Not for asking teams questions."}, t.approve)
}

// approve is the permissions__approve tool: the caller is the team whose
// Claude asks (its `switchboard mcp --as TEAM`).
func (t *tools) approve(_ context.Context, _ *mcp.CallToolRequest, in ApproveArgs) (*mcp.CallToolResult, any, error) {
	if strings.TrimSpace(in.ToolName) == "" {
		return nil, nil, fmt.Errorf("tool_name is required: the tool Claude wants to use")
	}
	d := t.b.Approve(t.caller, in.ToolName, in.Input)
	text, err := json.Marshal(d)
	if err != nil {
		return nil, nil, err
	}
	// Claude Code reads the decision from the text.
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(text)}}}, nil, nil
}
