package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/telemetry"
)

// buildHandler composes the whole HTTP chain in one place. A request passes
// recover → request id → limits (header fields, body size and read time;
// limits.go), then /mcp goes on to the Origin check → authentication
// (capped for connections not yet authenticated) → serveMCP; a virtual
// endpoint's path (or its metadata) to the same steps against its own
// protected resource (endpoints.go); and every other path to the router (OAuth metadata, JWKS, health, /metrics, the
// admin API). The middlewares are wrapped below in the reverse of that
// order.
func (g *Gateway) buildHandler() http.Handler {
	r := mux.NewRouter()
	var mcp http.Handler = http.HandlerFunc(g.serveMCP)
	if g.auth != nil {
		mcp = g.authenticate(mcp, g.auth, g.cfg.Auth.RequiredScopes)
		for _, p := range g.auth.MetadataPaths() {
			r.Handle(p, g.auth.MetadataHandler())
		}
	}
	mcp = g.originCheck(mcp)
	r.Handle(g.cfg.Server.MCPPath, mcp)
	r.HandleFunc(jwksPath, g.serveJWKS).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/", g.indexHandler()).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/healthz", g.serveHealthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", g.serveReadyz).Methods(http.MethodGet, http.MethodHead)
	g.metricsRoute(r)
	g.adminRoutes(r)
	g.consoleRoutes(r)

	// The MCP endpoint, the hot path, is matched before the router: mux
	// copies the request twice per match to carry route variables the
	// endpoint does not use.
	h := exactPath(g.cfg.Server.MCPPath, mcp, g.routeEndpoints(r))
	h = g.limitRequest(h)
	h = g.requestID(h)
	h = g.recoverPanics(h)
	return h
}

// exactPath sends requests for path to h and every other to rest.
func exactPath(path string, h, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == path {
			h.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

// recoverPanics turns a handler panic into a 500 and a log line instead of a
// dropped connection.
func (g *Gateway) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value, compared as net/http does.
					panic(v)
				}
				g.log.ErrorContext(r.Context(), "handler panicked", slog.Any("panic", v),
					slog.String("request_id", requestIDFrom(r.Context())))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// withRequestID stores the request id in ctx. It lives in telemetry, whose
// log handler adds it to every line.
func withRequestID(ctx context.Context, id string) context.Context {
	return telemetry.WithRequestID(ctx, id)
}

// requestIDFrom returns the request id stored in ctx, or "".
func requestIDFrom(ctx context.Context) string { return telemetry.RequestIDFrom(ctx) }

// requestID accepts a well-formed X-Request-ID or generates one, echoes it in
// the response, and carries it in the context (to logs and upstreams).
func (g *Gateway) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id") // canonical: Get allocates to canonicalize any other spelling
		if !validRequestID(id) {
			id = newRequestID()
		}
		// The response header's value is the context's too: header values
		// are never written after they are set (a Set replaces the slice).
		v := []string{id}
		w.Header()["X-Request-Id"] = v
		next.ServeHTTP(w, r.WithContext(telemetry.WithRequestIDRef(r.Context(), &v[0])))
	})
}

// validRequestID accepts 1–128 visible ASCII characters, so that a caller
// cannot inject into logs or upstream headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := range len(id) {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	var h [32]byte
	hex.Encode(h[:], b[:])
	return string(h[:])
}

// The headers a browser host may read from and send to /mcp: the
// transport's session and version headers, the 2026-07-28 routing mirrors,
// and the ones the chain itself uses.
const (
	corsExposeHeaders = mcpwire.HeaderSessionID + ", " + mcpwire.HeaderProtocolVersion + ", WWW-Authenticate, X-Request-Id"
	corsAllowHeaders  = "Authorization, Content-Type, Accept, Last-Event-ID, " + mcpwire.HeaderSessionID + ", " +
		mcpwire.HeaderProtocolVersion + ", " + mcpwire.HeaderMethod + ", " + mcpwire.HeaderName + ", X-Request-Id"
)

