package gateway

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/upstream"
)

// Multi round-trip requests (MCP 2026-07-28, basic/patterns/mrtr) replace
// server-to-client requests: a tools/call, prompts/get or resources/read
// may be answered with {"resultType":"input_required", "inputRequests",
// "requestState"}, and the client retries the original request with
// "inputResponses" and the state echoed back. The gateway meets every mix
// of eras:
//
//   - modern client, modern upstream: the result passes through, but the
//     upstream's requestState is sealed inside the gateway's own (AEAD, key
//     id, bound to principal, upstream, exposed name and method, with an
//     expiry), so the client can neither read nor alter it, nor replay it
//     as someone else or for another tool. Any replica holding the same
//     server.session_key opens it, so the retry may land anywhere.
//   - legacy (2025 session) client, modern upstream: each input request
//     becomes a 2025-era server-to-client request on the response stream of
//     the pending POST; the client's answers (POSTed responses on its
//     session) become inputResponses of the gateway's retry upstream.
//   - modern client, legacy upstream: the upstream's server-to-client
//     requests on the call's stream become an input_required result; the
//     upstream call is held open on this replica, and the retry's
//     inputResponses answer it. A held call is single-use and per process:
//     a retry landing on another replica, or after mrtr_hold_timeout, gets
//     mcpwire.CodeInputGone. Modern clients of legacy upstreams need affinity for
//     elicitation; that is a known limit.
//
// The spec's replay guidance (principal, short expiry, originating request
// inside the integrity-protected state) is followed; it "does not by itself
// guarantee single-use". Pass-through states are therefore reusable within
// their expiry by the same principal for the same tool (the upstream's own
// state is the upstream's business); held legacy calls are strictly
// single-use.

const (
	statePrefix = "g1."
	stateAAD    = "mcpgw mrtr requestState v1"
	// maxInputRounds bounds the bridge for a legacy client, as mcp-go's
	// client bounds its own retry loop.
	maxInputRounds = 10
)

// multiRound reports whether method may get an input_required result
// (basic/patterns/mrtr, "Supported Requests").
func multiRound(method string) bool {
	return method == mcpwire.MethodToolsCall || method == mcpwire.MethodPromptsGet || method == mcpwire.MethodResourcesRead
}

// inputCapability names the client capability an input request needs;
// false for a method that is not an input request.
func inputCapability(method string) (string, bool) {
	switch method {
	case mcpwire.MethodElicit:
		return mcpwire.CapabilityElicitation, true
	case mcpwire.MethodCreateMessage:
		return mcpwire.CapabilitySampling, true
	case mcpwire.MethodRootsList:
		return mcpwire.CapabilityRoots, true
	default:
		return "", false
	}
}

// sealedState is the plaintext of a gateway requestState.
type sealedState struct {
	Owner    string  `json:"o"`           // ownerOf: issuer and subject, "" anonymous
	Upstream string  `json:"u"`           // upstream the retry must go to
	Name     string  `json:"n"`           // exposed tool or prompt name, or URI
	Method   string  `json:"m"`           // the originating method
	Expiry   int64   `json:"e"`           // unix seconds
	State    *string `json:"s,omitempty"` // the upstream's requestState, nil if it sent none
	Held     string  `json:"h,omitempty"` // id of a held legacy call on the sealing replica
}

// mrtr seals request states and holds legacy upstream calls.
type mrtr struct {
	aeads  map[byte]cipher.AEAD // by key id, for opening
	kid    byte                 // key id of sealing key
	seal   cipher.AEAD
	ttl    time.Duration
	hold   time.Duration
	now    func() time.Time
	held   sync.Map // id → *heldCall
	nHeld  atomic.Int64
	askSeq atomic.Int64
}

