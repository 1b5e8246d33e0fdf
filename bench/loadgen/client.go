package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// Protocol versions the load generator speaks.
const (
	// VersionSession is the initialize-era version it asks for.
	VersionSession = "2025-11-25"
	// VersionStateless is the stateless era (no initialize, no session).
	VersionStateless = "2026-07-28"
)

// Era names accepted by Config.Era.
const (
	Era2025 = "2025"
	Era2026 = "2026"
)

// Header values and the _meta of every request, set without allocating on
// each of the load generator's requests; never written.
//
//nolint:gochecknoglobals // read-only values shared by every request of the load generator.
var (
	hdrContentType = []string{"application/json"}
	hdrAccept      = []string{"application/json, text/event-stream"}
	hdrStateless   = []string{VersionStateless}
	hdrMethodCall  = []string{mcpwire.MethodToolsCall}
	hdrMethodList  = []string{mcpwire.MethodToolsList}
	hdrMethodPing  = []string{mcpwire.MethodPing}

	// metaStateless is the params._meta of every 2026-07-28 request.
	metaStateless = []byte(`"_meta":{"io.modelcontextprotocol/protocolVersion":"` + VersionStateless +
		`","io.modelcontextprotocol/clientCapabilities":{}}`)
)

// Client is one MCP client over Streamable HTTP: in the 2025 era it holds
// its own session; in the 2026 era every request stands alone. It is not
// safe for concurrent use; the load generator gives each worker one.
type Client struct {
	url       string
	rt        http.RoundTripper
	stateless bool
	sessionID []string // header value, once initialized
	version   []string // negotiated MCP-Protocol-Version header value
	nextID    int64
	buf       []byte
	extra     http.Header // sent on every request
}

// NewClient returns a client of the given era (Era2025 or Era2026) for the
// MCP endpoint url, sending through rt. It does not connect; see Open.
func NewClient(url, era string, rt http.RoundTripper) (*Client, error) {
	if era != Era2025 && era != Era2026 {
		return nil, fmt.Errorf("era must be %s or %s, not %q", Era2025, Era2026, era)
	}
	return &Client{url: url, rt: rt, stateless: era == Era2026, buf: make([]byte, 0, 8192)}, nil
}

// SetHeader makes the client send h's headers on every request (say
// Authorization: Bearer …). Headers the protocol needs (Content-Type,
// Accept, the MCP headers) are set by the client and win over h. h is not
// copied and must not change afterwards.
func (c *Client) SetHeader(h http.Header) { c.extra = h }

// SessionID returns the session id the server issued ("" before Open or in
// the stateless era).
func (c *Client) SessionID() string {
	if len(c.sessionID) == 0 {
		return ""
	}
	return c.sessionID[0]
}

// Open performs the initialize handshake in the 2025 era (initialize, then
// notifications/initialized); in the 2026 era it does nothing.
func (c *Client) Open(ctx context.Context) error {
	if c.stateless {
		return nil
	}
	params := []byte(`{"protocolVersion":"` + VersionSession + `","capabilities":{},"clientInfo":{"name":"mcpgw-bench-load","version":"1.0.0"}}`)
	res, hdr, _, err := c.roundTrip(ctx, "initialize", "", params)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	version, ok := rawjson.DecodeString(rawjson.Member(res, "protocolVersion"))
	if !ok || version == "" {
		return errors.New("initialize result: no protocolVersion")
	}
	c.version = []string{version}
	if sid := hdr.Get("Mcp-Session-Id"); sid != "" {
		c.sessionID = []string{sid}
	}
	if err := c.notify(ctx, "notifications/initialized"); err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	return nil
}

// Call sends tools/call with the raw JSON arguments and returns the raw
// result (valid until the next request) and the time from sending the
// request to having read the whole response.
func (c *Client) Call(ctx context.Context, tool string, args []byte) ([]byte, time.Duration, error) {
	params := make([]byte, 0, len(tool)+len(args)+len(metaStateless)+32)
	params = append(params, `{"name":`...)
	params = strconv.AppendQuote(params, tool)
	if len(args) > 0 {
		params = append(params, `,"arguments":`...)
		params = append(params, args...)
	}
	params = c.closeParams(params)
	res, _, d, err := c.roundTrip(ctx, mcpwire.MethodToolsCall, tool, params)
	if err != nil {
		return nil, d, err
	}
	var isErr []byte
	err = rawjson.EachMember(res, func(k, v []byte) bool {
		if string(k) == `"isError"` {
			isErr = v
		}
		return true
	})
	if err != nil {
		return nil, d, fmt.Errorf("tools/call result: %w", err)
	}
	if rawjson.IsTrue(isErr) {
		return nil, d, fmt.Errorf("tools/call result has isError: true: %s", clip(res))
	}
	return res, d, nil
}

