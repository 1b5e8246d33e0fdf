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
