// Package policy makes the per-call decisions of the tools/call path that
// need no HTTP and no MCP types. The gateway asks them in turn and maps
// their answers to the wire and the audit stream:
//
//   - Switches (kill switches): is this call stopped, globally, for its
//     upstream, or by a glob on exposed tool names? Switches carry who set
//     them, why, an optional ticket and an optional expiry.
//   - RequiredScopes and Missing: which OAuth scopes does the tool need
//     (per upstream, by original tool name), and which of them does the
//     caller lack?
//   - Drains: is the upstream taken out of rotation on purpose?
//   - Limiter: may this subject call this tool of this upstream now (per
//     principal, per principal and tool, per upstream)?
//
// Constructors validate their settings and precompute. Check, IsDrained
// and Scopes read immutable, precomputed data without locks or
// allocations; Allow
// takes tokens from local buckets (golang.org/x/time/rate in a bounded LRU)
// or, with Redis, runs one GCRA script over the call's keys. Every clock is
// injected as a func() time.Time, so expiry and refill are tested without
// sleeping.
//
// # State
//
// Kill switches and drains are runtime state, not configuration: each is a
// registry over a Store, kept in memory (MemoryStore), in a JSON file that
// survives a restart of a single replica (FileStore), or in Redis for
// replicas (RedisStore: a hash, a pub/sub channel that triggers reloads,
// and a periodic resync, since notifications can be lost). A Redis that
// lost its data (ErrStateLost) gets back the records this replica knows.
// A background loop prunes expired records; OnExpire reports them.
//
// The two fail in opposite directions. Switches fail closed: until their
// store has loaded once, Check stops every call with a synthetic global
// switch (UnavailableID); a store that fails later keeps the last known
// switches in force. Drains fail open: while their store cannot be loaded,
// nothing is drained and Degraded reports it.
//
// Rate limits use Redis when it is configured (shared counters, the Redis
// server's clock). While Redis fails, on_redis_error decides: local
// buckets or a refusal, and one call per RedisRetry probes Redis again.
package policy