// newMRTR derives the requestState key from the session key with HKDF
// (RFC 5869) so that the two uses never share a key. The key id is the
// first byte of the derived key's SHA-256: replicas configured with the same
// session_key agree on it, and a state sealed under a retired key is told
// apart from a forged one.
func newMRTR(sessionKey []byte, ttl, hold time.Duration, now func() time.Time) (*mrtr, error) {
	key, err := hkdf.Key(sha256.New, sessionKey, nil, "mcpgw mrtr requestState", 32)
	if err != nil {
		return nil, fmt.Errorf("deriving requestState key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("requestState key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("requestState key: %w", err)
	}
	sum := sha256.Sum256(key)
	return &mrtr{aeads: map[byte]cipher.AEAD{sum[0]: aead}, kid: sum[0], seal: aead, ttl: ttl, hold: hold, now: now}, nil
}

// sealState returns the JSON string of a gateway requestState.
func (mt *mrtr) sealState(st *sealedState) []byte {
	st.Expiry = mt.now().Add(mt.ttl).Unix()
	plain, _ := json.Marshal(st)
	out := make([]byte, 1, 1+12+len(plain)+mt.seal.Overhead())
	out[0] = mt.kid
	nonce := make([]byte, mt.seal.NonceSize())
	_, _ = rand.Read(nonce)
	out = append(out, nonce...)
	out = mt.seal.Seal(out, nonce, plain, []byte(stateAAD))
	return quoteJSON(statePrefix + base64.RawURLEncoding.EncodeToString(out))
}

// openState checks a requestState a client sent back: it must be the
// gateway's, unexpired, the caller's, and for this very request. Every
// failure is mcpwire.CodeInvalidParams (the spec names no code; it says only that servers MUST
// reject state that fails verification, basic/patterns/mrtr).
func (mt *mrtr) openState(raw json.RawMessage, owner string, t *target, method string) (*sealedState, *rpcError) {
	bad := func(reason string) *rpcError {
		return newRPCError(mcpwire.CodeInvalidParams, "invalid requestState: "+reason, map[string]any{"reason": reason})
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, bad("not a string")
	}
	enc, ok := bytes.CutPrefix([]byte(s), []byte(statePrefix))
	if !ok {
		return nil, bad("not issued by this gateway")
	}
	b, err := base64.RawURLEncoding.AppendDecode(nil, enc)
	ns := mt.seal.NonceSize()
	if err != nil || len(b) < 1+ns+mt.seal.Overhead() {
		return nil, bad("malformed")
	}
	aead, ok := mt.aeads[b[0]]
	if !ok {
		return nil, bad("unknown key")
	}
	plain, err := aead.Open(nil, b[1:1+ns], b[1+ns:], []byte(stateAAD))
	if err != nil {
		return nil, bad("forged or corrupted")
	}
	var st sealedState
	if json.Unmarshal(plain, &st) != nil {
		return nil, bad("malformed")
	}
	switch {
	case mt.now().Unix() > st.Expiry:
		return nil, bad("expired")
	case st.Owner != owner:
		return nil, bad("issued to another principal")
	case st.Method != method || st.Name != t.name:
		return nil, bad("issued for another request")
	case st.Upstream != t.upstream:
		return nil, bad("the target moved to another upstream")
	}
	return &st, nil
}

// isInputRequired reports whether a result is an InputRequiredResult. The
// byte check keeps ordinary results from being parsed.
func isInputRequired(result []byte) bool {
	if !bytes.Contains(result, []byte(mcpwire.ResultInputRequired)) {
		return false
	}
	var rt string
	return json.Unmarshal(rawjson.Member(result, mcpwire.ResultTypeKey), &rt) == nil && rt == mcpwire.ResultInputRequired
}

// editMembers returns obj with members set and removed. It decodes only
// the top level; it runs on MRTR rounds, not on ordinary calls.
func editMembers(obj json.RawMessage, set map[string]json.RawMessage, del ...string) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(obj) > 0 {
		if err := json.Unmarshal(obj, &m); err != nil {
			return nil, err
		}
	}
	for _, k := range del {
		delete(m, k)
	}
	maps.Copy(m, set)
	return json.Marshal(m)
}

