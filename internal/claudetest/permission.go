package claudetest

import "encoding/json"

// PermissionRequest is the request of the control_request Claude Code
// 2.1.332 prints on stdout when started with --permission-prompt-tool stdio
// and a tool call is not allowed by its own rules:
//
//	{"type":"control_request","request_id":"<uuid>","request":{"subtype":"can_use_tool",...}}
//
// It waits, with no time limit, for a control_response with that
// request_id. Optional fields are empty when Claude Code leaves them out.
type PermissionRequest struct {
	Subtype     string          `json:"subtype"` // "can_use_tool"
	ToolName    string          `json:"tool_name"`
	DisplayName string          `json:"display_name"`
	Input       json.RawMessage `json:"input"`
	// Description is a short human summary: the file's path relative to
	// the working directory (or absolute outside it) for Write, the
	// command clipped to about 50 characters for Bash.
	Description string `json:"description"`
	// PermissionSuggestions are rule updates a host may offer the user
	// (setMode acceptEdits, addDirectories, addRules); shapes vary by type.
	PermissionSuggestions []json.RawMessage `json:"permission_suggestions"`
	// DecisionReason and DecisionReasonType are set when a rule, not the
	// mode, asked: "Path is outside allowed working directories",
	// "workingDir".
	DecisionReason     string `json:"decision_reason"`
	DecisionReasonType string `json:"decision_reason_type"`
	// BlockedPath is the path that made a Bash command need approval.
	BlockedPath string `json:"blocked_path"`
	// ToolUseID is the id of the tool_use block in the assistant event
	// printed just before.
	ToolUseID string `json:"tool_use_id"`
}

// Permission decodes a can_use_tool control_request; ok is false for any
// other event.
func (e Event) Permission() (req PermissionRequest, ok bool) {
	if e.Type != "control_request" || json.Unmarshal(e.Request, &req) != nil || req.Subtype != "can_use_tool" {
		return PermissionRequest{}, false
	}
	return req, true
}
