package authn

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
)

// Resource is one OAuth protected resource the gateway serves (RFC 9728):
// the MCP endpoint (auth.resource), or a virtual endpoint on its own path
// with its own resource URI, metadata, challenges and required scopes.
// Resources of one Authenticator share its issuers and token cache.
type Resource struct {
	a        *Authenticator
	resource resource
	required []string
	prm      prmDoc
	// prmStatic is prm encoded for the configured base URL.
	prmStatic []byte
	// audience is the resource URI a token from an issuer with the
	// default audience must name in aud; "" for the MCP endpoint, whose
	// tokens must name their issuer's audience.
	audience string
}

// Endpoint returns the protected resource of a virtual endpoint at path
// on the gateway's host: its resource URI is auth.resource's scheme and
// host with path, its metadata is served at WellKnownPath followed by
// path, and it requires required instead of auth.required_scopes.
//
// A token must name the endpoint's resource URI in aud, which is what an
// MCP client asks its authorization server for when it connects to the
// endpoint (RFC 8707 resource indicators; MCP authorization, "Resource
// Parameter Implementation"), so a token for one endpoint is refused at
// every other, and at the MCP endpoint. An issuer configured with its own
// audience cannot mint per-resource tokens: its tokens are taken at every
// endpoint, which required then tells apart.
func (a *Authenticator) Endpoint(path string, required []string) (*Resource, error) {
	res, err := parseResource(a.main.resource.base + path)
	if err != nil {
		return nil, fmt.Errorf("authn: endpoint %s: %w", path, err)
	}
	rs := &Resource{a: a, resource: res, required: slices.Clone(required), prm: a.main.prm}
	rs.audience = res.base + res.raw
	if rs.prmStatic, err = rs.prm.encode(rs.audience); err != nil {
		return nil, fmt.Errorf("authn: encoding protected resource metadata: %w", err)
	}
	a.endpointsMu.Lock()
	defer a.endpointsMu.Unlock()
	next := map[string]bool{rs.audience: true}
	if cur := a.endpoints.Load(); cur != nil {
		maps.Copy(next, *cur)
	}
	a.endpoints.Store(&next)
	return rs, nil
}

// URI is the resource's URI, as tokens name it in aud.
func (rs *Resource) URI() string {
	if rs.audience == "" {
		return rs.a.defaultAudience
	}
	return rs.audience
}

// Authenticate returns the Principal of the request's bearer token when
// the token is for this resource; one for another resource is refused
// with ErrAudience.
func (rs *Resource) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	if rs.audience == "" {
		return rs.a.Authenticate(ctx, r)
	}
	token, err := bearerToken(r, rs.a.maxBytes)
	if err != nil {
		return nil, err
	}
	p, err := rs.a.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if p.perResource && !claimSet(p.Claims).audience(rs.audience) || !p.perResource && !p.mainAudience {
		return nil, ErrAudience
	}
	return p, nil
}

// namesEndpoint reports whether the token's aud names a virtual
// endpoint's resource.
func (a *Authenticator) namesEndpoint(cs claimSet) bool {
	eps := a.endpoints.Load()
	if eps == nil {
		return false
	}
	switch aud := cs["aud"].(type) {
	case string:
		return (*eps)[aud]
	case []any:
		for _, v := range aud {
			if s, ok := v.(string); ok && (*eps)[s] {
				return true
			}
		}
	}
	return false
}
