package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/gateway"
)

// pairUpstream is one upstream of TestEveryPairing: a real MCP server on
// a loopback port whose every HTTP request is recorded, and the events its
// tools report.
type pairUpstream struct {
	name     string // the upstream's name in the gateway
	resource string // the audience of the tokens exchanged for it
	era      string // the protocol version auto must choose for it
	rec      *recorder
	srv      *server
	sig      *signals
}

// signals are one-shot events shared by the upstream tools and the test,
// keyed by event and call marker ("started/…", "cancelled/…",
// "release/…"), so that parallel callers never see each other's events.
type signals struct {
	mu sync.Mutex
	m  map[string]*signal
}

type signal struct {
	c    chan struct{}
	once sync.Once
}

func newSignals() *signals { return &signals{m: map[string]*signal{}} }

func (s *signals) get(key string) *signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	sg, ok := s.m[key]
	if !ok {
		sg = &signal{c: make(chan struct{})}
		s.m[key] = sg
	}
	return sg
}

// ch returns the channel that closes when key fires.
func (s *signals) ch(key string) <-chan struct{} { return s.get(key).c }

// fire fires key; firing it again does nothing.
func (s *signals) fire(key string) {
	sg := s.get(key)
	sg.once.Do(func() { close(sg.c) })
}

// await waits for ch to close; the timeout only bounds a failing run.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		require.FailNow(t, "timed out waiting for "+what)
	}
}

// The three tools every pairing upstream serves, whatever its library;
// each takes a marker argument that names the call (pairing, principal,
// kind), so that the test can tell every upstream request apart.
//
//   - echo answers at once;
//   - progress reports progress with the caller's token, then answers only
//     once the test has seen that progress reach the caller (so a
//     notification sent just before the handler returns, which mcp-go
//     v1.2.1 can lose, never matters);
//   - hold blocks until its context ends (a cancellation) or the test
//     releases it at cleanup.
func pairProgressed(ctx context.Context, sig *signals, marker string) (string, error) {
	select {
	case <-sig.ch("release/" + marker):
		return "progressed " + marker, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func pairHold(ctx context.Context, sig *signals, marker string) (string, error) {
	sig.fire("started/" + marker)
	select {
	case <-ctx.Done():
		sig.fire("cancelled/" + marker)
		return "", ctx.Err()
	case <-sig.ch("release/" + marker):
		return "released " + marker, nil
	}
}

func pairReadme(up string) string { return "pair://" + up + "/readme" }

// pairMCPGoServer is an mcp-go v1.2.1 server with sessions; legacyOnly
// restricts it to the 2025 era (PITFALLS.md), otherwise it also serves
// 2026-07-28 through server/discover.
func pairMCPGoServer(up string, sig *signals, legacyOnly bool) http.Handler {
	srv := mcpserver.NewMCPServer("pair-"+up, "1.0.0",
		mcpserver.WithToolCapabilities(false), mcpserver.WithResourceCapabilities(false, false))
	tool := func(name string) mcp.Tool {
		return mcp.NewTool(name, mcp.WithDescription(name+" with a marker."), mcp.WithString("marker", mcp.Required()))
	}
	result := func(text string, err error) (*mcp.CallToolResult, error) {
		if err != nil {
			return nil, err
		}
		return mcp.NewToolResultText(text), nil
	}
	srv.AddTool(tool("echo"), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return result("echo "+req.GetString("marker", ""), nil)
	})
	srv.AddTool(tool("progress"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		marker := req.GetString("marker", "")
		if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
			return mcp.NewToolResultError("no progress token"), nil
		}
		if err := mcpserver.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/progress", map[string]any{
			"progressToken": req.Params.Meta.ProgressToken, "progress": 1, "total": 2, "message": marker,
		}); err != nil {
			return nil, err
		}
		return result(pairProgressed(ctx, sig, marker))
	})
	srv.AddTool(tool("hold"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return result(pairHold(ctx, sig, req.GetString("marker", "")))
	})
	srv.AddResource(mcp.NewResource(pairReadme(up), "readme", mcp.WithMIMEType("text/plain")),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "text/plain", Text: up}}, nil
		})
	var opts []mcpserver.StreamableHTTPOption
	if legacyOnly {
		opts = append(opts, mcpserver.WithStreamableHTTPProtocolVersions(mcp.LegacyProtocolVersions()...))
	}
	return mcpserver.NewStreamableHTTPServer(srv, opts...)
}

