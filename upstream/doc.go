// Package upstream holds one Client per upstream MCP server: its transport,
// protocol-era detection, sessions, raw catalog discovery with list_changed
// refresh, the resilience of each call, cancellation, progress, requests
// from the server, health, outbound credentials and client telemetry. It
// never sees the downstream token, except as the subject token of a token
// exchange.
//
// A Client forwards requests as raw JSON and returns raw result bytes: tool
// arguments and results are never decoded. Only the top level of params and
// of its _meta is rewritten (the protocol keys of the stateless era, the
// progress token, the trace context).
//
// Transports. Streamable HTTP upstreams (http.go) are spoken to by the
// package's own client. A plain-http upstream reached directly gets h1
// (upstream/internal/h1), an HTTP/1.1 client whose calling goroutine writes
// the request and reads the answer on a pooled connection, with the request
// line and the session's headers rendered once per session; https
// upstreams, and upstreams behind an HTTP proxy from the environment, get a
// tuned http.Transport. The headers of a POST are described once for both
// (httpConn.fields): the session's, the request's own, then the caller's
// extra ones. In the stateless era, tool arguments annotated x-mcp-header
// travel as Mcp-Param-* headers too (headers.go). stdio and legacy HTTP+SSE
// upstreams go through mcp-go's client transports at the raw JSON-RPC level
// (raw.go).
//
// Era detection (HTTP): server/discover with 2026-07-28 first; a server
// that does not list that version gets initialize and the 2025 era. Under
// protocol_version auto, a server that lists it gets initialize too: one
// that answers with a session id keeps sessions and is called in the 2025
// era, which costs it least; one that answers without is used statelessly
// (every request carries MCP-Protocol-Version, Mcp-Method, Mcp-Name and the
// _meta protocol keys). See httpDialer.connect and autoEra for the rules
// and their sources in the specification.
//
// Calls to a 2025-era HTTP upstream that keeps sessions go on a pool of
// sessions per principal, one call at a time per session, opened with the
// principal's credential (pool.go); the client's own session carries its
// discovery, probes, notification stream and subscriptions.
//
// A call (Client.Call) gets a client span and mcp.client.operation.duration
// (observe.go), passes the breaker of the upstream or of its tool
// (breaker.go), takes a bulkhead slot (bulkhead.go), runs under its tool's
// timeout and, when the tool is safe to repeat, is retried after transient
// failures within that deadline (retry.go). A session that expired is
// renewed, and an idempotent request sent again on the new one. A call
// abandoned by its caller is cancelled upstream: notifications/cancelled in
// the 2025 era, the closed response stream in the stateless one. Progress
// notifications reach their call through a token of the client's own
// (progress.go); requests a session-era server sends on a call's stream are
// relayed to the caller (serverreq.go).
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
// carries the gateway's credential and no assertion; see outbound. A pooled
// session's handshake and its own requests carry its principal's. stdio
// has no headers and takes neither: pass a secret in stdio.env instead.
package upstream
