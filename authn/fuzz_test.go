package authn

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/configs"
)

func FuzzBearer(f *testing.F) {
	for _, seed := range []string{
		"Bearer abc", "bearer abc", "BEARER a.b.c", "Bearer abc==", "Bearer a=b", "Bearer  abc",
		"Bearer", "Bearer ", "Basic YTpi", "", " ", "Bearer a b", "Bearer\tabc", "Bearer abc\x00",
		"Bearer " + strings.Repeat("x", 100), "Bearerabc", "Bearer ~+/-._",
	} {
		f.Add(seed)
	}
	const maxLen = 64
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := parseBearer(h, maxLen)
		if err != nil {
			if tok != "" {
				t.Fatalf("error %v with token %q", err, tok)
			}
			return
		}
		if len(tok) == 0 || len(tok) > maxLen {
			t.Fatalf("token %q has a bad length", tok)
		}
		if !strings.EqualFold(h[:len("Bearer ")], "Bearer ") || h[len("Bearer "):] != tok {
			t.Fatalf("token %q is not what follows the scheme in %q", tok, h)
		}
		if err := checkToken68(tok); err == nil && strings.ContainsAny(tok, " \t\r\n\",;\\\x00") {
			t.Fatalf("token68 %q has a forbidden character", tok)
		}
	})
}

func FuzzAuthenticate(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	iss := authntest.NewIssuer(f, authntest.WithClock(clock), authntest.WithAudience("https://mcp.example.com/mcp"))
	// The seeds are signed by keys the authenticator does not trust, so no
	// mutation can turn one into a valid token.
	forger := authntest.NewIssuer(f, authntest.WithClock(clock), authntest.WithAudience("https://mcp.example.com/mcp"))
	a, err := New(&configs.Auth{
		Resource: "https://mcp.example.com/mcp",
		Issuers:  []configs.AuthIssuer{{Issuer: iss.URL()}},
	}, Options{Now: clock})
	if err != nil {
		f.Fatal(err)
	}
	claims := func() map[string]any { return map[string]any{"iss": iss.URL(), "sub": "alice", "scope": "mcp:tools"} }
	for _, seed := range []string{
		forger.Mint(claims()),
		forger.Mint(claims(), authntest.WithAlg("ES256")),
		forger.Mint(claims(), authntest.WithKID(iss.KeyID("RS256"))),
		forger.Mint(claims(), authntest.WithAlg("none")),
		forger.Mint(claims(), authntest.WithAlg("HS256")),
		forger.Mint(map[string]any{"sub": "alice"}),
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", "a.b.c", "...", "", "e30.e30.", strings.Repeat("A", 9000),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		r := httptest.NewRequest(http.MethodGet, "/mcp", nil)
		r.Header["Authorization"] = []string{"Bearer " + token}
		p, err := a.Authenticate(t.Context(), r)
		if err == nil || p != nil {
			t.Fatalf("accepted %q as %+v", token, p)
		}
		if reason(err) == "authentication failed" {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
