package broker

import (
	"testing"
)

// BenchmarkNewMCPServer measures building an MCP server with every tool
// and its schemas: what the daemon does once per configured caller (their
// connections share it), and for every connection of a Claude process that
// asks back with its session credential. Run it under the bench lock.
func BenchmarkNewMCPServer(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewMCPServer(nil, "web")
	}
}
