package gateway

import (
	"context"
	"encoding/json"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

// Upstream is what the gateway needs of one upstream server: its name, a
// call for the call path, its current catalog for the merged one, and its
// lifecycle. The gateway declares it, as its consumer; *upstream.Client
// implements it, and the package's own tests drive every step of the call
// path through an in-memory fake.
type Upstream interface {
	// Name is the upstream's configured name.
	Name() string
	// Call sends one request and returns its raw result. An error is an
	// *upstream.RPCError the upstream answered, an *upstream.Error of the
	// transport or the resilience layer, or the context's error.
	Call(ctx context.Context, req *upstream.Request) (json.RawMessage, error)
	// Catalog returns the upstream's last listed catalog (nil before the
	// first) and whether the upstream is reachable now.
	Catalog() (*upstream.Catalog, bool)
	// Start connects in the background; Close ends every session.
	Start()
	Close() error
}

var _ Upstream = (*upstream.Client)(nil)

// dialer builds the Upstream of one configured upstream.
type dialer func(cfg *configs.Upstream, opts *upstream.Options) (Upstream, error)

// dialClient is the dialer of real upstreams.
func dialClient(cfg *configs.Upstream, opts *upstream.Options) (Upstream, error) { //nolint:ireturn // a dialer's signature: tests dial fakes.
	c, err := upstream.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// attempter is an Upstream that says whether its first attempt to connect
// and list has finished, answered or failed (*upstream.Client does).
type attempter interface {
	Attempted() bool
}

var _ attempter = (*upstream.Client)(nil)

// settled reports whether readiness need no longer wait for u, whose
// current catalog is cat: it has listed, or its first attempt failed. An
// upstream that is down thus holds readiness for one attempt (bounded by
// the handshake timeout), not forever; it is then served as unavailable.
// An Upstream that is no attempter settles when it lists.
func settled(u Upstream, cat *upstream.Catalog) bool {
	if cat != nil {
		return true
	}
	a, ok := u.(attempter)
	return ok && a.Attempted()
}

// reporter is what an upstream with a breaker and a bulkhead reports for
// /readyz, the admin API and the breaker gauge. An Upstream without them
// reports nothing.
type reporter interface {
	Breakers() []upstream.BreakerState
	Load() upstream.Load
}

// breakerState is the state of u's own breaker: closed, half_open or
// open; "" when u has none.
func breakerState(u Upstream) string {
	if r, ok := u.(reporter); ok {
		if bs := r.Breakers(); len(bs) > 0 {
			return bs[0].State
		}
	}
	return ""
}

// streamsAnswers reports whether u answers its clients with event streams
// (the go-sdk's default): the gateway then answers its own clients the
// same way, so that putting it in front changes no framing.
func streamsAnswers(u Upstream) bool {
	if u == nil {
		return false
	}
	cat, _ := u.Catalog()
	return cat != nil && cat.Streams
}

// anyStreams reports whether some upstream answers with event streams:
// the gateway's own answers (list pages) then stream too.
func (rt *runtime) anyStreams() bool {
	for _, u := range rt.byName {
		if streamsAnswers(u) {
			return true
		}
	}
	return false
}
