package authn

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/mcpgw/mcpgw/configs"
)

// Principal is who a verified token speaks for. Authenticate may return the
// same *Principal for every request with the same token (it is cached), so
// a Principal and its slices are read-only: never modify them.
type Principal struct {
	// Subject is the token's sub.
	Subject string
	// Issuer is the token's iss, one of the configured issuers.
	Issuer string
	// ClientID is the OAuth client the token was issued to, from the
	// issuer's client_id_claims (client_id, then azp); empty when absent.
	ClientID string
	// Scopes are the granted scopes, from the issuer's scope_claims, in
	// token order without duplicates.
	Scopes []string
	// Roles are read from the issuer's roles_claim; nil when unset.
	Roles []string
	// Expiry is the token's exp.
	Expiry time.Time
	// Claims is the verified token's payload as decoded JSON (strings,
	// float64 numbers, bools, []any, map[string]any), for policy rules
	// over claims. Treat it as read-only: it is shared by every request
	// carrying the token.
	Claims map[string]any
	// TokenHash is the lowercase hex SHA-256 of the raw token: a stable
	// handle on the token for binding sessions and caching exchanged
	// tokens, safe to store and log.
	TokenHash string
	// Token is the raw bearer token. It exists for one purpose: to be the
	// subject_token of an RFC 8693 token exchange. Never log it, never
	// forward it to an upstream (MCP security best practices, "Token
	// Passthrough"). Its type redacts it in fmt, JSON and slog output; call
	// Reveal to use it.
	Token configs.Secret

	// mainAudience is set when the token's aud names its issuer's
	// audience (by default auth.resource): it may be used at the MCP
	// endpoint.
	mainAudience bool
	// perResource is set when the issuer takes the default audience, so
	// that its tokens name the resource (endpoint) they are for; an
	// issuer with its own audience cannot, and a virtual endpoint then
	// accepts its tokens by their audience and scopes.
	perResource bool

	// key is Key, rendered once by Authenticate; empty in a Principal made
	// elsewhere, whose Key is then rendered on each call.
	key string
}

// Key is the principal's identity as one string: issuer and subject, so
// that the same sub from two issuers is two principals (OpenID Connect
// Core §2: sub is unique only within its issuer). Rate limits and session
// binding key on it.
func (p *Principal) Key() string {
	if p.key != "" {
		return p.key
	}
	return p.Issuer + "\x00" + p.Subject
}

// HasScopes reports whether every one of scopes was granted.
func (p *Principal) HasScopes(scopes ...string) bool {
	for _, s := range scopes {
		if !slices.Contains(p.Scopes, s) {
			return false
		}
	}
	return true
}

// LogValue logs who the principal is, never the token.
func (p *Principal) LogValue() slog.Value {
	if p == nil {
		return slog.Value{}
	}
	return slog.GroupValue(
		slog.String("sub", p.Subject),
		slog.String("iss", p.Issuer),
		slog.String("client_id", p.ClientID),
		slog.Any("scopes", p.Scopes),
	)
}

// InsufficientScope returns the scopes in required that p was not granted,
// in the order of required; nil when p has them all. A nil p lacks all of
// them.
func InsufficientScope(p *Principal, required []string) []string {
	var missing []string
	for _, s := range required {
		if (p == nil || !slices.Contains(p.Scopes, s)) && !slices.Contains(missing, s) {
			missing = append(missing, s)
		}
	}
	return missing
}

// principalKey is the context key of the Principal.
type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the Principal WithPrincipal stored in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