// pairSDKServer is a go-sdk v1.8.0 stateless server: the only way it
// serves 2026-07-28 over HTTP (PITFALLS.md). Its handlers' contexts end
// when the request does, which is how the 2026-07-28 era cancels.
func pairSDKServer(up string, sig *signals) http.Handler {
	srv := sdk.NewServer(&sdk.Implementation{Name: "pair-" + up, Version: "1.0.0"}, nil)
	schema := json.RawMessage(`{"type":"object","properties":{"marker":{"type":"string"}},"required":["marker"]}`)
	add := func(name string, h func(ctx context.Context, req *sdk.CallToolRequest, marker string) (string, error)) {
		srv.AddTool(&sdk.Tool{Name: name, Description: name + " with a marker.", InputSchema: schema},
			func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
				var in struct {
					Marker string `json:"marker"`
				}
				if err := json.Unmarshal(req.Params.Arguments, &in); err != nil {
					return nil, err
				}
				text, err := h(ctx, req, in.Marker)
				if err != nil {
					return nil, err
				}
				return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: text}}}, nil
			})
	}
	add("echo", func(_ context.Context, _ *sdk.CallToolRequest, marker string) (string, error) {
		return "echo " + marker, nil
	})
	add("progress", func(ctx context.Context, req *sdk.CallToolRequest, marker string) (string, error) {
		tok := req.Params.GetProgressToken()
		if tok == nil {
			return "", fmt.Errorf("no progress token")
		}
		if err := req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2, Message: marker}); err != nil {
			return "", err
		}
		return pairProgressed(ctx, sig, marker)
	})
	add("hold", func(ctx context.Context, _ *sdk.CallToolRequest, marker string) (string, error) {
		return pairHold(ctx, sig, marker)
	})
	srv.AddResource(&sdk.Resource{URI: pairReadme(up), Name: "readme", MIMEType: "text/plain"},
		func(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: up}}}, nil
		})
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv },
		&sdk.StreamableHTTPOptions{Stateless: true, PropagateRequestCancellation: true})
}

// sawCancel returns the recorder hook that fires "notified/<marker>" when
// a notifications/cancelled names the upstream request of a call with that
// marker.
func (up *pairUpstream) sawCancel() func(seen) {
	var mu sync.Mutex
	markers := map[string]string{} // upstream request id → marker
	return func(s seen) {
		r, err := decodePairRecord(s)
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch s.method {
		case "tools/call":
			markers[r.id] = r.marker
		case "notifications/cancelled":
			if m, ok := markers[r.cancel]; ok {
				up.sig.fire("notified/" + m)
			}
		}
	}
}

// pairClient is one principal's downstream client of one era: a 2025-era
// session (initialize, then Mcp-Session-Id), or 2026-07-28 requests that
// each stand alone.
type pairClient struct {
	t     *testing.T
	url   string
	era   string
	token string
	c     *rawClient // the 2025-era session
}

func newPairClient(t *testing.T, url, era, token string) *pairClient {
	t.Helper()
	p := &pairClient{t: t, url: url, era: era, token: token}
	if era == era2025 {
		p.c = newRawClient(t, url)
		p.c.header.Set("Authorization", "Bearer "+token)
		p.c.initialize()
	}
	return p
}

