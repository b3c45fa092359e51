package main

import (
	"time"

	"github.com/google/uuid"
)

// localCommands are the slash commands Claude Code answers itself, with no
// request to the Messages API (switchboard warms standby processes with
// /cost). Claude Code 2.1.332 records /cost as "usage".
var localCommands = map[string]string{"/cost": "usage"}

// localCommand answers a local slash command as Claude Code 2.1.332 does: an
// init line, a result with local_command set and num_turns 0, and three
// session-file lines (an isMeta caveat, the command as a user line without
// isMeta, and a system local_command line with its output). It reports
// whether msg was one.
func (s *session) localCommand(msg message) bool {
	name, ok := localCommands[msg.text()]
	if !ok {
		return false
	}
	start := time.Now()
	s.out.write(s.initEvent())
	out := "Estimated cost:        $0.0000\nUsage:                 0 input, 0 output"
	prompt := uuid.NewString()
	for _, line := range []map[string]any{
		{"type": "user", "isMeta": true, "promptId": prompt, "message": map[string]any{"role": "user",
			"content": "<local-command-caveat>The command below was run directly in Claude Code, not sent to you as a request, and its output goes straight to the user. It's recorded here as context for later messages.</local-command-caveat>"}},
		{"type": "user", "promptId": prompt, "message": map[string]any{"role": "user",
			"content": "<command-name>/" + name + "</command-name>\n            <command-message>" + name + "</command-message>\n            <command-args></command-args>"}},
		{"type": "system", "subtype": "local_command", "level": "info", "isMeta": false,
			"content": "<local-command-stdout>" + out + "</local-command-stdout>", "commandRun": map[string]any{"command": name, "args": ""}},
	} {
		if _, err := s.record(line); err != nil {
			return true
		}
	}
	s.result(start, map[string]any{"subtype": "success", "is_error": false, "result": out,
		"local_command": msg.text()[1:], "num_turns": 0, "duration_api_ms": 0,
		"usage": map[string]int{"input_tokens": 0, "output_tokens": 0}})
	return true
}
