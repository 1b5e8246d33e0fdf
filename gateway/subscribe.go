package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// Resource subscriptions, federated (2025-11-25 server/resources,
// "Subscriptions"; 2026-07-28 basic/utilities/subscriptions). A client
// subscribes to a URI as the gateway exposes it; the catalog snapshot's
// URI map (built from the upstreams' resource lists and templates when the
// catalog is built) names the upstream that owns it and the upstream's own
// URI. The gateway holds one upstream subscription per (upstream, URI),
// made for the first subscriber and released when the last one leaves;
// the upstream client makes it again on each new upstream session. Each
// notifications/resources/updated then reaches every subscriber once: a
// 2025-era session on its GET stream, a 2026-07-28 client on the
// subscriptions/listen stream that asked for it.
//
// A client subscribes only to what it may see: the URI must resolve in
// the catalog its principal is shown (visible.go), on an upstream that
// offers subscriptions. The registry is per replica, as sessions and
// listen streams are.

// subscriber is a session or a listen stream.
type subscriber interface {
	// updated queues a notification; it must not block.
	updated(note []byte)
}

func (s *session) updated(note []byte)  { s.notify(note) }
func (l *listener) updated(note []byte) { l.send(note) }

// upstreamResource names a resource as its upstream knows it.
type upstreamResource struct{ upstream, uri string }

// subscriptions is the replica's subscription registry.
type subscriptions struct {
	mu sync.Mutex
	// by holds, for each upstream resource, its subscribers and the URI
	// each subscribed to (the exposed one).
	by map[upstreamResource]map[subscriber]string
}

// subscribeUpstream is what the registry needs of an Upstream; upstreams
// without it (the test fakes) offer no subscriptions.
type subscribeUpstream interface {
	Subscribe(ctx context.Context, uri string) error
	Unsubscribe(ctx context.Context, uri string) error
}

// resourceTarget resolves an exposed URI a client may subscribe to.
func (g *Gateway) resourceTarget(ctx context.Context, uri string) (upstreamResource, subscribeUpstream, *rpcError) { //nolint:ireturn // the owning upstream's subscription side, which the registry calls.
	rt := g.rt.Load()
	snap := g.visible(ctx, rt, nil, true) // resources are the same for every host
	route, ok := snap.Resource(uri)
	if !ok || uri == "" {
		return upstreamResource{}, nil, newRPCError(mcpwire.CodeResourceNotFound, "resource not found: "+strconv.Quote(uri), map[string]any{"uri": uri})
	}
	su, ok := rt.byName[route.Upstream].(subscribeUpstream)
	if !ok || !offersSubscribe(rt.byName[route.Upstream]) {
		return upstreamResource{}, nil, newRPCError(mcpwire.CodeInvalidParams, "resource "+strconv.Quote(uri)+" does not support subscriptions", map[string]any{"uri": uri, "upstream": route.Upstream})
	}
	return upstreamResource{upstream: route.Upstream, uri: route.Name}, su, nil
}

// offersSubscribe reports whether u's capabilities have
// resources.subscribe.
func offersSubscribe(u Upstream) bool {
	if u == nil {
		return false
	}
	cat, _ := u.Catalog()
	if cat == nil {
		return false
	}
	return string(rawjson.Member(rawjson.Member(cat.Capabilities, "resources"), "subscribe")) == "true"
}

// anySubscribe reports whether some upstream offers subscriptions: then
// the gateway advertises resources.subscribe.
func (rt *runtime) anySubscribe() bool {
	return slices.ContainsFunc(rt.clients, offersSubscribe)
}

// subscribe adds sub as a subscriber of the exposed uri, subscribing
// upstream for the first one.
func (g *Gateway) subscribe(ctx context.Context, sub subscriber, uri string) *rpcError {
	key, su, rerr := g.resourceTarget(ctx, uri)
	if rerr != nil {
		return rerr
	}
	ss := &g.subs
	ss.mu.Lock()
	subs := ss.by[key]
	first := len(subs) == 0
	if ss.by == nil {
		ss.by = make(map[upstreamResource]map[subscriber]string)
	}
	if subs == nil {
		subs = make(map[subscriber]string)
		ss.by[key] = subs
	}
	subs[sub] = uri
	ss.mu.Unlock()
	if !first {
		return nil
	}
	if err := su.Subscribe(ctx, key.uri); err != nil {
		g.unsubscribe(ctx, sub, uri)
		return g.upstreamError(ctx, &target{upstream: key.upstream, name: uri}, err)
	}
	return nil
}

