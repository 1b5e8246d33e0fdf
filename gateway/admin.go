package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"path"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/policy"
	"github.com/mcpgw/mcpgw/telemetry/audit"
)

// The admin API is for SREs: kill switches and drains take effect at once,
// on every replica sharing Redis, and each change is audited. Without
// authentication the gateway binds only loopback, so only local operators
// reach it; the actor is then "local-operator".

const localOperator = "local-operator"

// killSwitchRequest is the body of POST /admin/v1/killswitches.
type killSwitchRequest struct {
	// Scope is global, upstream or tool.
	Scope policy.Scope `json:"scope"`
	// Target is the upstream name or a glob on exposed tool names.
	Target string `json:"target"`
	Reason string `json:"reason"`
	Ticket string `json:"ticket"`
	// TTL is a Go duration ("1h"); empty means until revived.
	TTL string `json:"ttl"`
}

// drainRequest is the body of POST /admin/v1/upstreams/{name}/drain and
// /undrain.
type drainRequest struct {
	Reason string `json:"reason"`
}

func (g *Gateway) adminRoutes(r *mux.Router) {
	a := r.PathPrefix("/admin/v1").Subrouter()
	if g.auth != nil {
		a.Use(mux.MiddlewareFunc(g.auth.RequireScope(g.cfg.Auth.AdminScope)))
	}
	a.HandleFunc("/killswitches", g.listSwitches).Methods(http.MethodGet)
	a.HandleFunc("/killswitches", g.addSwitch).Methods(http.MethodPost)
	a.HandleFunc("/killswitches/{id}", g.removeSwitch).Methods(http.MethodDelete)
	a.HandleFunc("/upstreams/{name}/drain", g.drain).Methods(http.MethodPost)
	a.HandleFunc("/upstreams/{name}/undrain", g.undrain).Methods(http.MethodPost)
	a.HandleFunc("/upstreams", g.listUpstreams).Methods(http.MethodGet)
	a.HandleFunc("/catalog", g.listCatalog).Methods(http.MethodGet)
	a.HandleFunc("/drains", g.listDrains).Methods(http.MethodGet)
	a.HandleFunc("/killswitches/history", g.listHistory).Methods(http.MethodGet)
	a.HandleFunc("/keys/rotate", g.rotateKeys).Methods(http.MethodPost)
	a.HandleFunc("/tools/contracts", g.listContracts).Methods(http.MethodGet)
	a.HandleFunc("/tools/{name}/approve", g.approveTool).Methods(http.MethodPost)
	g.logLevelRoutes(a)
	if g.cfg.Telemetry.Profiling {
		profileRoutes(a)
	}
}

// profileRoutes serves net/http/pprof under /admin/v1/debug/pprof/.
func profileRoutes(a *mux.Router) {
	a.HandleFunc("/debug/pprof/", pprof.Index)
	a.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	a.HandleFunc("/debug/pprof/profile", pprof.Profile)
	a.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	a.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// The named profiles (heap, goroutine, mutex, ...): Index would find
	// the name only under /debug/pprof/ at the root.
	a.HandleFunc("/debug/pprof/{name}", func(w http.ResponseWriter, r *http.Request) {
		pprof.Handler(mux.Vars(r)["name"]).ServeHTTP(w, r)
	})
}

func writeAdmin(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeAdmin(w, status, map[string]string{"error": msg})
}

// policyStatus maps a policy error to an HTTP status.
func policyStatus(err error) int {
	switch {
	case errors.Is(err, policy.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, policy.ErrExists):
		return http.StatusConflict
	case errors.Is(err, policy.ErrReasonRequired), errors.Is(err, policy.ErrNegativeTTL), errors.Is(err, policy.ErrInvalidScope),
		errors.Is(err, policy.ErrInvalidTarget), errors.Is(err, policy.ErrInvalidGlob), errors.Is(err, policy.ErrUnknownTool),
		errors.Is(err, policy.ErrUnknownUpstream), errors.Is(err, policy.ErrInvalidID):
		return http.StatusBadRequest
	default:
		return http.StatusServiceUnavailable
	}
}

func (g *Gateway) listSwitches(w http.ResponseWriter, _ *http.Request) {
	writeAdmin(w, http.StatusOK, map[string]any{"killswitches": g.controls.switches.List(), "degraded": g.controls.switches.Degraded()})
}

func (g *Gateway) addSwitch(w http.ResponseWriter, r *http.Request) {
	var req killSwitchRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		adminError(w, http.StatusBadRequest, "invalid body: "+err.Error())
		return
	}
	added, status, err := g.setKillSwitch(r, &req)
	if err != nil {
		adminError(w, status, err.Error())
		return
	}
	writeAdmin(w, http.StatusCreated, addedSwitch{Switch: added, Warning: g.unmatched(&added)})
}