// exchange sends one forwarded request upstream and handles the MRTR
// rounds the mix of eras needs. It returns the result to relay, or an
// error: an *rpcError of the gateway, or the upstream client's.
func (g *Gateway) exchange(ctx context.Context, s *session, rp *replier, t *target, c Upstream, req *upstream.Request, m *message) (json.RawMessage, error) {
	if !multiRound(m.Method) {
		return c.Call(ctx, req)
	}
	owner := ownerOfContext(ctx)
	if s != nil {
		return g.bridgeLegacyClient(ctx, s, rp, c, req)
	}
	caps := rawjson.Member(rawjson.Member(m.Params, "_meta"), mcpwire.MetaClientCapabilities)
	req.ClientCapabilities = caps
	if raw := rawjson.Member(req.Params, "requestState"); len(raw) > 0 {
		st, rerr := g.mrtr.openState(raw, owner, t, m.Method)
		if rerr != nil {
			return nil, rerr
		}
		if st.Held != "" {
			return g.resumeHeld(ctx, st.Held, req.Params)
		}
		var err error
		if st.State != nil {
			req.Params, err = editMembers(req.Params, map[string]json.RawMessage{"requestState": quoteJSON(*st.State)})
		} else {
			req.Params, err = editMembers(req.Params, nil, "requestState")
		}
		if err != nil {
			return nil, newRPCError(mcpwire.CodeInvalidParams, "invalid params: "+err.Error(), nil)
		}
	}
	if cat, _ := c.Catalog(); cat != nil && !cat.Stateless && declaresInput(caps) {
		return g.holdCall(ctx, owner, t, m.Method, c, req)
	}
	res, err := c.Call(ctx, req)
	if err != nil || !isInputRequired(res) {
		return res, err
	}
	// Pass through, with the upstream's state sealed in the gateway's.
	st := &sealedState{Owner: owner, Upstream: t.upstream, Name: t.name, Method: m.Method}
	if raw := rawjson.Member(res, "requestState"); len(raw) > 0 {
		var us string
		if json.Unmarshal(raw, &us) != nil {
			return nil, newRPCError(mcpwire.CodeUpstreamBadResponse, "upstream sent a requestState that is not a string", map[string]any{"upstream": t.upstream})
		}
		st.State = &us
	}
	out, err := editMembers(res, map[string]json.RawMessage{"requestState": g.mrtr.sealState(st)})
	if err != nil {
		return nil, newRPCError(mcpwire.CodeUpstreamBadResponse, "upstream sent a malformed input_required result", map[string]any{"upstream": t.upstream})
	}
	return out, nil
}

// ownerOfContext is ownerOf for a context carrying the principal.
func ownerOfContext(ctx context.Context) string {
	if p, ok := authn.PrincipalFrom(ctx); ok {
		return p.Key()
	}
	return ""
}

// declaresInput reports whether client capabilities name any feature an
// input request can need.
func declaresInput(caps json.RawMessage) bool {
	for _, c := range [...]string{mcpwire.CapabilityElicitation, mcpwire.CapabilitySampling, mcpwire.CapabilityRoots} {
		if len(rawjson.Member(caps, c)) > 0 {
			return true
		}
	}
	return false
}

// --- legacy client ---------------------------------------------------------

// bridgeLegacyClient forwards a 2025-era client's request. A modern
// upstream's input_required is answered by asking the client over its
// session and retrying with inputResponses; a legacy upstream's requests
// on the call's stream are relayed to the client the same way.
func (g *Gateway) bridgeLegacyClient(ctx context.Context, s *session, rp *replier, c Upstream, req *upstream.Request) (json.RawMessage, error) {
	if len(s.clientCaps) > 0 {
		req.ClientCapabilities = s.clientCaps
	}
	req.OnServerRequest = func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
		res, rerr := g.askClient(ctx, s, rp, method, params)
		if rerr != nil {
			return nil, &upstream.RPCError{Code: rerr.Code, Message: rerr.Message}
		}
		return res, nil
	}
	res, err := c.Call(ctx, req)
	for round := 0; err == nil && isInputRequired(res); round++ {
		if round == maxInputRounds {
			return nil, newRPCError(mcpwire.CodeUpstreamBadResponse, "upstream asked for input more than "+strconv.Itoa(maxInputRounds)+" times", nil)
		}
		var asks map[string]struct {
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if raw := rawjson.Member(res, "inputRequests"); len(raw) > 0 {
			if json.Unmarshal(raw, &asks) != nil {
				return nil, newRPCError(mcpwire.CodeUpstreamBadResponse, "upstream sent malformed inputRequests", nil)
			}
		}
		answers := make(map[string]json.RawMessage, len(asks))
		for key, a := range asks {
			ans, rerr := g.askClient(ctx, s, rp, a.Method, a.Params)
			if rerr != nil {
				return nil, rerr
			}
			answers[key] = ans
		}
		set := map[string]json.RawMessage{}
		if len(answers) > 0 {
			set["inputResponses"], _ = json.Marshal(answers)
		}
		if st := rawjson.Member(res, "requestState"); len(st) > 0 {
			set["requestState"] = st
		}
		retry := *req
		if retry.Params, err = editMembers(req.Params, set, "inputResponses", "requestState"); err != nil {
			return nil, newRPCError(mcpwire.CodeInvalidParams, "invalid params: "+err.Error(), nil)
		}
		res, err = c.Call(ctx, &retry)
	}
	return res, err
}