// params returns the params of a tools/call of tool with marker, asking
// for progress when progressToken is set; 2026-07-28 requests carry the
// protocol version and client capabilities in _meta too.
func (p *pairClient) params(tool, marker, progressToken string) string {
	var meta []string
	if progressToken != "" {
		meta = append(meta, fmt.Sprintf(`"progressToken":%q`, progressToken))
	}
	if p.era == era2026 {
		meta = append(meta, `"io.modelcontextprotocol/protocolVersion":"2026-07-28"`, `"io.modelcontextprotocol/clientCapabilities":{}`)
	}
	s := fmt.Sprintf(`{"name":%q,"arguments":{"marker":%q}`, tool, marker)
	if len(meta) > 0 {
		s += `,"_meta":{` + strings.Join(meta, ",") + `}`
	}
	return s + "}"
}

// request sends one request whose answer needs no streaming.
func (p *pairClient) request(method, name, params string) rpcResponse {
	p.t.Helper()
	if p.era == era2025 {
		return p.c.call(method, params)
	}
	if params == "{}" {
		params = "{" + modernMeta + "}"
	}
	status, r := newRawClient(p.t, p.url).modern(modernRequest{
		method: method, name: name,
		body:   fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":%s}`, method, params),
		header: map[string]string{"Authorization": "Bearer " + p.token},
	})
	require.Equal(p.t, http.StatusOK, status)
	return r
}

// pairStream is a tools/call whose answer is read as it streams: each
// event's data (or a JSON answer) arrives on events, which closes when the
// response ends.
type pairStream struct {
	events chan []byte
	cancel context.CancelFunc // closes the request
}