// ListTools follows tools/list cursors to the end and returns the number of
// tools and pages, and the summed time of the requests.
func (c *Client) ListTools(ctx context.Context) (tools, pages int, d time.Duration, err error) {
	cursor := ""
	for {
		params := []byte{'{'}
		if cursor != "" {
			params = append(params, `"cursor":`...)
			params = strconv.AppendQuote(params, cursor)
		}
		params = c.closeParams(params)
		res, _, pd, err := c.roundTrip(ctx, "tools/list", "", params)
		d += pd
		if err != nil {
			return tools, pages, d, err
		}
		pages++
		var next, list []byte
		ferr := rawjson.EachMember(res, func(k, v []byte) bool {
			switch string(k) {
			case `"tools"`:
				list = v
			case `"nextCursor"`:
				next = v
			}
			return true
		})
		if ferr == nil && list == nil {
			ferr = errors.New("no tools member")
		}
		if ferr == nil {
			ferr = rawjson.EachElement(list, func([]byte) bool { tools++; return true })
		}
		if ferr != nil {
			return tools, pages, d, fmt.Errorf("tools/list result: %w", ferr)
		}
		if rawjson.IsNull(next) {
			return tools, pages, d, nil
		}
		s, ok := rawjson.DecodeString(next)
		if !ok {
			return tools, pages, d, errors.New("tools/list result: nextCursor is not a string")
		}
		if s == "" {
			return tools, pages, d, nil
		}
		if pages > 10000 {
			return tools, pages, d, errors.New("tools/list: more than 10000 pages")
		}
		cursor = s
	}
}

// Ping sends ping and checks that it is answered.
func (c *Client) Ping(ctx context.Context) error {
	params := c.closeParams([]byte{'{'})
	_, _, _, err := c.roundTrip(ctx, "ping", "", params)
	return err
}

// closeParams ends a params object begun by the caller, adding the
// stateless era's _meta.
func (c *Client) closeParams(p []byte) []byte {
	if c.stateless {
		if p[len(p)-1] != '{' {
			p = append(p, ',')
		}
		p = append(p, metaStateless...)
	}
	return append(p, '}')
}

func (c *Client) headers(method, name string) http.Header {
	h := make(http.Header, 6+len(c.extra))
	maps.Copy(h, c.extra)
	h["Content-Type"] = hdrContentType
	h["Accept"] = hdrAccept
	if c.stateless {
		h["Mcp-Protocol-Version"] = hdrStateless
		switch method {
		case mcpwire.MethodToolsCall:
			h["Mcp-Method"] = hdrMethodCall
		case "tools/list":
			h["Mcp-Method"] = hdrMethodList
		case "ping":
			h["Mcp-Method"] = hdrMethodPing
		default:
			h["Mcp-Method"] = []string{method}
		}
		if name != "" {
			h["Mcp-Name"] = []string{name}
		}
		return h
	}
	if c.version != nil {
		h["Mcp-Protocol-Version"] = c.version
	}
	if c.sessionID != nil {
		h["Mcp-Session-Id"] = c.sessionID
	}
	return h
}

func (c *Client) notify(ctx context.Context, method string) error {
	body := []byte(`{"jsonrpc":"2.0","method":"` + method + `"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = c.headers(method, "")
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// roundTrip sends one request and validates the response envelope: HTTP
// 200, JSON (or the last data event of an SSE stream), the id sent back, no
// error member, a result. It returns the raw result, the response headers
// and the time to the last byte of the response.
func (c *Client) roundTrip(ctx context.Context, method, name string, params []byte) ([]byte, http.Header, time.Duration, error) {
	c.nextID++
	id := c.nextID
	body := make([]byte, 0, len(params)+64)
	body = append(body, `{"jsonrpc":"2.0","id":`...)
	body = strconv.AppendInt(body, id, 10)
	body = append(body, `,"method":"`...)
	body = append(body, method...)
	body = append(body, `","params":`...)
	body = append(body, params...)
	body = append(body, '}')

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, 0, err
	}
	req.Header = c.headers(method, name)
	start := time.Now()
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return nil, nil, time.Since(start), err
	}
	c.buf, err = readAll(resp.Body, c.buf[:0])
	_ = resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return nil, nil, d, fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, d, fmt.Errorf("HTTP %d: %s", resp.StatusCode, clip(c.buf))
	}
	msg := c.buf
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if msg = lastSSEData(c.buf); msg == nil {
			return nil, nil, d, errors.New("SSE response without a data event")
		}
	}
	var gotID, rpcErr, result []byte
	// Names are compared raw, quotes included: the servers measured do not
	// escape them.
	err = rawjson.EachMember(msg, func(k, v []byte) bool {
		switch string(k) {
		case `"id"`:
			gotID = v
		case `"error"`:
			rpcErr = v
		case `"result"`:
			result = v
		}
		return true
	})
	if err != nil {
		return nil, nil, d, fmt.Errorf("response: %w: %s", err, clip(msg))
	}
	if !rawjson.IsNull(rpcErr) {
		return nil, nil, d, fmt.Errorf("JSON-RPC error: %s", clip(rpcErr))
	}
	var idb [20]byte
	if want := strconv.AppendInt(idb[:0], id, 10); !bytes.Equal(gotID, want) {
		return nil, nil, d, fmt.Errorf("response id %s, want %s", clip(gotID), want)
	}
	if result == nil {
		return nil, nil, d, errors.New("response without result")
	}
	return result, resp.Header, d, nil
}

// lastSSEData returns the data of the last event in an SSE stream that has
// data, with multi-line data joined by newlines.
func lastSSEData(b []byte) []byte {
	var last, cur []byte
	hasCur := false
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 { // End of an event.
			if hasCur {
				last, cur, hasCur = cur, nil, false
			}
			continue
		}
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			data = bytes.TrimPrefix(data, []byte{' '})
			if hasCur {
				cur = append(cur, '\n')
			}
			cur = append(cur, data...)
			hasCur = true
		}
	}
	if hasCur {
		last = cur
	}
	return last
}

func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// clip shortens b for an error message.
func clip(b []byte) string {
	const n = 300
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
