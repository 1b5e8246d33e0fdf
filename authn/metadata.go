package authn

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// WellKnownPath is the RFC 9728 well-known path of protected resource
// metadata. For a resource with a path, such as https://mcp.example.com/mcp,
// the resource's path is appended: /.well-known/oauth-protected-resource/mcp
// (RFC 9728 section 3.1, "inserted between the host component and the path
// component").
const WellKnownPath = "/.well-known/oauth-protected-resource"

// resource is the configured canonical resource URI, split for building
// URLs.
type resource struct {
	scheme string
	host   string
	base   string // scheme://host
	path   string // "" or "/mcp"; never "/"
	// raw is the path as configured ("/" stays), so the published
	// resource is exactly the configured one and matches the audience.
	raw string
	// wellKnown is WellKnownPath with path appended.
	wellKnown string
}

func parseResource(raw string) (resource, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return resource{}, err
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return resource{}, errors.New("not an absolute http(s) URL")
	}
	r := resource{scheme: u.Scheme, host: u.Host, base: u.Scheme + "://" + u.Host, path: u.EscapedPath(), raw: u.EscapedPath()}
	// RFC 9728 section 3.1: a terminating slash after the host is removed
	// before the well-known suffix is inserted.
	if r.path == "/" {
		r.path = ""
	}
	r.wellKnown = WellKnownPath + r.path
	return r, nil
}

// prmDoc is the protected resource metadata document (RFC 9728 section 2).
type prmDoc struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// encode returns d as served for resource; d itself is not changed, so
// concurrent requests may encode the one document.
func (d *prmDoc) encode(resource string) ([]byte, error) {
	doc := *d
	doc.Resource = resource
	b, err := json.MarshalIndent(&doc, "", "  ")
	return append(b, '\n'), err
}

// MetadataPaths returns the paths MetadataHandler serves: WellKnownPath and,
// when the resource has a path, WellKnownPath followed by it. The gateway
// routes both to the handler.
func (a *Authenticator) MetadataPaths() []string { return a.main.MetadataPaths() }

// MetadataPaths returns the paths MetadataHandler serves: for the MCP
// endpoint WellKnownPath and, when the resource has a path, WellKnownPath
// followed by it; for a virtual endpoint only the path-suffixed one (the
// root document names the MCP endpoint).
func (rs *Resource) MetadataPaths() []string {
	if rs.resource.path == "" {
		return []string{WellKnownPath}
	}
	if rs != rs.a.main {
		return []string{rs.resource.wellKnown}
	}
	return []string{WellKnownPath, rs.resource.wellKnown}
}

// MetadataHandler serves the protected resource metadata (RFC 9728) at the
// paths of MetadataPaths, with resource, authorization_servers (the
// configured issuers), scopes_supported, bearer_methods_supported (header
// only) and resource_name. The MCP authorization specification
// ("Protected Resource Metadata Discovery Requirements") lets clients try
// the path-suffixed URL first and then the root one, so both answer with
// the same document.
//
// The document is public and served with Access-Control-Allow-Origin: *,
// preflights included, so browser-based hosts can read it.
//
// URLs are built from auth.resource. X-Forwarded-Host and
// X-Forwarded-Proto replace its host and scheme only when the request comes
// directly from one of auth.trusted_proxies; from anyone else they are
// ignored, so a client cannot make the gateway advertise a host of its
// choosing (agentgateway issue #545 built these URLs from the request).
func (a *Authenticator) MetadataHandler() http.Handler { return a.main.MetadataHandler() }

// MetadataHandler serves the resource's metadata at its MetadataPaths, as
// Authenticator.MetadataHandler does for the MCP endpoint.
func (rs *Resource) MetadataHandler() http.Handler {
	a := rs.a
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(rs.MetadataPaths(), r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "*")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body := rs.prmStatic
		if base := a.publicBase(r); base != rs.resource.base {
			var err error
			if body, err = rs.prm.encode(base + rs.resource.raw); err != nil {
				http.Error(w, "encoding metadata", http.StatusInternalServerError)
				return
			}
		}
		h.Set("Content-Type", "application/json")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}

// ResourceMetadataURL returns the URL of the protected resource metadata
// for r, as sent in challenges.
func (a *Authenticator) ResourceMetadataURL(r *http.Request) string {
	return a.main.ResourceMetadataURL(r)
}

// ResourceMetadataURL returns the URL of the resource's metadata for r.
func (rs *Resource) ResourceMetadataURL(r *http.Request) string {
	return rs.a.publicBase(r) + rs.resource.wellKnown
}

// publicBase returns scheme://host of the gateway as the client sees it:
// auth.resource's, or a trusted proxy's forwarded host and scheme.
func (a *Authenticator) publicBase(r *http.Request) string {
	if len(a.trusted) == 0 || !a.fromTrustedProxy(r) {
		return a.main.resource.base
	}
	scheme, host := a.main.resource.scheme, a.main.resource.host
	if p := strings.ToLower(firstValue(r.Header.Get("X-Forwarded-Proto"))); p == "http" || p == "https" {
		scheme = p
	}
	if h := firstValue(r.Header.Get("X-Forwarded-Host")); validHost(h) {
		host = strings.ToLower(h)
	}
	return scheme + "://" + host
}

// fromTrustedProxy reports whether the direct peer of r is a trusted proxy.
func (a *Authenticator) fromTrustedProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range a.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// firstValue returns the first element of a comma-separated header value,
// the one the outermost proxy set.
func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

// validHost reports whether h is a plain host[:port]: a DNS name or an IP
// literal, nothing that could smuggle a path, credentials or a quote into a
// URL or a header.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := range len(h) {
		c := h[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			c == '.' || c == '-' || c == ':' || c == '[' || c == ']' {
			continue
		}
		return false
	}
	u, err := url.Parse("https://" + h)
	return err == nil && u.Host == h && u.Hostname() != ""
}
