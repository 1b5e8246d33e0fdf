package authn

import "errors"

// The root sentinels classify every error of Authenticate; each says which
// answer the client gets (RFC 6750 section 3.1, MCP authorization
// "Error Handling"). Test with errors.Is.
var (
	// ErrNoToken: the request carries no bearer token. 401 with a challenge
	// but no error code (RFC 6750 section 3.1: a request without
	// authentication information gets none).
	ErrNoToken = errors.New("bearer token required")
	// ErrInvalidRequest: the request is malformed as far as authentication
	// goes. 400 invalid_request.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidToken: a token was presented and is not acceptable. 401
	// invalid_token.
	ErrInvalidToken = errors.New("invalid token")
	// ErrInsufficientScope: the token is valid but lacks scopes the request
	// needs. 403 insufficient_scope.
	ErrInsufficientScope = errors.New("insufficient scope")
	// ErrIssuerUnavailable: the token names a configured issuer whose
	// metadata could not be fetched, so it cannot be verified now. 503; it is
	// retried on a later request.
	ErrIssuerUnavailable = errors.New("authorization server unavailable")
)

// The specific sentinels each wrap one root sentinel.
var (
	// ErrUnsupportedScheme: the Authorization header uses another scheme,
	// such as Basic. Wraps ErrNoToken.
	ErrUnsupportedScheme error = &authError{"authorization scheme is not Bearer", ErrNoToken}
	// ErrTokenInQuery: an access_token query parameter, which the MCP
	// authorization specification forbids ("Access tokens MUST NOT be
	// included in the URI query string"). Wraps ErrInvalidRequest.
	ErrTokenInQuery error = &authError{"access token in the query string", ErrInvalidRequest}
	// ErrMalformedHeader: more than one Authorization header, or a Bearer
	// credential that is not one token68 (RFC 6750 section 2.1). Wraps
	// ErrInvalidRequest.
	ErrMalformedHeader error = &authError{"malformed Authorization header", ErrInvalidRequest}
	// ErrTokenTooLarge: the token is longer than auth.max_token_bytes. Wraps
	// ErrInvalidToken.
	ErrTokenTooLarge error = &authError{"token too large", ErrInvalidToken}
	// ErrMalformedToken: not a compact JWS with base64url JSON parts. Wraps
	// ErrInvalidToken.
	ErrMalformedToken error = &authError{"malformed token", ErrInvalidToken}
	// ErrUntrustedIssuer: iss names no configured issuer. Wraps
	// ErrInvalidToken.
	ErrUntrustedIssuer error = &authError{"untrusted issuer", ErrInvalidToken}
	// ErrAlgorithm: the alg header is not allowed for the issuer (none and
	// HS* never are). Wraps ErrInvalidToken.
	ErrAlgorithm error = &authError{"signing algorithm not allowed", ErrInvalidToken}
	// ErrSignature: the signature does not verify with the issuer's keys,
	// or names an unknown key. Wraps ErrInvalidToken.
	ErrSignature error = &authError{"signature verification failed", ErrInvalidToken}
	// ErrExpired: exp is past, beyond the clock skew. Wraps ErrInvalidToken.
	ErrExpired error = &authError{"token expired", ErrInvalidToken}
	// ErrNotYetValid: nbf is ahead, beyond the clock skew. Wraps
	// ErrInvalidToken.
	ErrNotYetValid error = &authError{"token not yet valid", ErrInvalidToken}
	// ErrIssuedInFuture: iat is ahead, beyond the clock skew. Wraps
	// ErrInvalidToken.
	ErrIssuedInFuture error = &authError{"token issued in the future", ErrInvalidToken}
	// ErrAudience: aud does not contain the issuer's audience (RFC 8707;
	// MCP servers "MUST validate that access tokens were issued
	// specifically for them"). Wraps ErrInvalidToken.
	ErrAudience error = &authError{"token not issued for this resource", ErrInvalidToken}
	// ErrMissingClaim: a required claim (sub, exp) is missing or has the
	// wrong type. Wraps ErrInvalidToken.
	ErrMissingClaim error = &authError{"required claim missing or malformed", ErrInvalidToken}
)

// authError is a specific sentinel: a message and the root sentinel it
// belongs to.
type authError struct {
	msg  string
	root error
}

func (e *authError) Error() string { return e.msg }
func (e *authError) Unwrap() error { return e.root }

// reason returns the short, token-free description of err sent to the
// client: the message of the most specific sentinel it wraps.
func reason(err error) string {
	var ae *authError
	if errors.As(err, &ae) {
		return ae.msg
	}
	for _, root := range []error{ErrNoToken, ErrInvalidRequest, ErrInvalidToken, ErrInsufficientScope, ErrIssuerUnavailable} {
		if errors.Is(err, root) {
			return root.Error()
		}
	}
	return "authentication failed"
}
