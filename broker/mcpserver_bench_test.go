package broker

import (
	"testing"
)

// BenchmarkNewMCPServer measures what the daemon does for every MCP
// connection before its first call (a Claude Code window's `switchboard
// mcp`, a Claude process's connection for asking back): build the server
// with every tool and its schemas. Run it under the bench lock.
func BenchmarkNewMCPServer(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewMCPServer(nil, "web")
	}
}
