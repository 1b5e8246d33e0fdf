// Package upstream holds one client per upstream MCP server: transport
// (Streamable HTTP, stdio, legacy SSE), protocol-era detection, session
// reuse, raw catalog discovery with list_changed refresh, timeouts,
// cancellation and health. It never sees the downstream token.
package upstream
