// Package policy makes the per-call decisions of the tools/call path that
// need no HTTP and no MCP types: kill switches and drains (is this call
// allowed to run at all?), required scopes (which OAuth scopes does this
// tool need?) and rate limits (may this subject call now?). The gateway
// composes them in the order route → kill switch → authorization → rate
// limit → breaker → upstream → audit and maps their answers to the wire.
//
// Constructors validate their configuration and precompute; the hot-path
// methods (Switches.Check, Drains.IsDrained, RequiredScopes.Scopes,
// Limiter.Allow) only look things up. Time is injected as a func() time.Time
// so expiry and refill are tested without sleeping.
//
// # Shared state
//
// With one replica, kill switches and drains live in memory or in a JSON
// state file (FileStore) and rate-limit buckets in a bounded LRU. With
// replicas, all three live in Redis: kill switches in a hash with a pub/sub
// channel for changes and a periodic resync, rate limits as GCRA
// timestamps updated by one Lua script. Kill switches fail closed: a
// replica that cannot load their state refuses every call until it can.
package policy
