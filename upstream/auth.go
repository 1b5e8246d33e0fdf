package upstream

import (
	"context"
	"fmt"
	"net/http"

	"github.com/mcpgw/mcpgw/configs"
)

// outbound is how a Client authenticates what it sends: the upstream's
// credential (the auth block) and, when enabled, the identity assertion.
// A nil *outbound sends nothing.
//
// Two kinds of traffic reach an upstream. Calls made for a caller, the
// notifications/cancelled that abandons one, and what a caller's pooled
// session sends for itself (pool.go) carry the caller's Identity: the
// credential may depend on it (token exchange) and the assertion names it.
// The gateway's own traffic (initialize, discovery,
// list refreshes, health probes, notification streams, session DELETE) has
// no caller: it carries the credential the gateway holds for itself and no
// assertion. For a token_exchange upstream, which has no token without a
// caller, the gateway's own traffic uses the client credentials grant with
// the same client, token endpoint, scopes, audience and resource: the
// gateway is a registered client there anyway, and an upstream that
// requires authentication must still let the gateway discover its catalog.
type outbound struct {
	creds  Credentials // calls made for a caller
	own    Credentials // the gateway's own traffic
	assert Credentials // nil when the identity assertion is off
}

// newOutbound builds the outbound credentials of cfg; nil when it sends
// none. stdio has no headers, so an stdio upstream never has any (the
// configuration refuses auth blocks on stdio upstreams).
func newOutbound(cfg *configs.Upstream, opts *Options) (*outbound, error) {
	if cfg.Stdio != nil {
		return nil, nil
	}
	o := &outbound{}
	var err error
	if o.creds, err = NewCredentials(&cfg.Auth, opts.TokenClient, opts.Now); err != nil {
		return nil, err
	}
	o.own = o.creds
	if cfg.Auth.Type == configs.UpstreamAuthTokenExchange {
		own := cfg.Auth
		own.Type = configs.UpstreamAuthClientCredentials
		if o.own, err = NewCredentials(&own, opts.TokenClient, opts.Now); err != nil {
			return nil, err
		}
	}
	if cfg.IdentityAssertion.Enabled {
		if opts.Asserter == nil {
			return nil, fmt.Errorf("%w: identity_assertion is enabled but the gateway has no asserter", ErrCredentials)
		}
		if o.assert, err = opts.Asserter.Credentials(cfg.IdentityAssertion, cfg.Name, opts.AssertionIssuer); err != nil {
			return nil, err
		}
	}
	if _, none := o.creds.(noCredentials); none && o.assert == nil {
		return nil, nil
	}
	return o, nil
}

// append adds the headers of one request to dst as canonical name/value
// pairs: a call forwarded for the caller id (nil on an unauthenticated
// gateway) when call is set, the gateway's own traffic otherwise. A
// forwarded call never falls back to the gateway's own credential: a
// token_exchange upstream without a caller token fails with ErrNoIdentity.
func (o *outbound) append(ctx context.Context, call bool, id *Identity, dst [][2]string) ([][2]string, error) {
	if o == nil {
		return dst, nil
	}
	creds := o.creds
	if !call {
		creds, id = o.own, nil
	}
	name, value, err := creds.Header(ctx, id)
	if err != nil {
		return dst, err
	}
	if name != "" {
		dst = append(dst, [2]string{http.CanonicalHeaderKey(name), value})
	}
	// An assertion needs a subject; the gateway's own traffic, and calls
	// on an unauthenticated gateway, have none and go without.
	if o.assert != nil && id != nil && id.Subject != "" {
		name, value, err := o.assert.Header(ctx, id)
		if err != nil {
			return dst, err
		}
		dst = append(dst, [2]string{http.CanonicalHeaderKey(name), value})
	}
	return dst, nil
}

// header returns h with the headers of a request that is not a forwarded
// call's own POST added, on a copy; h itself is shared and never written.
// call and id are as for append: the gateway's own traffic has neither,
// while the requests a pooled session makes for itself (pool.go) carry
// the credential of the caller it was opened for.
func (o *outbound) header(ctx context.Context, call bool, id *Identity, h http.Header) (http.Header, error) {
	if o == nil {
		return h, nil
	}
	pairs, err := o.append(ctx, call, id, nil)
	if err != nil || len(pairs) == 0 {
		return h, err
	}
	out := h.Clone()
	for _, p := range pairs {
		out[p[0]] = []string{p[1]}
	}
	return out, nil
}

// credentialsFail wraps a failure to obtain the upstream's credential.
func (c *Client) credentialsFail(err error) error {
	return c.fail(ErrCredentials, "obtaining the upstream credential", err)
}
