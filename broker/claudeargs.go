package broker

import (
	"encoding/json"

	"github.com/switchboard-mcp/switchboard/configs"
)

// PermissionTool is the MCP name Claude Code calls a team's permission
// prompts by, when the broker answers them (see Options.SelfMCP).
const PermissionTool = "mcp__switchboard__permissions__approve"

// claudeArgs builds Claude Code's flags. Message text is never among them.
func (b *Broker) claudeArgs(t *configs.Team, host Host, sessionID string, resume bool) []string {
	// The session flag goes first, as iris-mcp orders it (measured there as
	// faster to resume; no difference on 2.1.332, see BENCHMARKS.md): the
	// order is free, so take the one that cannot be slower.
	args := []string{"--session-id", sessionID}
	if resume {
		args[0] = "--resume"
	}
	args = append(args, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose")
	mcpConfigs := []string{}
	if t.MCPConfig != "" {
		mcpConfigs = append(mcpConfigs, t.MCPConfig)
	}
	promptTool := t.PermissionPromptTool
	// grantPermission yes or no: the broker itself answers the team's
	// permission prompts, through a switchboard MCP server for the team's
	// Claude. That works where --dangerously-skip-permissions does not (as
	// root) and puts every decision in the broker's log.
	brokerDecides := (t.GrantPermission == "yes" || t.GrantPermission == "no") && promptTool == "" && host.ServesBrokerMCP() && b.selfMCP != nil
	if brokerDecides {
		command, cargs := b.selfMCP(t.Name)
		cfg, _ := json.Marshal(map[string]any{"mcpServers": map[string]any{
			"switchboard": map[string]any{"type": "stdio", "command": command, "args": cargs},
		}})
		mcpConfigs = append(mcpConfigs, string(cfg))
		promptTool = PermissionTool
	}
	if len(mcpConfigs) > 0 {
		args = append(args, "--mcp-config")
		args = append(args, mcpConfigs...)
	}
	for _, f := range []struct{ flag, val string }{
		{"--append-system-prompt", t.AppendSystemPrompt},
		{"--allowed-tools", t.AllowedTools},
		{"--disallowed-tools", t.DisallowedTools},
		{"--permission-prompt-tool", promptTool},
		{"--model", t.Model},
	} {
		if f.val != "" {
			args = append(args, f.flag, f.val)
		}
	}
	if t.GrantPermission == "yes" && !brokerDecides {
		args = append(args, "--dangerously-skip-permissions")
	}
	return args
}
