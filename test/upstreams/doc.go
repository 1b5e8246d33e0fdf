// Package upstreams holds realistic demo MCP servers that the gateway's
// end-to-end tests and `make demo` put behind the gateway.
//
// Each server serves deterministic, seeded, in-memory data, so a test can
// assert on exact values. The servers deliberately come from two independent
// implementations: customers is written with the official go-sdk, while
// orders, payments and bulk are written with mark3labs/mcp-go. Every
// constructor builds fresh state, so servers never share data with each
// other or between tests.
//
// An [Observer] records what a server saw (request headers, cancelled tool
// calls) so tests can assert on the gateway's behaviour from the upstream's
// side.
package upstreams
