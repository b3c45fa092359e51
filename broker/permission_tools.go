package broker

import (
	"context"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// PendingArgs are permissions_pending's arguments.
type PendingArgs struct {
	Team string `json:"team,omitempty" jsonschema:"only this team's requests (either side of the pair); omit for every team"`
}

// PendingResult is permissions_pending's result.
type PendingResult struct {
	Requests []Permission `json:"requests"`
}

// DecideArgs are permissions_decide's arguments.
type DecideArgs struct {
	RequestID uint64 `json:"requestId" jsonschema:"the id permissions_pending lists"`
	Allow     bool   `json:"allow" jsonschema:"true lets the team's Claude use the tool; false denies it"`
	Reason    string `json:"reason,omitempty" jsonschema:"for a denial: the text the team's Claude gets as the tool's result"`
}

// permissionTools registers permissions_pending and permissions_decide.
func (t *tools) permissionTools(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "permissions_pending", Annotations: readOnly, Description: "Tool-permission requests waiting for an operator: which team's Claude wants which tool with which input, for which message, since when. Teams in grantPermission ask mode (and forward when the asker cannot be asked) wait here until permissions_decide or settings.permissionTimeout."}, t.pending)
	addTool(s, &mcp.Tool{Name: "permissions_decide", Description: "Allow or deny one pending tool-permission request by its requestId (from permissions_pending). A denial's reason is the tool result the team's Claude reads."}, t.decide)
}

func (t *tools) pending(ctx context.Context, _ *mcp.CallToolRequest, in PendingArgs) (*mcp.CallToolResult, PendingResult, error) {
	reqs, err := t.b.PendingPermissions(ctx, in.Team)
	if err != nil {
		return nil, PendingResult{}, err
	}
	out := PendingResult{Requests: reqs}
	return jsonResult(out), out, nil
}

func (t *tools) decide(ctx context.Context, _ *mcp.CallToolRequest, in DecideArgs) (*mcp.CallToolResult, *Permission, error) {
	if in.RequestID == 0 {
		return nil, nil, fmt.Errorf("requestId is required; list the pending requests with permissions_pending")
	}
	p, err := t.b.DecidePermission(ctx, in.RequestID, in.Allow, "operator "+t.caller, strings.TrimSpace(in.Reason))
	if err != nil {
		return nil, nil, err
	}
	verb := "allowed"
	if !in.Allow {
		verb = "denied"
	}
	return textResult(fmt.Sprintf("%s request %d: team %s may%s use %s", verb, p.ID, p.To, map[bool]string{true: "", false: " not"}[in.Allow], p.Tool), p), p, nil
}

// elicitor returns the caller's elicitation when its client declared the
// capability (forward mode asks it), else nil.
func elicitor(req *mcp.CallToolRequest) elicitFunc {
	if req == nil || req.Session == nil {
		return nil
	}
	ip := req.Session.InitializeParams()
	if ip == nil || ip.Capabilities == nil || ip.Capabilities.Elicitation == nil {
		return nil
	}
	return req.Session.Elicit
}
