package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// discover lists what s offers. Only the features the upstream's
// capabilities advertise are listed; an upstream that answers a list with
// "method not found" (mcpwire.CodeMethodNotFound) offers an empty list.
func (c *Client) discover(ctx context.Context, s *session) (*Catalog, error) {
	cat := &Catalog{
		ServerInfo:      s.info.serverInfo,
		Capabilities:    s.info.capabilities,
		Instructions:    s.info.instructions,
		ProtocolVersion: s.version,
		Stateless:       s.modern,
	}
	var err error
	if s.caps.tools {
		if cat.Tools, err = c.listAll(ctx, s, mcpwire.MethodToolsList, "tools"); err != nil {
			return nil, err
		}
		if hc, ok := s.conn.(*httpConn); ok && hc.modern {
			cat.Tools = hc.setToolHeaders(cat.Tools)
		}
	}
	if s.caps.resources {
		if cat.Resources, err = c.listAll(ctx, s, mcpwire.MethodResourcesList, "resources"); err != nil {
			return nil, err
		}
		if cat.ResourceTemplates, err = c.listAll(ctx, s, mcpwire.MethodTemplatesList, "resourceTemplates"); err != nil {
			return nil, err
		}
	}
	if s.caps.prompts {
		if cat.Prompts, err = c.listAll(ctx, s, mcpwire.MethodPromptsList, "prompts"); err != nil {
			return nil, err
		}
	}
	if hc, ok := s.conn.(*httpConn); ok {
		cat.Streams = hc.listsStream.Load()
	}
	return cat, nil
}

// listAll follows nextCursor to the end of one list and returns its
// elements byte for byte (json.RawMessage keeps each element's bytes; the
// typed mcp-go list would drop oneOf, $schema and more, see PITFALLS.md).
func (c *Client) listAll(ctx context.Context, s *session, method, field string) ([]json.RawMessage, error) {
	var (
		items  []json.RawMessage
		cursor string
		seen   = map[string]bool{}
	)
	for page := 0; ; page++ {
		if page == maxListPages {
			return nil, c.fail(ErrBadResponse, fmt.Sprintf("%s: more than %d pages", method, maxListPages), nil)
		}
		res, err := c.rpc(ctx, s, method, cursorParams(cursor))
		if err != nil {
			var rpcErr *RPCError
			if errors.As(err, &rpcErr) && rpcErr.Code == mcpwire.CodeMethodNotFound && page == 0 {
				return nil, nil
			}
			return nil, c.wrap(method, err)
		}
		pageItems, next, err := listPage(res, field)
		if err != nil {
			return nil, c.fail(ErrBadResponse, method+" result", err)
		}
		items = append(items, pageItems...)
		if next == nil || *next == "" {
			return items, nil
		}
		cursor = *next
		if seen[cursor] {
			return nil, c.fail(ErrBadResponse, method+": nextCursor repeats", nil)
		}
		seen[cursor] = true
	}
}

// cursorParams are the params of a list request for the page cursor
// names; nil for the first page.
func cursorParams(cursor string) []byte {
	if cursor == "" {
		return nil
	}
	params := rawjson.AppendString([]byte(`{"cursor":`), cursor)
	return append(params, '}')
}

// listPage reads one page of a list result: the items of field and the
// next cursor (nil on the last page).
func listPage(res []byte, field string) (items []json.RawMessage, next *string, err error) {
	var perr error
	err = rawjson.EachMember(res, func(k, v []byte) bool {
		switch {
		case rawjson.IsNull(v):
		case rawjson.StringIs(k, field):
			perr = json.Unmarshal(v, &items)
		case rawjson.StringIs(k, "nextCursor"):
			cur, ok := rawjson.DecodeString(v)
			if !ok {
				perr = errors.New("nextCursor is not a string")
			}
			next = &cur
		}
		return perr == nil
	})
	if err == nil {
		err = perr
	}
	return items, next, err
}

// equal reports whether two catalogs hold the same bytes.
func (a *Catalog) equal(b *Catalog) bool {
	eq := func(x, y []json.RawMessage) bool {
		return slices.EqualFunc(x, y, func(p, q json.RawMessage) bool { return bytes.Equal(p, q) })
	}
	return a.ProtocolVersion == b.ProtocolVersion && a.Stateless == b.Stateless && a.Streams == b.Streams &&
		a.Instructions == b.Instructions &&
		bytes.Equal(a.ServerInfo, b.ServerInfo) && bytes.Equal(a.Capabilities, b.Capabilities) &&
		eq(a.Tools, b.Tools) && eq(a.Resources, b.Resources) &&
		eq(a.ResourceTemplates, b.ResourceTemplates) && eq(a.Prompts, b.Prompts)
}

// parseInitializeResult reads an InitializeResult.
func parseInitializeResult(res []byte) (version string, hs handshake, err error) {
	var w struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ServerInfo      json.RawMessage `json:"serverInfo"`
		Instructions    string          `json:"instructions"`
	}
	if err := json.Unmarshal(res, &w); err != nil {
		return "", hs, err
	}
	if !slices.Contains(mcpwire.LegacyVersions(), w.ProtocolVersion) {
		return "", hs, fmt.Errorf("upstream negotiated unsupported protocol version %q", w.ProtocolVersion)
	}
	hs = handshake{serverInfo: nonNull(w.ServerInfo), capabilities: nonNull(w.Capabilities), instructions: w.Instructions}
	if hs.capabilities == nil {
		hs.capabilities = json.RawMessage("{}")
	}
	return w.ProtocolVersion, hs, nil
}

// discoverResult is a DiscoverResult (2026-07-28 server/discover).
type discoverResult struct {
	supported []string
	hs        handshake
}

// parseDiscoverResult reads a DiscoverResult. The server identifies itself
// in result._meta["io.modelcontextprotocol/serverInfo"] (mcp-go, go-sdk) or,
// as in the spec's example, in result.serverInfo.
func parseDiscoverResult(res []byte) (discoverResult, error) {
	var w struct {
		SupportedVersions []string                   `json:"supportedVersions"`
		Capabilities      json.RawMessage            `json:"capabilities"`
		ServerInfo        json.RawMessage            `json:"serverInfo"`
		Instructions      string                     `json:"instructions"`
		Meta              map[string]json.RawMessage `json:"_meta"`
	}
	if err := json.Unmarshal(res, &w); err != nil {
		return discoverResult{}, err
	}
	d := discoverResult{supported: w.SupportedVersions}
	d.hs = handshake{serverInfo: nonNull(w.ServerInfo), capabilities: nonNull(w.Capabilities), instructions: w.Instructions}
	if d.hs.serverInfo == nil {
		d.hs.serverInfo = nonNull(w.Meta[mcpwire.MetaServerInfo])
	}
	if d.hs.capabilities == nil {
		d.hs.capabilities = json.RawMessage("{}")
	}
	return d, nil
}

// supportedFromError reads data.supported of an UnsupportedProtocolVersion
// error (mcpwire.CodeUnsupportedVersion).
func supportedFromError(e *RPCError) []string {
	var w struct {
		Supported []string `json:"supported"`
	}
	_ = json.Unmarshal(e.Data, &w)
	return w.Supported
}

// bestLegacy picks the newest initialize-era version in offered, or the
// latest one when offered names none.
func bestLegacy(offered []string) string {
	for _, v := range mcpwire.LegacyVersions() {
		if slices.Contains(offered, v) {
			return v
		}
	}
	return mcpwire.Version20251125
}

func nonNull(raw json.RawMessage) json.RawMessage {
	if rawjson.IsNull(raw) {
		return nil
	}
	return raw
}
