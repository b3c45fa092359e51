package broker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/switchboard-mcp/switchboard/proc"
)

// Entry is one conversation turn read from a session file.
type Entry struct {
	Role string    `json:"role"` // user | assistant
	Text string    `json:"text"`
	Time time.Time `json:"time,omitzero"`
}

// readTranscript reads the user and assistant text of a session file. Tool
// calls and results are summarised, not reproduced.
func readTranscript(ctx context.Context, files proc.Files, file string) ([]Entry, error) {
	data, err := files.ReadFile(ctx, file)
	if err != nil {
		return nil, err
	}
	return parseTranscript(data), nil
}

func parseTranscript(data []byte) []Entry {
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	for sc.Scan() {
		var line struct {
			Type        string    `json:"type"`
			IsMeta      bool      `json:"isMeta"`
			IsSidechain bool      `json:"isSidechain"`
			IsSummary   bool      `json:"isCompactSummary"`
			Timestamp   time.Time `json:"timestamp"`
			Message     struct {
				Role    string          `json:"role"`
				Content json.RawMessage `json:"content"`
			} `json:"message"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if (line.Type != "user" && line.Type != "assistant") || line.IsMeta || line.IsSidechain || line.IsSummary {
			continue
		}
		text := contentText(line.Message.Content)
		if text == "" || isLocalCommand(text) {
			continue
		}
		out = append(out, Entry{Role: line.Type, Text: text, Time: line.Timestamp})
	}
	return out
}

// isLocalCommand reports a user line recording a slash command Claude Code
// ran itself (a standby's warm-up /cost, /compact): not a message. Claude
// Code 2.1.332 writes it without isMeta.
func isLocalCommand(text string) bool {
	return strings.HasPrefix(text, "<command-name>") || strings.HasPrefix(text, "<local-command-")
}

// contentText extracts the text of a message content that is either a plain
// string or a list of blocks.
func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var blocks []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &blocks) != nil {
		return ""
	}
	var b strings.Builder
	for _, c := range blocks {
		if c.Type == "text" {
			if b.Len() > 0 {
				b.WriteString("\n")
			}
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// recoverAnswer looks in a transcript for a message the broker wrote before
// it went down: a user entry whose text ours accepts (see wroteHeader).
// delivered says whether Claude recorded the message; answer is the last
// assistant text after it, when Claude finished answering.
func recoverAnswer(entries []Entry, ours func(text string) bool) (delivered bool, answer string) {
	for i, e := range entries {
		if e.Role != "user" || !ours(e.Text) {
			continue
		}
		delivered = true
		answer = ""
		for _, f := range entries[i+1:] {
			if f.Role == "user" {
				break
			}
			answer = f.Text
		}
	}
	return delivered, answer
}
