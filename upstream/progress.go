package upstream

import (
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// progressRegistry routes notifications/progress to the call that asked for
// them. It belongs to the client, not to an HTTP response: on one stateful
// session mcp-go delivers a call's progress on whichever open stream reads
// the session's notification channel first, often another call's POST
// stream or the GET stream (PITFALLS.md). Each call therefore sends its own
// token ("mcpgw-<n>") upstream, and every stream hands what it sees here.
type progressRegistry struct {
	seq  atomic.Uint64
	mu   sync.RWMutex
	subs map[string]*progressSub
}

type progressSub struct {
	downstream []byte // the downstream's token, raw JSON
	fn         func(json.RawMessage)

	mu      sync.Mutex // serializes fn; guards the fields below
	done    bool
	hasLast bool
	last    float64
}

// register allocates an upstream token for a call. It returns the token's
// JSON encoding for the request's _meta and the key to unregister with.
func (r *progressRegistry) register(downstream json.RawMessage, fn func(json.RawMessage)) (tokenJSON []byte, key string) {
	n := r.seq.Add(1)
	key = "mcpgw-" + strconv.FormatUint(n, 10)
	sub := &progressSub{downstream: downstream, fn: fn}
	r.mu.Lock()
	if r.subs == nil {
		r.subs = make(map[string]*progressSub)
	}
	r.subs[key] = sub
	r.mu.Unlock()
	return rawjson.AppendString(nil, key), key
}

// unregister removes the call's token. After it returns, the call's
// callback is not invoked again.
func (r *progressRegistry) unregister(key string) {
	r.mu.Lock()
	sub := r.subs[key]
	delete(r.subs, key)
	r.mu.Unlock()
	if sub != nil {
		sub.mu.Lock()
		sub.done = true
		sub.mu.Unlock()
	}
}

// dispatch delivers the params of one notifications/progress. It reports
// whether the token belonged to a registered call.
//
// The spec requires progress to increase with every notification
// (2025-11-25 basic/utilities/progress); since one call's notifications may
// arrive over several streams, a value not above the last delivered one is
// dropped, so the callback always sees them in order.
func (r *progressRegistry) dispatch(params []byte) bool {
	var tokRaw, progRaw []byte
	_ = rawjson.EachMember(params, func(k, v []byte) bool {
		switch {
		case rawjson.StringIs(k, "progressToken"):
			tokRaw = v
		case rawjson.StringIs(k, "progress"):
			progRaw = v
		}
		return true
	})
	tok, ok := rawjson.DecodeString(tokRaw)
	if !ok {
		return false
	}
	r.mu.RLock()
	sub := r.subs[tok]
	r.mu.RUnlock()
	if sub == nil {
		return false
	}
	progress, perr := strconv.ParseFloat(string(progRaw), 64)
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.done || sub.fn == nil {
		return true
	}
	if perr == nil {
		if sub.hasLast && progress <= sub.last {
			return true
		}
		sub.hasLast, sub.last = true, progress
	}
	out, ok := rawjson.ReplaceMember(params, "progressToken", sub.downstream)
	if !ok {
		return true
	}
	sub.fn(out)
	return true
}