// askClient sends one server-to-client request to a 2025-era client on the
// response stream of its pending POST (2025-11-25 basic/transports: the
// server MAY send requests related to the client's request on that stream)
// and waits for the client's response, which arrives as a POST on the
// session. The client must have declared the capability at initialize.
func (g *Gateway) askClient(ctx context.Context, s *session, rp *replier, method string, params json.RawMessage) (json.RawMessage, *rpcError) {
	need, known := inputCapability(method)
	if !known {
		return nil, newRPCError(mcpwire.CodeMethodNotFound, "input request method "+strconv.Quote(method)+" is not supported", nil)
	}
	if len(rawjson.Member(s.clientCaps, need)) == 0 {
		return nil, newRPCError(mcpwire.CodeMissingCapability, "the upstream needs the client capability "+strconv.Quote(need)+
			", which this client did not declare at initialize", map[string]any{"requiredCapabilities": map[string]any{need: map[string]any{}}})
	}
	if !rp.sseOK {
		return nil, newRPCError(mcpwire.CodeMissingCapability, "the upstream needs "+method+", which the gateway can only send on an event stream: the request's Accept header lacks text/event-stream", nil)
	}
	id := quoteJSON("mcpgw-" + strconv.FormatInt(g.mrtr.askSeq.Add(1), 10))
	ch := s.expect(id)
	defer s.forget(id)
	msg := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
	msg = append(msg, `,"method":`...)
	msg = append(msg, quoteJSON(method)...)
	if len(params) > 0 {
		msg = append(msg, `,"params":`...)
		msg = append(msg, params...)
	}
	rp.notify(append(msg, '}'))
	timer := time.NewTimer(g.mrtr.hold)
	defer timer.Stop()
	select {
	case resp := <-ch:
		if len(resp.Error) > 0 {
			var e rpcError
			_ = json.Unmarshal(resp.Error, &e)
			return nil, newRPCError(e.Code, "the client answered "+method+" with an error: "+e.Message, nil)
		}
		return resp.Result, nil
	case <-timer.C:
		return nil, newRPCError(mcpwire.CodeUpstreamTimeout, "the client did not answer "+method+" within "+g.mrtr.hold.String(), nil)
	case <-ctx.Done():
		return nil, newRPCError(mcpwire.CodeRequestCancelled, "request cancelled", nil)
	case <-s.closed:
		return nil, newRPCError(mcpwire.CodeRequestCancelled, "session closed", nil)
	}
}

// expect registers a pending server-to-client request of the session.
func (s *session) expect(id json.RawMessage) chan *message {
	ch := make(chan *message, 1)
	s.mu.Lock()
	if s.asks == nil {
		s.asks = make(map[string]chan *message)
	}
	s.asks[string(id)] = ch
	s.mu.Unlock()
	return ch
}

func (s *session) forget(id json.RawMessage) {
	s.mu.Lock()
	delete(s.asks, string(id))
	s.mu.Unlock()
}

// deliver hands a client's response to the request waiting for it. It
// reports false when none is (unknown id, or already timed out).
func (s *session) deliver(m *message) bool {
	s.mu.Lock()
	ch, ok := s.asks[string(m.ID)]
	delete(s.asks, string(m.ID))
	s.mu.Unlock()
	if ok {
		ch <- m
	}
	return ok
}

// --- held legacy upstream calls ---------------------------------------------

// heldCall is a session-era upstream call waiting for a modern client's
// answers to its server-to-client requests.
type heldCall struct {
	owner, upstream, name, method string

	asks    chan *pendingAsk // from the upstream's stream
	done    chan struct{}    // closed when the upstream call returned
	result  json.RawMessage
	err     error
	cancel  context.CancelFunc
	mu      sync.Mutex
	pending map[string]*pendingAsk // by inputRequests key, current round
	timer   *time.Timer
}

// pendingAsk is one upstream request awaiting the client's answer.
type pendingAsk struct {
	method string
	params json.RawMessage
	answer chan json.RawMessage // nil value: no answer
}