// open sends a tools/call with request id id and streams its answer.
func (p *pairClient) open(id int, tool, marker, progressToken string) *pairStream {
	p.t.Helper()
	ctx, cancel := context.WithCancel(p.t.Context())
	p.t.Cleanup(cancel)
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s}`, id, p.params(tool, marker, progressToken))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, strings.NewReader(body))
	require.NoError(p.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+p.token)
	if p.era == era2025 {
		req.Header.Set("Mcp-Session-Id", p.c.session)
	} else {
		req.Header.Set("Mcp-Protocol-Version", era2026)
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", tool)
	}
	s := &pairStream{events: make(chan []byte, 16), cancel: cancel}
	// Its own transport: closing this request must not touch another's
	// connection (PITFALLS.md, "http.DefaultTransport is shared").
	tr := &http.Transport{}
	go func() {
		defer close(s.events)
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		send := func(data []byte) bool {
			select {
			case s.events <- data:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			if data, err := io.ReadAll(resp.Body); err == nil && len(data) > 0 {
				send(data)
			}
			return
		}
		eachSSEData(resp.Body, send)
	}()
	return s
}

// pairMessage is any JSON-RPC message on a call's stream.
type pairMessage struct {
	rpcResponse
	Method string `json:"method"`
	Params struct {
		ProgressToken any    `json:"progressToken"`
		Message       string `json:"message"`
	} `json:"params"`
}

// next returns the next message of s; ok is false when s ended.
func (s *pairStream) next(t *testing.T) (m pairMessage, ok bool) {
	t.Helper()
	select {
	case data, open := <-s.events:
		if !open {
			return m, false
		}
		require.NoError(t, json.Unmarshal(data, &m), string(data))
		return m, true
	case <-time.After(20 * time.Second):
		require.FailNow(t, "timed out waiting for the call's stream")
		return m, false
	}
}

// pairText returns the text of a tools/call result.
func pairText(t *testing.T, r rpcResponse) string {
	t.Helper()
	require.Nil(t, r.Error, "%+v", r.Error)
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	require.NoError(t, json.Unmarshal(r.Result, &res), string(r.Result))
	require.NotEmpty(t, res.Content, string(r.Result))
	require.False(t, res.IsError, string(r.Result))
	return res.Content[0].Text
}

// pairRecord is what the credential check reads of one upstream request.
type pairRecord struct {
	seen
	id     string // the JSON-RPC id, raw
	tool   string
	marker string
	cancel string // notifications/cancelled: the requestId, raw
}

// decodePairRecord reads s's body (none for GET and DELETE).
func decodePairRecord(s seen) (pairRecord, error) {
	r := pairRecord{seen: s}
	if len(s.body) == 0 {
		return r, nil
	}
	var env struct {
		ID     json.RawMessage `json:"id"`
		Params struct {
			Name      string `json:"name"`
			Arguments struct {
				Marker string `json:"marker"`
			} `json:"arguments"`
			RequestID json.RawMessage `json:"requestId"`
		} `json:"params"`
	}
	err := json.Unmarshal(s.body, &env)
	r.id, r.tool, r.marker, r.cancel = string(env.ID), env.Params.Name, env.Params.Arguments.Marker, string(env.Params.RequestID)
	return r, err
}

func pairRecords(t *testing.T, up *pairUpstream) []pairRecord {
	t.Helper()
	var out []pairRecord
	for _, s := range up.rec.all() {
		r, err := decodePairRecord(s)
		require.NoError(t, err, string(s.body))
		out = append(out, r)
	}
	return out
}

// TestEveryPairing is issue 15's acceptance test of era pairings: one
// gateway, OAuth on, every upstream with token exchange and
// protocol_version auto, against three real upstreams whose auto choice
// differs (a 2025-era-only mcp-go server with sessions; a go-sdk stateless
// server of 2026-07-28; an mcp-go server that offers both eras with
// sessions, which auto calls in pooled 2025-era sessions), driven by
// 2025-era session clients and 2026-07-28 clients of two principals at
// once. For each pairing calls,
// lists, progress and cancellation work, and every upstream request made
// for a principal's call carries a token exchanged for that principal
// (RFC 8693), never another's, never the downstream token, never the
// gateway's own.
func TestEveryPairing(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource),
		authntest.WithClient(authntest.Client{ID: gwClientID, Secret: gwClientSecret}))
	ups := []*pairUpstream{
		{name: "legacy", era: era2025},
		{name: "stateless", era: era2026},
		// auto keeps a session where the upstream issues one: pooled,
		// per-principal 2025-era sessions (docs/architecture.md).
		{name: "both", era: era2025},
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "auth:\n  resource: %q\n  issuers: [{issuer: %q}]\nupstreams:\n", resource, iss.URL())
	for _, up := range ups {
		up.resource = "https://" + up.name + ".internal.test/mcp"
		up.sig = newSignals()
		var h http.Handler
		switch up.name {
		case "legacy":
			h = pairMCPGoServer(up.name, up.sig, true)
		case "stateless":
			h = pairSDKServer(up.name, up.sig)
		default:
			h = pairMCPGoServer(up.name, up.sig, false)
		}
		up.rec = &recorder{next: h, check: issuedFor(iss, up.resource), saw: up.sawCancel()}
		up.srv = startServer(t, func() http.Handler { return up.rec })
		fmt.Fprintf(&cfg, "  - name: %s\n    http: {url: %q}\n    auth: {type: token_exchange, token_url: %q, client_id: %s, client_secret: {value: %s}, resource: %q}\n",
			up.name, up.srv.url(), iss.TokenURL(), gwClientID, gwClientSecret, up.resource)
	}
	g := startGateway(t, cfg.String(), true)

	tokens := map[string]string{}
	for _, sub := range []string{"alice", "bob"} {
		tokens[sub] = iss.Mint(map[string]any{"sub": sub, "scope": "mcp"})
	}

	t.Run("auto chose each upstream's era", func(t *testing.T) {
		got := map[string]string{}
		for _, st := range g.Upstreams() {
			got[st.Name] = st.ProtocolVersion
			wantEra := gateway.EraSession
			if st.ProtocolVersion == era2026 {
				wantEra = gateway.EraStateless
			}
			assert.Equal(t, wantEra, st.Era, st.Name)
		}
		for _, up := range ups {
			assert.Equal(t, up.era, got[up.name], up.name)
		}
	})

	eras := map[string]string{"2025": era2025, "2026": era2026}
	t.Run("pairings", func(t *testing.T) {
		for _, eraName := range []string{"2025", "2026"} {
			for _, up := range ups {
				t.Run(eraName+" client to "+up.name, func(t *testing.T) {
					t.Parallel()
					pairing(t, iss, g, up, eraName, eras[eraName], tokens)
				})
			}
		}
	})

	// The gateway's own traffic (discovery, initialize, lists, probes,
	// notification streams) may carry its own client credentials token;
	// everything else carries a principal's exchanged token. Either is
	// for the upstream's own audience, and the downstream token never
	// goes upstream (MCP security best practices, "Token Passthrough").
	t.Run("every upstream request", func(t *testing.T) {
		for _, up := range ups {
			all := up.rec.all()
			for _, s := range all {
				claims := bearerClaims(t, iss, s.header)
				assert.Equal(t, up.resource, claims["aud"], "%s: %q request", up.name, s.method)
				switch sub := claims["sub"]; sub {
				case gwClientID:
				case "alice", "bob":
					assert.Equal(t, map[string]any{"sub": gwClientID}, claims["act"], "%s: %q request", up.name, s.method)
				default:
					assert.Fail(t, "a token of no one here", "%s: %q request for %v", up.name, s.method, sub)
				}
			}
			assertNoPassthrough(t, all, tokens["alice"], tokens["bob"])
		}
	})
}

// pairing runs one downstream era against one upstream: both principals at
// once, then the check of every upstream request their calls made.
func pairing(t *testing.T, iss *authntest.Issuer, g *gw, up *pairUpstream, eraName, era string, tokens map[string]string) {
	t.Helper()
	prefix := eraName + "." + up.name + "."
	t.Run("principals", func(t *testing.T) {
		for _, sub := range []string{"alice", "bob"} {
			t.Run(sub, func(t *testing.T) {
				t.Parallel()
				principal(t, g, up, era, prefix+sub+".", tokens[sub])
			})
		}
	})

	t.Run("credential", func(t *testing.T) {
		recs := pairRecords(t, up)
		calls := map[string]string{} // upstream request id → principal, for the calls of this pairing
		kinds := map[string]int{}
		for _, r := range recs {
			rest, ok := strings.CutPrefix(r.marker, prefix)
			if r.method != "tools/call" || !ok {
				continue
			}
			sub, kind, _ := strings.Cut(rest, ".")
			assert.Equal(t, kind, r.tool, "the upstream's own name of the tool")
			calls[r.id] = sub
			kinds[sub+"."+kind]++
			claims := bearerClaims(t, iss, r.header)
			assert.Equal(t, sub, claims["sub"], "%s: the caller's exchanged token", r.marker)
			assert.Equal(t, map[string]any{"sub": gwClientID}, claims["act"], "%s: the gateway acts for the caller", r.marker)
			assert.Equal(t, up.resource, claims["aud"], r.marker)
			assert.Equal(t, up.era, r.header.Get("Mcp-Protocol-Version"), "%s: the era auto chose", r.marker)
			assert.Equal(t, up.era == era2025, r.header.Get("Mcp-Session-Id") != "", "%s: a session exactly in the 2025 era", r.marker)
		}
		for _, sub := range []string{"alice", "bob"} {
			for _, kind := range []string{"echo", "progress", "hold"} {
				assert.Positive(t, kinds[sub+"."+kind], "no %s call of %s reached %s", kind, sub, up.name)
			}
		}
		cancels := 0
		for _, r := range recs {
			sub, ok := calls[r.cancel]
			if r.method != "notifications/cancelled" || !ok {
				continue
			}
			cancels++
			// The cancellation is made for the caller as much as the
			// call was.
			assert.Equal(t, sub, bearerClaims(t, iss, r.header)["sub"], "notifications/cancelled of %s's call", sub)
		}
		if up.era == era2025 {
			// 2025-11-25 basic/utilities/cancellation: the session era
			// cancels with a notification naming the request.
			assert.Equal(t, 2, cancels, "one notifications/cancelled per principal")
		} else {
			// 2026-07-28 basic/transports/streamable-http, Cancellation:
			// closing the request is the cancellation.
			assert.Zero(t, cancels)
		}
	})
}

// principal runs one principal's calls of one pairing; every marker starts
// with prefix.
func principal(t *testing.T, g *gw, up *pairUpstream, era, prefix, token string) {
	t.Helper()
	p := newPairClient(t, g.url, era, token)
	tool := func(name string) string { return up.name + "__" + name }

	t.Run("calls", func(t *testing.T) {
		marker := prefix + "echo"
		r := p.request("tools/call", tool("echo"), p.params(tool("echo"), marker, ""))
		assert.Equal(t, "echo "+marker, pairText(t, r))
	})

	t.Run("lists", func(t *testing.T) {
		// Both are answered from the gateway's merged catalog.
		var tools struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		}
		r := p.request("tools/list", "", "{}")
		require.Nil(t, r.Error, "%+v", r.Error)
		require.NoError(t, json.Unmarshal(r.Result, &tools))
		var names []string
		for _, tl := range tools.Tools {
			names = append(names, tl.Name)
		}
		assert.Subset(t, names, []string{tool("echo"), tool("progress"), tool("hold")})

		var resources struct {
			Resources []struct {
				URI string `json:"uri"`
			} `json:"resources"`
		}
		r = p.request("resources/list", "", "{}")
		require.Nil(t, r.Error, "%+v", r.Error)
		require.NoError(t, json.Unmarshal(r.Result, &resources))
		var uris []string
		for _, res := range resources.Resources {
			uris = append(uris, res.URI)
		}
		assert.Contains(t, uris, pairReadme(up.name))
	})

	t.Run("progress", func(t *testing.T) {
		marker := prefix + "progress"
		s := p.open(1001, tool("progress"), marker, "tok-"+marker)
		m, ok := s.next(t)
		require.True(t, ok, "the stream ended before any progress")
		// The upstream answers only after this progress reached us, so it
		// comes first: on the POST's own stream in both eras (2025-11-25
		// and 2026-07-28 basic/utilities/progress), with the caller's own
		// progress token, whatever token the gateway used upstream.
		require.Equal(t, "notifications/progress", m.Method, "%+v", m)
		assert.Equal(t, "tok-"+marker, m.Params.ProgressToken)
		assert.Equal(t, marker, m.Params.Message)
		up.sig.fire("release/" + marker)
		for {
			m, ok = s.next(t)
			require.True(t, ok, "the stream ended without an answer")
			if m.Method == "" {
				break
			}
		}
		assert.JSONEq(t, "1001", string(m.ID))
		assert.Equal(t, "progressed "+marker, pairText(t, m.rpcResponse))
	})

	t.Run("cancellation", func(t *testing.T) {
		marker := prefix + "hold"
		t.Cleanup(func() { up.sig.fire("release/" + marker) })
		s := p.open(1002, tool("hold"), marker, "")
		await(t, up.sig.ch("started/"+marker), "the call to reach the upstream")
		if era == era2025 {
			// 2025-11-25 basic/utilities/cancellation.
			resp, body := p.c.post(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1002,"reason":"changed my mind"}}`)
			require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
		} else {
			// 2026-07-28 basic/transports/streamable-http, Cancellation:
			// the client closes the request.
			s.cancel()
		}
		await(t, up.sig.ch("cancelled/"+marker), "the upstream to see the cancellation")
		if up.era == era2025 {
			// The handler's context may end first, when the gateway
			// closes the call's stream; the notification names the
			// request all the same.
			await(t, up.sig.ch("notified/"+marker), "notifications/cancelled to reach the upstream")
		}
		if era == era2025 {
			// The session's POST ends; whatever it carried last is no
			// result of the abandoned call.
			for {
				m, ok := s.next(t)
				if !ok {
					break
				}
				assert.Nil(t, m.Result, "a result of a cancelled call: %s", m.Result)
			}
		}
		s.cancel()
	})
}
