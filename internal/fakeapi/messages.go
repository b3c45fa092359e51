package fakeapi

import (
	"encoding/json"
	"regexp"
	"strings"
)

// messagesRequest is the part of a Messages API request body the fake reads.
type messagesRequest struct {
	Model     string          `json:"model"`
	MaxTokens int             `json:"max_tokens"`
	Stream    bool            `json:"stream"`
	System    json.RawMessage `json:"system"`
	Messages  []message       `json:"messages"`
	Tools     []struct {
		Name string `json:"name"`
	} `json:"tools"`
}

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// block is one content block of a message; only the fields the fake reads.
type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

// blocks decodes a content field, which the API accepts either as a plain
// string or as an array of blocks.
func blocks(raw json.RawMessage) []block {
	if len(raw) == 0 {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []block{{Type: "text", Text: s}}
	}
	var bs []block
	_ = json.Unmarshal(raw, &bs)
	return bs
}

// blockText joins the text of text blocks (the shape of system prompts and
// of tool_result content).
func blockText(raw json.RawMessage) string {
	var parts []string
	for _, b := range blocks(raw) {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// reminderRE matches the <system-reminder> sections Claude Code adds to user
// messages (context, todo lists, date changes); they are not what the human
// typed.
var reminderRE = regexp.MustCompile(`(?s)<system-reminder>.*?</system-reminder>`)

// humanText returns what the person last typed in a user message: the text
// of its last text block, system reminders removed, or "" when it holds none
// (a message that only carries tool results). Only the last block counts
// because Claude Code merges consecutive user messages into one: after an
// interrupt the next request carries the interrupted prompt, an
// "[Request interrupted by user]" marker and the new prompt as three blocks.
func humanText(m message) string {
	bs := blocks(m.Content)
	for i := len(bs) - 1; i >= 0; i-- {
		if bs[i].Type != "text" {
			continue
		}
		t := strings.TrimSpace(reminderRE.ReplaceAllString(bs[i].Text, ""))
		if t != "" && !strings.HasPrefix(t, "[Request interrupted") {
			return t
		}
	}
	return ""
}

// lastToolResult returns the text of the tool_result blocks in m, and
// whether there was any.
func lastToolResult(m message) (string, bool) {
	var parts []string
	found := false
	for _, b := range blocks(m.Content) {
		if b.Type != "tool_result" {
			continue
		}
		found = true
		parts = append(parts, blockText(b.Content))
	}
	return strings.Join(parts, "\n"), found
}

// cwdRE finds the working directory Claude Code states in its system prompt
// ("Primary working directory: /path" or "Working directory: /path").
var cwdRE = regexp.MustCompile(`(?m)[Ww]orking directory:\s*(\S.*?)\s*$`)

func findCWD(system string) string {
	if m := cwdRE.FindStringSubmatch(system); m != nil {
		return m[1]
	}
	return ""
}