func (g *Gateway) removeSwitch(w http.ResponseWriter, r *http.Request) {
	removed, err := g.liftKillSwitch(r, mux.Vars(r)["id"])
	if err != nil {
		adminError(w, policyStatus(err), err.Error())
		return
	}
	writeAdmin(w, http.StatusOK, removed)
}

// decodeDrain reads the optional body of a drain or undrain request.
func decodeDrain(w http.ResponseWriter, r *http.Request) (drainRequest, bool) {
	var req drainRequest
	if r.ContentLength != 0 {
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			adminError(w, http.StatusBadRequest, "invalid body: "+err.Error())
			return req, false
		}
	}
	return req, true
}

func (g *Gateway) drain(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeDrain(w, r)
	if !ok {
		return
	}
	name := mux.Vars(r)["name"]
	if err := g.drainUpstream(r, name, req.Reason); err != nil {
		adminError(w, policyStatus(err), err.Error())
		return
	}
	writeAdmin(w, http.StatusOK, map[string]any{"upstream": name, "drained": true})
}

func (g *Gateway) undrain(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeDrain(w, r)
	if !ok {
		return
	}
	name := mux.Vars(r)["name"]
	if err := g.undrainUpstream(r, name, req.Reason); err != nil {
		adminError(w, policyStatus(err), err.Error())
		return
	}
	writeAdmin(w, http.StatusOK, map[string]any{"upstream": name, "drained": false})
}

// The changes an SRE makes, shared by the admin API (and so the CLI) and
// the console: each applies the change for r's actor and audits it, so
// both surfaces audit alike by construction.

// setKillSwitch adds the kill switch of req. A refusal comes with its HTTP
// status.
func (g *Gateway) setKillSwitch(r *http.Request, req *killSwitchRequest) (policy.Switch, int, error) {
	sw := policy.Switch{Scope: req.Scope, Target: req.Target, Reason: req.Reason, Ticket: req.Ticket, Actor: actor(r)}
	if req.TTL != "" {
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil {
			return policy.Switch{}, http.StatusBadRequest, fmt.Errorf("invalid ttl: %w", err)
		}
		if ttl <= 0 {
			return policy.Switch{}, http.StatusBadRequest, policy.ErrNegativeTTL
		}
		sw.TTL = ttl
	}
	added, err := g.controls.switches.Add(r.Context(), &sw)
	if err != nil {
		return policy.Switch{}, policyStatus(err), err
	}
	g.auditChange(r, audit.EventKillSwitch, "add", &added)
	return added, http.StatusCreated, nil
}

// addedSwitch is the answer to a new kill switch: the switch, and a
// warning when it stops no tool the catalog knows now.
type addedSwitch struct {
	policy.Switch
	Warning string `json:"warning,omitempty"`
}

// unmatched warns of a tool switch whose glob matches no tool in the
// current catalog. Such a switch is accepted all the same: it is break
// glass, and the tool it names may be unknown only because its upstream
// is down or still loading. It applies as soon as a matching tool
// appears: lists are built without killed tools, and every call is
// checked by name.
func (g *Gateway) unmatched(sw *policy.Switch) string {
	if sw.Scope != policy.ScopeTool {
		return ""
	}
	for _, name := range g.Catalog().ToolNames() { // Hidden ones too: a second switch on a killed tool is no typo.
		if ok, _ := path.Match(sw.Target, name); ok {
			return ""
		}
	}
	return "no tool in the catalog matches " + strconv.Quote(sw.Target) +
		" now (its upstream may be down or loading); the switch applies as soon as one appears"
}

// liftKillSwitch removes the kill switch id.
func (g *Gateway) liftKillSwitch(r *http.Request, id string) (policy.Switch, error) {
	removed, err := g.controls.switches.Remove(r.Context(), id, actor(r))
	if err != nil {
		return policy.Switch{}, err
	}
	g.auditChange(r, audit.EventKillSwitch, "remove", &removed)
	return removed, nil
}

// drainUpstream drains the upstream name.
func (g *Gateway) drainUpstream(r *http.Request, name, reason string) error {
	if err := g.controls.drains.Drain(r.Context(), name, actor(r), reason); err != nil {
		return err
	}
	g.auditChange(r, audit.EventDrain, "drain", &policy.Switch{Scope: policy.ScopeUpstream, Target: name, Reason: reason, Actor: actor(r)})
	return nil
}

// undrainUpstream puts the upstream name back in rotation; reason, when
// given, goes to the audit record.
func (g *Gateway) undrainUpstream(r *http.Request, name, reason string) error {
	if err := g.controls.drains.Undrain(r.Context(), name, actor(r)); err != nil {
		return err
	}
	g.auditChange(r, audit.EventDrain, "undrain", &policy.Switch{Scope: policy.ScopeUpstream, Target: name, Reason: reason, Actor: actor(r)})
	return nil
}

