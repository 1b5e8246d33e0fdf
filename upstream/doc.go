// Package upstream holds one client per upstream MCP server: transport
// (Streamable HTTP, stdio, legacy SSE), protocol-era detection, session
// reuse, raw catalog discovery with list_changed refresh, timeouts,
// cancellation and health. It never sees the downstream token.
//
// A Client forwards requests as raw JSON and returns raw result bytes: tool
// arguments and results are never decoded. Streamable HTTP upstreams get a
// lean client on net/http with one tuned transport per upstream; stdio and
// legacy HTTP+SSE upstreams go through mcp-go's client transports at the
// raw JSON-RPC level.
//
// Era detection (HTTP): server/discover with 2026-07-28 first; a server
// listing that version is used statelessly (every request carries
// MCP-Protocol-Version, Mcp-Method, Mcp-Name and the _meta protocol keys);
// anything else falls back to initialize and a 2025-era session. See
// httpDialer.connect for the rules and their sources in the specification.
//
// A background loop per client connects with capped exponential backoff,
// discovers the catalog, re-discovers it when the upstream announces a list
// change (GET stream in the 2025 era, subscriptions/listen in the stateless
// one), and probes the upstream when it has been idle or a call failed in
// transport. While the upstream is down, calls fail fast with
// ErrUnavailable.
//
// Outbound identity: the caller's own token is never sent upstream. Every
// HTTP and SSE request carries the upstream's configured credential
// (Credentials: none, a static secret header, a client credentials token,
// or an RFC 8693 exchange of the caller's token, per Request.Identity) and,
// when enabled, an identity assertion the gateway signs (Asserter). The
// client's own traffic (handshake, discovery, health, notification streams)
// carries the gateway's credential and no assertion; see outbound. stdio
// has no headers and takes neither: pass a secret in stdio.env instead.
package upstream