// holdCall starts a call to a session-era upstream detached from the
// client's HTTP request, so that it can outlive it while the client
// gathers input, and waits for its first event.
func (g *Gateway) holdCall(ctx context.Context, owner string, t *target, method string, c Upstream, req *upstream.Request) (json.RawMessage, error) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := &heldCall{
		owner: owner, upstream: t.upstream, name: t.name, method: method,
		asks: make(chan *pendingAsk), done: make(chan struct{}), cancel: cancel,
	}
	req.OnServerRequest = func(cctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
		a := &pendingAsk{method: method, params: params, answer: make(chan json.RawMessage, 1)}
		select {
		case h.asks <- a:
		case <-cctx.Done():
			return nil, cctx.Err()
		}
		select {
		case ans := <-a.answer:
			if ans == nil {
				return nil, &upstream.RPCError{Code: mcpwire.CodeInvalidParams, Message: "the client sent no response to " + method}
			}
			return ans, nil
		case <-cctx.Done():
			return nil, cctx.Err()
		}
	}
	go func() {
		h.result, h.err = c.Call(hctx, req)
		close(h.done)
	}()
	return g.awaitHeld(ctx, h)
}

// awaitHeld waits for the held call's next event: its result ends it; a
// server-to-client request parks it and becomes an input_required result.
func (g *Gateway) awaitHeld(ctx context.Context, h *heldCall) (json.RawMessage, error) {
	select {
	case <-h.done:
		h.cancel()
		return h.result, h.err
	case <-ctx.Done():
		// The client went away: release the upstream call, which sends
		// notifications/cancelled (2025-11-25 basic/utilities/cancellation).
		h.cancel()
		<-h.done
		return nil, ctx.Err()
	case a := <-h.asks:
		asks := []*pendingAsk{a}
		for more := true; more; {
			select {
			case b := <-h.asks:
				asks = append(asks, b)
			default:
				more = false
			}
		}
		h.mu.Lock()
		h.pending = make(map[string]*pendingAsk, len(asks))
		reqs := make(map[string]json.RawMessage, len(asks))
		for i, a := range asks {
			key := "r" + strconv.Itoa(i+1)
			h.pending[key] = a
			obj := map[string]json.RawMessage{"method": quoteJSON(a.method)}
			if len(a.params) > 0 {
				obj["params"] = a.params
			}
			reqs[key], _ = json.Marshal(obj)
		}
		h.mu.Unlock()
		var idb [16]byte
		_, _ = rand.Read(idb[:])
		id := hex.EncodeToString(idb[:])
		g.mrtr.held.Store(id, h)
		g.mrtr.nHeld.Add(1)
		h.timer = time.AfterFunc(g.mrtr.hold, func() {
			// Bound the wait: release the upstream call and its state.
			if g.mrtr.held.CompareAndDelete(id, h) {
				g.mrtr.nHeld.Add(-1)
				h.cancel()
			}
		})
		inputs, _ := json.Marshal(reqs)
		state := g.mrtr.sealState(&sealedState{Owner: h.owner, Upstream: h.upstream, Name: h.name, Method: h.method, Held: id})
		out, _ := json.Marshal(map[string]json.RawMessage{
			mcpwire.ResultTypeKey: quoteJSON(mcpwire.ResultInputRequired),
			"inputRequests":       inputs,
			"requestState":        state,
		})
		return out, nil
	}
}

// resumeHeld answers a held call's pending requests with a retry's
// inputResponses and waits for its next event. A held call is taken once.
func (g *Gateway) resumeHeld(ctx context.Context, id string, params json.RawMessage) (json.RawMessage, error) {
	v, ok := g.mrtr.held.LoadAndDelete(id)
	if !ok {
		return nil, newRPCError(mcpwire.CodeInputGone, "the upstream request this requestState names is no longer held: it timed out, was already answered, or is held by another gateway replica; call again without requestState",
			map[string]any{"reason": "not_held"})
	}
	g.mrtr.nHeld.Add(-1)
	h := v.(*heldCall) //nolint:errcheck,forcetypeassert // the map only holds *heldCall.
	if !h.timer.Stop() {
		// The hold expired as the retry took the call: the timer's own
		// cleanup finds it gone, so the upstream call is released here.
		h.cancel()
		return nil, newRPCError(mcpwire.CodeInputGone, "the held upstream request timed out", map[string]any{"reason": "timeout"})
	}
	var answers map[string]json.RawMessage
	if raw := rawjson.Member(params, "inputResponses"); len(raw) > 0 {
		if err := json.Unmarshal(raw, &answers); err != nil {
			h.cancel()
			return nil, newRPCError(mcpwire.CodeInvalidParams, "invalid inputResponses: "+err.Error(), nil)
		}
	}
	h.mu.Lock()
	for key, a := range h.pending {
		a.answer <- answers[key]
	}
	h.pending = nil
	h.mu.Unlock()
	return g.awaitHeld(ctx, h)
}
