package gateway

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/policy"
)

// The SRE console: a page at /admin/ui/ behind the admin scope, rendered
// with html/template, refreshed by a small plain script (no build step),
// all embedded in the binary. It shows what the admin API shows and makes
// the same changes through the same functions, so every change is audited
// as the CLI's are.
//
// Authentication: every request, page and fragments alike, accepts the
// admin bearer token in the Authorization header (scripted browsers,
// authenticating proxies). A person signs in at /admin/ui/signin by
// pasting an access token; the console keeps it in an HttpOnly,
// SameSite=Strict cookie scoped to /admin/ui/ and reads it as if it were
// the header. Without authentication the gateway binds only loopback, the
// console is the local operator's, and it answers only requests addressed
// to a loopback host (DNS rebinding).
//
// CSRF: every change is a POST that must pass net/http's
// CrossOriginProtection (Sec-Fetch-Site, else Origin against Host) and
// carry the page's token, an HMAC of the credential under a key derived
// from server.session_key (so replicas sharing the key agree).

//go:embed ui
var consoleFiles embed.FS

const (
	consolePath   = "/admin/ui/"
	consoleCookie = "mcpgw_console"
	csrfHeader    = "X-CSRF-Token"
	// consoleRows bounds the catalog rows a page shows.
	consoleRows = 500
)

// console serves the SRE console.
type console struct {
	g     *Gateway
	tmpl  *template.Template
	cop   *http.CrossOriginProtection
	scope string
}

