package authn

import (
	"net/http"
	"strings"
)

// bearerToken extracts the bearer token of r. Only the Authorization header
// is a source (MCP authorization, "Token Requirements": the client "MUST use
// the Authorization request header field"); a token in the query string is
// refused outright, even next to a good header, because it has already
// leaked into logs and histories on its way here. The form-body method of
// RFC 6750 section 2.2 is not supported, and bodies are never read.
func bearerToken(r *http.Request, maxBytes int) (string, error) {
	if strings.Contains(r.URL.RawQuery, "access_token") && r.URL.Query().Has("access_token") {
		return "", ErrTokenInQuery
	}
	values := r.Header["Authorization"]
	switch len(values) {
	case 0:
		return "", ErrNoToken
	case 1:
	default:
		return "", ErrMalformedHeader
	}
	return parseBearer(values[0], maxBytes)
}

// parseBearer parses an Authorization header value as RFC 6750 section 2.1
// credentials: "Bearer" (any case, RFC 9110 section 11.1), one space, one
// token68 (RFC 9110 section 11.2). A token longer than maxBytes is refused
// before its characters are even looked at.
//
// The token68 syntax is checked by checkToken68, which verify calls only
// for tokens not in the cache: a cached token is byte for byte one that
// passed it, and skipping the scan keeps the hot path short.
func parseBearer(h string, maxBytes int) (string, error) {
	scheme, token, found := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		if scheme == "" {
			return "", ErrMalformedHeader
		}
		return "", ErrUnsupportedScheme
	}
	if !found || token == "" {
		return "", ErrMalformedHeader
	}
	if len(token) > maxBytes {
		return "", ErrTokenTooLarge
	}
	return token, nil
}

// checkToken68 returns ErrMalformedHeader unless token is a token68.
func checkToken68(token string) error {
	if !isToken68(token) {
		return ErrMalformedHeader
	}
	return nil
}

// isToken68 reports whether s matches token68:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	i := 0
	for i < len(s) && token68Char(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// token68Char reports whether c is a character of token68 before its
// padding (RFC 9110 section 11.2).
func token68Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '+', '/':
		return true
	}
	return false
}
