package fakeapi

import (
	"encoding/json"
	"fmt"
)

// Tool returns the directive line that makes DefaultReply, and the fake
// claude (internal/fakeclaude), call tool name with input, for example
// Tool("Write", map[string]string{"file_path": p, "content": "hi"}) is
// `TOOL Write {"content":"hi","file_path":"..."}`. The answer to the
// request carrying the tool's result is "TOOL RESULT: <result text>", so a
// test reads the tool's outcome (or the permission denial message) from the
// turn's result. input must marshal to a JSON object.
func Tool(name string, input any) string {
	b, err := json.Marshal(input)
	if err != nil {
		panic(fmt.Sprintf("fakeapi.Tool(%s): %v", name, err))
	}
	return "TOOL " + name + " " + string(b)
}

// UseTool returns a script (for Server.Script) that answers every new
// prompt, whatever its text, with a call of tool name with input, and the
// request carrying the result with "TOOL RESULT: <result text>".
func UseTool(name string, input any) func(Request) Reply {
	b, err := json.Marshal(input)
	if err != nil {
		panic(fmt.Sprintf("fakeapi.UseTool(%s): %v", name, err))
	}
	return func(req Request) Reply {
		if req.HasToolResult {
			return Reply{Text: ToolResultPrefix + req.ToolResult}
		}
		return Reply{Tool: &ToolUse{Name: name, Input: b}}
	}
}

// ToolResultPrefix starts the model's answer to a tool result.
const ToolResultPrefix = "TOOL RESULT: "

// WriteCreated is the tool result Claude Code 2.1.332 gives the model when
// Write created path (see internal/claudetest/PROTOCOL.md).
func WriteCreated(path string) string {
	return "File created successfully at: " + path + " (file state is current in your context — no need to Read it back)"
}