func (g *Gateway) consoleRoutes(r *mux.Router) {
	c := &console{g: g, cop: http.NewCrossOriginProtection()}
	c.tmpl = template.Must(template.New("console").Funcs(template.FuncMap{
		"ago":   func(t time.Time) string { return g.now().Sub(t).Round(time.Second).String() },
		"until": func(t time.Time) string { return t.Sub(g.now()).Round(time.Second).String() },
		"utc":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	}).ParseFS(consoleFiles, "ui/*.html"))
	if g.auth != nil {
		c.scope = g.cfg.Auth.AdminScope
	}
	static, err := fs.Sub(consoleFiles, "ui/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	r.Handle("/admin/ui", http.RedirectHandler(consolePath, http.StatusMovedPermanently))
	// The script and style sheet are code, not data: served to anyone, so
	// the sign-in page can use them.
	r.PathPrefix(consolePath+"static/").Handler(c.headers(http.StripPrefix(consolePath+"static/", http.FileServerFS(static)))).
		Methods(http.MethodGet, http.MethodHead)
	if g.auth != nil {
		r.Handle(consolePath+"signin", c.headers(http.HandlerFunc(c.signinPage))).Methods(http.MethodGet)
		r.Handle(consolePath+"signin", c.headers(c.cop.Handler(http.HandlerFunc(c.signin)))).Methods(http.MethodPost)
		r.Handle(consolePath+"signout", c.headers(c.cop.Handler(http.HandlerFunc(c.signout)))).Methods(http.MethodPost)
	}
	// A subrouter's paths continue its prefix.
	ui := r.PathPrefix("/admin/ui").Subrouter()
	ui.Use(c.headers, c.authenticate)
	ui.HandleFunc("/", c.page).Methods(http.MethodGet, http.MethodHead)
	ui.HandleFunc("/fragments/{name}", c.fragment).Methods(http.MethodGet)
	ui.HandleFunc("/events", c.events).Methods(http.MethodGet)
	ui.Handle("/actions/{action}", c.cop.Handler(http.HandlerFunc(c.action))).Methods(http.MethodPost)
}

// headers sets what every console response carries: no caching (the
// pages hold state and a CSRF token), no framing, scripts and styles only
// from the gateway itself.
func (c *console) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// authenticate lets through the requests of an admin: the bearer token of
// the Authorization header, else of the sign-in cookie, must carry the
// admin scope. A person's browser asking for the page without one is
// sent to the sign-in page; everything else gets the admin API's 401 or
// 403 with its challenge.
func (c *console) authenticate(next http.Handler) http.Handler {
	g := c.g
	if g.auth == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !loopbackHost(r.Host) {
				http.Error(w, "the console of a gateway without authentication answers only on a loopback address", http.StatusMisdirectedRequest)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	require := g.auth.RequireScope(c.scope)(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := r.Method == http.MethodGet && r.URL.Path == consolePath
		if r.Header.Get("Authorization") == "" {
			ck, err := r.Cookie(consoleCookie)
			if err != nil || ck.Value == "" {
				if page {
					http.Redirect(w, r, consolePath+"signin", http.StatusSeeOther)
					return
				}
				require.ServeHTTP(w, r) // the 401 and its challenge
				return
			}
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+ck.Value)
		}
		if page {
			if p, err := g.auth.Authenticate(r.Context(), r); err != nil || !p.HasScopes(c.scope) {
				c.clearCookie(w, r)
				msg := "Your session has ended or the token lacks the scope " + c.scope + "."
				if err != nil {
					msg = "The token was refused: " + err.Error() + "."
				}
				c.renderSignin(w, r, http.StatusUnauthorized, msg)
				return
			}
		}
		require.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names a loopback address.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// csrfToken is the CSRF token of r's credential: the token's hash, or the
// local operator.
func (c *console) csrfToken(r *http.Request) string {
	subject := localOperator
	if p, ok := authn.PrincipalFrom(r.Context()); ok {
		subject = "token:" + p.TokenHash
	}
	m := hmac.New(sha256.New, c.g.consoleKey)
	m.Write([]byte(subject))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF reports whether r carries the CSRF token of its credential,
// in the header (the script) or the form (a plain form post).
func (c *console) checkCSRF(r *http.Request) bool {
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && hmac.Equal([]byte(got), []byte(c.csrfToken(r)))
}

// pageData is what the page and its fragments render: the same plain
// values the admin API marshals (Upstreams, CatalogFor, KillSwitches,
// SwitchHistory), read in-process.
type pageData struct {
	Version   string
	Actor     string
	CSRF      string
	SignedIn  bool // through the cookie: the page offers to sign out
	Query     string
	Upstreams []UpstreamState
	Catalog   consoleCatalog
	Switches  []policy.Switch
	History   []SwitchEvent
	Degraded  bool
}

// consoleTool is one catalog row: the admin API's CatalogTool, its
// description, and the switch that stops it.
type consoleTool struct {
	CatalogTool
	Description string
	KilledBy    string
}

// consoleCatalog is the catalog rows matching the search.
type consoleCatalog struct {
	Version uint64
	Total   int
	Rows    []consoleTool
	More    int // matching rows left out
}

// consoleHistory is how many recent changes the page shows.
const consoleHistory = 20

func (c *console) data(r *http.Request) *pageData {
	g := c.g
	d := &pageData{
		Version: g.version, Actor: actor(r), CSRF: c.csrfToken(r),
		Query:     strings.TrimSpace(r.URL.Query().Get("q")),
		Upstreams: g.Upstreams(), Switches: g.KillSwitches(), Degraded: g.controls.switches.Degraded(),
	}
	if _, err := r.Cookie(consoleCookie); err == nil && g.auth != nil {
		d.SignedIn = true
	}
	h := g.SwitchHistory()
	h = h[max(0, len(h)-consoleHistory):]
	slices.Reverse(h)
	d.History = h
	d.Catalog = c.catalog(d.Query)
	return d
}

// catalog lists the routed tools matching q (a case-insensitive
// substring of the name, upstream or description), by upstream.
func (c *console) catalog(q string) consoleCatalog {
	g := c.g
	view := g.CatalogFor(nil)
	descs := map[[2]string]string{}
	for _, cl := range g.rt.Load().clients {
		cat, _ := cl.Catalog()
		if cat == nil {
			continue
		}
		for _, raw := range cat.Tools {
			var t struct{ Name, Description string }
			if json.Unmarshal(raw, &t) == nil {
				descs[[2]string{cl.Name(), t.Name}] = t.Description
			}
		}
	}
	out := consoleCatalog{Version: view.Version, Total: len(view.Tools)}
	q = strings.ToLower(q)
	for i := range view.Tools {
		t := consoleTool{CatalogTool: view.Tools[i]}
		t.Description = descs[[2]string{t.Upstream, t.Original}]
		if q != "" && !strings.Contains(strings.ToLower(t.Name+"\x00"+t.Upstream+"\x00"+t.Description), q) {
			continue
		}
		if t.Killed {
			if sw, ok := g.controls.switches.Check(t.Name, t.Upstream); ok {
				t.KilledBy = sw.ID
			}
		}
		if len(out.Rows) == consoleRows {
			out.More++
			continue
		}
		out.Rows = append(out.Rows, t)
	}
	slices.SortStableFunc(out.Rows, func(a, b consoleTool) int { return cmp.Compare(a.Upstream, b.Upstream) })
	return out
}

func (c *console) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		c.g.log.ErrorContext(r.Context(), "console template failed", slog.String("template", name), slog.Any("error", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (c *console) page(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "page", c.data(r))
}

// fragment serves one section of the page, which the script swaps in.
func (c *console) fragment(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	switch name {
	case "upstreams", "catalog", "switches":
		c.render(w, r, http.StatusOK, name, c.data(r))
	default:
		http.NotFound(w, r)
	}
}

// action applies one change: kill, revive, drain or undrain. The script
// posts with X-Requested-With and gets a short text answer; a plain form
// post is sent back to the page.
func (c *console) action(w http.ResponseWriter, r *http.Request) {
	if !c.checkCSRF(r) {
		http.Error(w, "missing or wrong CSRF token: reload the console", http.StatusForbidden)
		return
	}
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	var (
		msg    string
		status = http.StatusOK
		err    error
	)
	switch mux.Vars(r)["action"] {
	case "kill":
		var sw policy.Switch
		sw, status, err = c.g.setKillSwitch(r, &killSwitchRequest{
			Scope: policy.Scope(f("scope")), Target: f("target"), Reason: f("reason"), Ticket: f("ticket"), TTL: f("ttl"),
		})
		msg = fmt.Sprintf("kill switch %s set on %s %s", sw.ID, sw.Scope, sw.Target)
	case "revive":
		var sw policy.Switch
		sw, err = c.g.liftKillSwitch(r, f("id"))
		msg = fmt.Sprintf("kill switch %s lifted: %s %s is revived", sw.ID, sw.Scope, sw.Target)
	case "drain":
		err = c.g.drainUpstream(r, f("name"), f("reason"))
		msg = "upstream " + f("name") + " drained"
	case "undrain":
		err = c.g.undrainUpstream(r, f("name"), f("reason"))
		msg = "upstream " + f("name") + " back in rotation"
	case "approve":
		var got ApprovedContract
		got, err = c.g.ApproveTool(r.Context(), f("name"), f("digest"), actor(r), f("reason"))
		status = approveStatus(err)
		msg = fmt.Sprintf("contract %s of %s approved", got.Current, got.Tool)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		if status < 400 {
			status = policyStatus(err)
		}
		http.Error(w, err.Error(), status)
		return
	}
	if r.Header.Get("X-Requested-With") == "" {
		http.Redirect(w, r, consolePath, http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(msg))
}

// events streams the audit records as server-sent events: the recent
// ones, then each as it is written, until the client goes or the gateway
// shuts down. A client that falls behind gets a "missed" event.
func (c *console) events(w http.ResponseWriter, r *http.Request) {
	tap := c.g.controls.tap
	recent, sub, cancel := tap.subscribe()
	defer cancel()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, data []byte) bool {
		var b bytes.Buffer
		b.WriteString("event: " + event + "\ndata: ")
		b.Write(data)
		b.WriteString("\n\n")
		if _, err := w.Write(b.Bytes()); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for _, line := range recent {
		if !send("audit", line) {
			return
		}
	}
	if !send("ready", []byte("{}")) {
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.g.drained:
			return
		case line := <-sub.ch:
			if tap.takeMissed(sub) && !send("missed", []byte("{}")) {
				return
			}
			if !send("audit", line) {
				return
			}
		case <-keepalive.C:
			if _, err := w.Write([]byte(": keepalive\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// signinData is what the sign-in page renders.
type signinData struct {
	Scope   string
	Message string
}

func (c *console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignin(w, r, http.StatusOK, "")
}

func (c *console) renderSignin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, status, "signin", signinData{Scope: c.scope, Message: msg})
}

// signin takes a pasted access token, checks it carries the admin scope,
// and keeps it in the console's cookie until it expires.
func (c *console) signin(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(r.PostFormValue("token")), "Bearer "))
	if token == "" {
		c.renderSignin(w, r, http.StatusBadRequest, "Paste an access token.")
		return
	}
	probe := r.Clone(r.Context())
	probe.Header.Set("Authorization", "Bearer "+token)
	p, err := c.g.auth.Authenticate(r.Context(), probe)
	if err != nil {
		c.renderSignin(w, r, http.StatusUnauthorized, "The token was refused: "+err.Error()+".")
		return
	}
	if !p.HasScopes(c.scope) {
		c.renderSignin(w, r, http.StatusForbidden, "The token lacks the scope "+c.scope+".")
		return
	}
	ck := &http.Cookie{
		Name: consoleCookie, Value: token, Path: consolePath, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: c.secure(r),
	}
	if !p.Expiry.IsZero() {
		ck.Expires = p.Expiry
	}
	http.SetCookie(w, ck)
	c.g.log.InfoContext(r.Context(), "console sign-in", slog.String("actor", p.Subject))
	http.Redirect(w, r, consolePath, http.StatusSeeOther)
}

func (c *console) signout(w http.ResponseWriter, r *http.Request) {
	c.clearCookie(w, r)
	http.Redirect(w, r, consolePath+"signin", http.StatusSeeOther)
}

func (c *console) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: consoleCookie, Value: "", Path: consolePath, MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: c.secure(r),
	})
}

// secure reports whether the browser reached the console over HTTPS: TLS
// here, or a public URL that says so.
func (c *console) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(c.g.cfg.Server.PublicURL, "https://")
}
