package authn

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"
)

// peeked is what is read from a token before its signature is checked: just
// enough to pick the issuer and refuse bad algorithms without a network
// request. Nothing here is trusted until go-oidc has verified the token.
type peeked struct {
	alg string
	iss string
}

// peek splits a compact JWS (RFC 7515 section 7.1) and decodes its header
// and payload. Anything else, including the JWS JSON serialization that
// go-jose would also parse, is ErrMalformedToken.
func peek(token string) (peeked, error) {
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return peeked{}, ErrMalformedToken
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok || h == "" || p == "" || strings.Contains(sig, ".") {
		return peeked{}, ErrMalformedToken
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodePart(h, &header); err != nil {
		return peeked{}, ErrMalformedToken
	}
	var payload struct {
		Iss string `json:"iss"`
	}
	if err := decodePart(p, &payload); err != nil {
		return peeked{}, ErrMalformedToken
	}
	if _, err := base64.RawURLEncoding.DecodeString(sig); err != nil {
		return peeked{}, ErrMalformedToken
	}
	return peeked{alg: header.Alg, iss: payload.Iss}, nil
}

// decodePart decodes one base64url (unpadded, RFC 7515 section 2) JSON
// object.
func decodePart(s string, v any) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// claimSet is a verified payload, decoded generically because the scope,
// roles and client id claims are configured by name.
type claimSet map[string]any

// str returns the string claim name, and whether it is one.
func (c claimSet) str(name string) (string, bool) {
	s, ok := c[name].(string)
	return s, ok
}

// date returns a NumericDate claim (RFC 7519 section 2: seconds, possibly
// fractional), whether it is present, and whether it is well formed.
func (c claimSet) date(name string) (t time.Time, present, ok bool) {
	v, present := c[name]
	if !present {
		return time.Time{}, false, true
	}
	f, isNum := v.(float64)
	if !isNum || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, true, false
	}
	// Clamp to a range time.Unix handles exactly; a date beyond it is as
	// good as never (exp) or far ahead (nbf, iat).
	const limit = 1 << 40
	f = max(min(f, limit), -limit)
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, true
}

// audience reports whether aud (a string or an array of strings, RFC 7519
// section 4.1.3) contains want. Identity providers differ: panva
// oidc-provider sends a string, Dex an array that also names the client.
func (c claimSet) audience(want string) bool {
	switch aud := c["aud"].(type) {
	case string:
		return aud == want
	case []any:
		for _, a := range aud {
			if s, ok := a.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// strings returns the values of claim name: a string split on spaces when
// split is set (the scope claim of RFC 8693 section 4.2) or taken whole, or
// the strings of an array.
func (c claimSet) strings(v any, split bool) []string {
	switch v := v.(type) {
	case string:
		if split {
			return strings.Fields(v)
		}
		if v == "" {
			return nil
		}
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// path returns the value at a dotted claim path, such as
// realm_access.roles.
func (c claimSet) path(segments []string) any {
	var cur any = map[string]any(c)
	for _, s := range segments {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[s]
	}
	return cur
}

// appendUnique appends the elements of add not already in dst.
func appendUnique(dst, add []string) []string {
	for _, s := range add {
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}
