package authn

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Middleware authenticates every request before next: without a valid
// bearer token it answers itself (see WriteError); with one lacking
// auth.required_scopes it answers 403 (see Challenge); otherwise next runs
// with the Principal in the request context (PrincipalFrom).
//
// CORS preflights carry no Authorization header, so they must be answered
// before this middleware.
func (a *Authenticator) Middleware(next http.Handler) http.Handler { return a.main.Middleware(next) }

// Middleware authenticates every request for the resource, as
// Authenticator.Middleware does for the MCP endpoint.
func (rs *Resource) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := rs.Authenticate(r.Context(), r)
		if err != nil {
			rs.WriteError(w, r, err)
			return
		}
		if !p.HasScopes(rs.required...) {
			rs.Challenge(w, r, nil)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// RequireScope returns middleware for endpoints outside MCP, such as the
// admin API: 401 without a valid token, 403 insufficient_scope without
// scope, next otherwise. It reuses a Principal already in the context.
func (a *Authenticator) RequireScope(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				var err error
				if p, err = a.Authenticate(r.Context(), r); err != nil {
					a.WriteError(w, r, err)
					return
				}
				r = r.WithContext(WithPrincipal(r.Context(), p))
			}
			if !p.HasScopes(scope) {
				a.main.writeChallenge(w, r, http.StatusForbidden, "insufficient_scope", "missing scope "+scope, []string{scope})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Challenge answers 403 with a step-up challenge (MCP authorization,
// "Runtime Insufficient Scope Errors"; RFC 6750 section 3.1):
//
//	WWW-Authenticate: Bearer error="insufficient_scope", error_description="…",
//	    resource_metadata="https://…/.well-known/oauth-protected-resource/mcp",
//	    scope="mcp:tools orders:write"
//
// scope lists every scope the operation needs: auth.required_scopes and
// requiredScopes. That is the specification's "minimum approach"; scopes
// the client holds for other operations are not repeated, because the
// gateway cannot know which of them the client still wants (see
// modelcontextprotocol issue 2349 on the other approaches). The gateway
// calls Challenge when a tool needs scopes the Principal lacks; see
// InsufficientScope.
func (a *Authenticator) Challenge(w http.ResponseWriter, r *http.Request, requiredScopes []string) {
	a.main.Challenge(w, r, requiredScopes)
}

// Challenge answers 403 with a step-up challenge that points at the
// resource's metadata and names its required scopes with requiredScopes.
func (rs *Resource) Challenge(w http.ResponseWriter, r *http.Request, requiredScopes []string) {
	need := appendUnique(appendUnique(nil, rs.required), requiredScopes)
	desc := "additional scope required"
	if p, ok := PrincipalFrom(r.Context()); ok {
		if missing := InsufficientScope(p, need); len(missing) > 0 {
			desc = "missing scope " + strings.Join(missing, " ")
		}
	}
	rs.writeChallenge(w, r, http.StatusForbidden, "insufficient_scope", desc, need)
}

// WriteError answers a request whose authentication failed with err (an
// error of Authenticate), as RFC 6750 section 3 and the MCP authorization
// specification ("Error Handling") say:
//
//   - ErrNoToken: 401, WWW-Authenticate with resource_metadata and the
//     required scopes, no error code;
//   - ErrInvalidToken: 401, the same with error="invalid_token";
//   - ErrInvalidRequest: 400, error="invalid_request";
//   - ErrInsufficientScope: 403, error="insufficient_scope";
//   - ErrIssuerUnavailable: 503 with Retry-After, no challenge.
//
// The body is a small JSON object with error and error_description; it
// never contains any part of the token.
func (a *Authenticator) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	a.main.WriteError(w, r, err)
}

// WriteError answers a request for the resource whose authentication
// failed, as Authenticator.WriteError does; its challenges point at the
// resource's own metadata.
func (rs *Resource) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNoToken):
		rs.writeChallenge(w, r, http.StatusUnauthorized, "", reason(err), rs.required)
	case errors.Is(err, ErrInvalidRequest):
		rs.writeChallenge(w, r, http.StatusBadRequest, "invalid_request", reason(err), rs.required)
	case errors.Is(err, ErrInsufficientScope):
		rs.Challenge(w, r, nil)
	case errors.Is(err, ErrIssuerUnavailable):
		w.Header().Set("Retry-After", "5")
		writeBody(w, http.StatusServiceUnavailable, "temporarily_unavailable", reason(err))
	default:
		rs.writeChallenge(w, r, http.StatusUnauthorized, "invalid_token", reason(err), rs.required)
	}
}

// writeChallenge writes status with a Bearer challenge. code is the RFC
// 6750 error code, "" for none.
func (rs *Resource) writeChallenge(w http.ResponseWriter, r *http.Request, status int, code, desc string, scopes []string) {
	var b strings.Builder
	b.WriteString("Bearer ")
	if code != "" {
		b.WriteString(`error=`)
		b.WriteString(quote(code))
		b.WriteString(`, error_description=`)
		b.WriteString(quote(desc))
		b.WriteString(", ")
	}
	b.WriteString("resource_metadata=")
	b.WriteString(quote(rs.ResourceMetadataURL(r)))
	if len(scopes) > 0 {
		b.WriteString(", scope=")
		b.WriteString(quote(strings.Join(scopes, " ")))
	}
	w.Header().Set("WWW-Authenticate", b.String())
	if code == "" {
		code = "unauthorized"
	}
	writeBody(w, status, code, desc)
}

// writeBody writes the JSON error body.
func writeBody(w http.ResponseWriter, status int, code, desc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, desc})
}

// quote returns s as an RFC 9110 quoted-string.
func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := range len(s) {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
