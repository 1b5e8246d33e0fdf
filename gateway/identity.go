package gateway

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

// jwksPath serves the public keys of the identity assertions the gateway
// signs for upstreams.
const jwksPath = "/.well-known/mcpgw/jwks.json"

// assertionIssuer is the default iss of identity assertions: the gateway's
// canonical resource URI, "" on an unauthenticated gateway (which the
// configuration keeps from enabling assertions).
func assertionIssuer(cfg *configs.Config) string {
	if cfg.Auth == nil {
		return ""
	}
	return cfg.Auth.Resource
}

// identityFor is who a call from ctx is made for, as the upstream sees it:
// nil on an unauthenticated gateway. The caller's raw token is included
// only for a token_exchange upstream, where it is the subject_token of the
// exchange; the upstream client never sends it as is (MCP security best
// practices, "Token Passthrough").
func identityFor(ctx context.Context, u *configs.Upstream) *upstream.Identity {
	p, ok := authn.PrincipalFrom(ctx)
	if !ok {
		return nil
	}
	id := &upstream.Identity{Subject: p.Subject, Issuer: p.Issuer, ClientID: p.ClientID, Scopes: p.Scopes}
	if u != nil && u.Auth.Type == configs.UpstreamAuthTokenExchange {
		id.Token, id.TokenHash = p.Token, p.TokenHash
	}
	return id
}

// serveJWKS publishes the key set upstreams verify identity assertions
// with. It is public, like any JWKS. A rotated key signs at once, so the
// set may be cached only briefly and an upstream should re-fetch it when
// an assertion names an unknown kid.
func (g *Gateway) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(g.asserter.JWKS())
}

// rotateKeys makes a fresh identity assertion key current (POST
// /admin/v1/keys/rotate). The previous key stays published until the last
// assertion it signed has expired.
func (g *Gateway) rotateKeys(w http.ResponseWriter, r *http.Request) {
	if err := g.asserter.Rotate(); err != nil {
		g.log.ErrorContext(r.Context(), "rotating identity assertion key", slog.Any("error", err))
		adminError(w, http.StatusInternalServerError, "rotating the key failed")
		return
	}
	g.log.InfoContext(r.Context(), "identity assertion key rotated", slog.String("request_id", requestIDFrom(r.Context())))
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(g.asserter.JWKS())
}