// unsubscribe removes sub's subscription to the exposed uri, releasing the
// upstream one with the last subscriber. A URI sub never subscribed to is
// not an error.
func (g *Gateway) unsubscribe(ctx context.Context, sub subscriber, uri string) {
	ss := &g.subs
	ss.mu.Lock()
	var last []upstreamResource
	for key, subs := range ss.by {
		if got, ok := subs[sub]; ok && got == uri {
			delete(subs, sub)
			if len(subs) == 0 {
				delete(ss.by, key)
				last = append(last, key)
			}
		}
	}
	ss.mu.Unlock()
	g.release(ctx, last)
}

// unsubscribeAll removes every subscription of sub (a session ending, a
// listen stream closing).
func (g *Gateway) unsubscribeAll(sub subscriber) {
	ss := &g.subs
	ss.mu.Lock()
	var last []upstreamResource
	for key, subs := range ss.by {
		if _, ok := subs[sub]; ok {
			delete(subs, sub)
			if len(subs) == 0 {
				delete(ss.by, key)
				last = append(last, key)
			}
		}
	}
	ss.mu.Unlock()
	if len(last) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), unsubscribeTimeout)
		defer cancel()
		g.release(ctx, last)
	}
}

// unsubscribeTimeout bounds the upstream unsubscriptions of a subscriber
// that went away.
const unsubscribeTimeout = 5e9

// release ends the upstream subscriptions no subscriber holds any more.
func (g *Gateway) release(ctx context.Context, keys []upstreamResource) {
	rt := g.rt.Load()
	for _, key := range keys {
		su, ok := rt.byName[key.upstream].(subscribeUpstream)
		if !ok {
			continue
		}
		if err := su.Unsubscribe(ctx, key.uri); err != nil {
			g.log.WarnContext(ctx, "releasing an upstream resource subscription failed",
				slog.String("upstream", key.upstream), slog.String("uri", key.uri), slog.Any("error", err))
		}
	}
}

// resourceUpdated delivers an upstream's notifications/resources/updated
// to every subscriber, once each, with the URI it subscribed to.
func (g *Gateway) resourceUpdated(upstreamName, uri string) {
	ss := &g.subs
	ss.mu.Lock()
	subs := ss.by[upstreamResource{upstream: upstreamName, uri: uri}]
	notes := make(map[subscriber][]byte, len(subs))
	for sub, exposed := range subs {
		params := rawjson.AppendString([]byte(`{"uri":`), exposed)
		notes[sub] = appendNotification(nil, mcpwire.NotifyResourceUpdated, append(params, '}'))
	}
	ss.mu.Unlock()
	for sub, note := range notes {
		sub.updated(note)
	}
}

// serveSubscribe answers resources/subscribe and resources/unsubscribe on
// a session.
func (g *Gateway) serveSubscribe(w http.ResponseWriter, r *http.Request, s *session, m *message) {
	uri, ok := rawjson.DecodeString(rawjson.Member(m.Params, "uri"))
	if !ok || uri == "" {
		writeJSON(w, http.StatusOK, appendError(nil, m.ID, newRPCError(mcpwire.CodeInvalidParams, "params.uri is missing or not a string", nil)))
		return
	}
	if m.Method == mcpwire.MethodUnsubscribe {
		g.unsubscribe(r.Context(), s, uri)
	} else if rerr := g.subscribe(r.Context(), s, uri); rerr != nil {
		writeJSON(w, http.StatusOK, appendError(nil, m.ID, rerr))
		return
	}
	s.onClose(func() { g.unsubscribeAll(s) })
	writeJSON(w, http.StatusOK, appendResult(nil, m.ID, json.RawMessage(emptyObject)))
}
