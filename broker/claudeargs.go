package broker

import (
	"github.com/switchboard-mcp/switchboard/configs"
)

// claudeArgs builds Claude Code's flags. Message text is never among them.
//
// Every process gets --permission-prompt-tool stdio: a tool call its own
// rules (allowedTools, disallowedTools) do not settle comes back over the
// same pipe as the turn, local or over SSH, and the broker decides it by
// the team's grantPermission (permission.go). No permission check is ever
// skipped.
func (b *Broker) claudeArgs(t *configs.Team, sessionID string, resume bool) []string {
	// The session flag goes first, as iris-mcp orders it (measured there as
	// faster to resume; no difference on 2.1.332, see BENCHMARKS.md): the
	// order is free, so take the one that cannot be slower.
	args := []string{"--session-id", sessionID}
	if resume {
		args[0] = "--resume"
	}
	args = append(args, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose")
	if t.MCPConfig != "" {
		args = append(args, "--mcp-config", t.MCPConfig)
	}
	for _, f := range []struct{ flag, val string }{
		{"--append-system-prompt", t.AppendSystemPrompt},
		{"--allowed-tools", t.AllowedTools},
		{"--disallowed-tools", t.DisallowedTools},
		{"--permission-prompt-tool", "stdio"},
		{"--model", t.Model},
	} {
		if f.val != "" {
			args = append(args, f.flag, f.val)
		}
	}
	return args
}