// actor is who makes an admin change: the token's subject, or the local
// operator of an unauthenticated (loopback-only) gateway.
func actor(r *http.Request) string {
	if p, ok := authn.PrincipalFrom(r.Context()); ok {
		return p.Subject
	}
	return localOperator
}

// auditChange writes the audit record of a kill-switch or drain change.
func (g *Gateway) auditChange(r *http.Request, ev audit.Event, action string, sw *policy.Switch) {
	g.controls.history.add(&SwitchEvent{Time: g.now(), Kind: string(ev), Action: action, Actor: sw.Actor, Switch: *sw})
	rec := &audit.Record{
		Time: g.now(), Event: ev, RequestID: requestIDFrom(r.Context()), Subject: sw.Actor,
		Action: action, SwitchID: sw.ID, Scope: string(sw.Scope), Target: sw.Target,
		Reason: sw.Reason, Ticket: sw.Ticket, Actor: sw.Actor, Expires: sw.Expires,
	}
	// The change is made: its record must not depend on the client
	// waiting for the answer.
	if err := g.controls.audit.Log(context.WithoutCancel(r.Context()), rec); err != nil {
		g.log.ErrorContext(r.Context(), "audit record not written", slog.String("event", string(ev)), slog.Any("error", err))
	}
	g.log.InfoContext(r.Context(), "policy changed", slog.String("event", string(ev)), slog.String("action", action),
		slog.String("target", sw.Target), slog.String("id", sw.ID), slog.String("actor", sw.Actor))
}

// listCatalog answers GET /admin/v1/catalog: the merged catalog's tools.
// With the query parameter scopes (space- or comma-separated, possibly
// empty) it is the catalog as a principal granted exactly those scopes
// sees it: "listed" and "missing_scopes" are then that principal's.
func (g *Gateway) listCatalog(w http.ResponseWriter, r *http.Request) {
	var as *CatalogAs
	if q := r.URL.Query(); q.Has("scopes") {
		as = &CatalogAs{Scopes: parseScopes(q.Get("scopes"))}
	}
	writeAdmin(w, http.StatusOK, g.CatalogFor(as))
}

// listDrains answers GET /admin/v1/drains.
func (g *Gateway) listDrains(w http.ResponseWriter, _ *http.Request) {
	writeAdmin(w, http.StatusOK, map[string]any{"drains": g.Drains(), "degraded": g.controls.drains.Degraded()})
}

// listHistory answers GET /admin/v1/killswitches/history: this replica's
// recent kill-switch and drain changes, oldest first.
func (g *Gateway) listHistory(w http.ResponseWriter, _ *http.Request) {
	writeAdmin(w, http.StatusOK, map[string]any{"events": g.SwitchHistory()})
}

// approveRequest is the optional body of POST
// /admin/v1/tools/{name}/approve.
type approveRequest struct {
	// Digest is the contract the operator reviewed (from `mcpgw tools
	// diff` or GET /admin/v1/tools/contracts); when set, the approval is
	// refused should the tool have changed again since.
	Digest string `json:"digest"`
	Reason string `json:"reason"`
}

// approveTool answers POST /admin/v1/tools/{name}/approve: it approves
// the current contract of a tool whose contract differs from its pin.
func (g *Gateway) approveTool(w http.ResponseWriter, r *http.Request) {
	var req approveRequest
	if r.ContentLength != 0 {
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			adminError(w, http.StatusBadRequest, "invalid body: "+err.Error())
			return
		}
	}
	got, err := g.ApproveTool(r.Context(), mux.Vars(r)["name"], req.Digest, actor(r), req.Reason)
	if err != nil {
		adminError(w, approveStatus(err), err.Error())
		return
	}
	writeAdmin(w, http.StatusOK, got)
}

// approveStatus maps an ApproveTool error to an HTTP status; 200 for nil.
func approveStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrNoSuchTool):
		return http.StatusNotFound
	case errors.Is(err, ErrNothingToApprove), errors.Is(err, ErrContractMoved):
		return http.StatusConflict
	default:
		return policyStatus(err)
	}
}

// listContracts answers GET /admin/v1/tools/contracts: the tools whose
// contract differs from its pin on this replica, and the approvals made at
// run time.
func (g *Gateway) listContracts(w http.ResponseWriter, _ *http.Request) {
	writeAdmin(w, http.StatusOK, map[string]any{
		"contracts": g.HeldContracts(), "approvals": g.controls.approvals.List(), "degraded": g.controls.approvals.Degraded(),
	})
}