// originCheck enforces the Origin allow-list that the MCP transport spec
// requires against DNS rebinding (basic/transports, "Security Warning"):
// a request whose Origin is present and not allowed gets 403. It also
// answers CORS preflights and decorates responses for browser hosts.
func (g *Gateway) originCheck(next http.Handler) http.Handler {
	allowed := newOriginSet(g.cfg.Server.AllowedOrigins)
	cors := g.cfg.Server.CORS
	corsOrigins := allowed
	if len(cors.AllowedOrigins) > 0 {
		corsOrigins = newOriginSet(cors.AllowedOrigins)
	}
	maxAge := strconv.Itoa(int(cors.MaxAge.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && !allowed.allows(origin) {
			g.log.WarnContext(r.Context(), "origin refused", slog.String("origin", origin),
				slog.String("request_id", requestIDFrom(r.Context())))
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		if cors.Enabled && origin != "" && corsOrigins.allows(origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
				h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
				h.Set("Access-Control-Max-Age", maxAge)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// originSet matches Origin header values. With no configured entries it
// allows the loopback origins on any port.
type originSet struct {
	any   bool
	exact map[string]bool
	local bool
}

func newOriginSet(list []string) originSet {
	s := originSet{exact: make(map[string]bool, len(list))}
	if len(list) == 0 {
		s.local = true
	}
	for _, o := range list {
		if o == "*" {
			s.any = true
		}
		s.exact[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	return s
}

func (s originSet) allows(origin string) bool {
	if s.any || s.exact[strings.ToLower(origin)] {
		return true
	}
	if !s.local {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return slices.Contains([]string{"localhost", "127.0.0.1", "::1"}, u.Hostname())
}

func (g *Gateway) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// upstreamHealth is one upstream's line in /readyz.
type upstreamHealth struct {
	Name      string `json:"name"`
	Required  bool   `json:"required"`
	Loaded    bool   `json:"loaded"`
	Available bool   `json:"available"`
	// Tools counts the upstream's tools in the merged catalog, killed
	// ones included (they stay routed).
	Tools int `json:"tools"`
	// Breaker is the state of the upstream's circuit breaker; InFlight
	// the calls holding its bulkhead slots.
	Breaker  string `json:"breaker"`
	InFlight int    `json:"in_flight"`
	// ToolsDroppedName and ToolsClashed count the upstream's tools the
	// catalog left out: name past catalog.name_pattern (most often too
	// long once prefixed), or exposed name taken by an earlier upstream.
	ToolsDroppedName int `json:"tools_dropped_name"`
	ToolsClashed     int `json:"tools_clashed"`
	// ToolsQuarantined counts those of Tools held back because their
	// contract differs from the lock file (pinning enforce): routed, but
	// in no list.
	ToolsQuarantined int `json:"tools_quarantined,omitempty"`
}

// serveReadyz answers 200 once the kill-switch state has loaded and every
// required upstream has either listed its catalog (which is then in the
// published snapshot) or failed its first attempt, 503 before, and
// details each upstream either way. An upstream that is down thus holds
// readiness for one attempt, bounded by its handshake timeout; it is then
// listed here as loaded: false, available: false, and its calls fail fast.
func (g *Gateway) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	rt := g.rt.Load()
	body := struct {
		Status         string           `json:"status"`
		CatalogVersion uint64           `json:"catalog_version"`
		Sessions       int64            `json:"sessions"`
		Upstreams      []upstreamHealth `json:"upstreams"`
		// KillSwitches is "unavailable" while the kill-switch state has not
		// loaded: the replica then refuses every call, so it is not ready.
		KillSwitches string `json:"killswitches"`
	}{Status: "ready", CatalogVersion: rt.snapshot().Version(), Sessions: g.sessions.count(), KillSwitches: "loaded"}
	status := http.StatusOK
	// Tool counts are what each upstream contributes to the merged
	// catalog, after include/exclude filters, the name pattern and name
	// clashes: what clients can see, not what the upstream listed.
	infos := make(map[string]catalog.UpstreamInfo, len(rt.clients))
	for _, u := range rt.snapshot().Upstreams() {
		infos[u.Name] = u
	}
	quarantined := rt.quarantinedPerUpstream()
	for _, c := range rt.clients {
		cat, avail := c.Catalog()
		h := upstreamHealth{
			Name: c.Name(), Required: !rt.upCfg[c.Name()].Optional, Loaded: cat != nil, Available: avail,
			Breaker: breakerState(c),
		}
		if r, ok := c.(reporter); ok {
			h.InFlight = r.Load().InFlight
		}
		if cat != nil {
			h.Tools = infos[c.Name()].Tools
		}
		h.ToolsDroppedName, h.ToolsClashed = infos[c.Name()].ToolsDroppedName, infos[c.Name()].ToolsClashed
		h.ToolsQuarantined = quarantined[c.Name()]
		body.Upstreams = append(body.Upstreams, h)
	}
	if !rt.ready() {
		status = http.StatusServiceUnavailable
		body.Status = "loading"
	}
	if g.controls.switches.Degraded() {
		status = http.StatusServiceUnavailable
		body.Status, body.KillSwitches = "degraded", "unavailable"
	}
	if g.stopping.Load() {
		status = http.StatusServiceUnavailable
		body.Status = "draining"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
