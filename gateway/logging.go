package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// Logging across the eras (2025-11-25 server/utilities/logging). A 2025-era
// client sets its level with logging/setLevel on its session; a 2026-07-28
// client, which has no session, puts it in each request's _meta
// (mcpwire.MetaLogLevel). Every forwarded request carries its caller's
// level (upstream.Request.LogLevel): a 2026-07-28 upstream gets it in
// _meta, and a session-era HTTP upstream gets it by logging/setLevel on
// the caller's own pooled session (upstream/pool.go). An upstream whose
// one session carries every client's calls (stdio, legacy SSE) is set to
// the most verbose level any client asked for
// (upstream.Client.SetLogLevel). The replier of each call drops the
// messages below its client's level.

// leveler is an Upstream that takes a session log level; upstreams
// without one (the test fakes) have nothing to set.
type leveler interface {
	SetLogLevel(ctx context.Context, level string) error
}

// setLevel answers logging/setLevel on a session: the level is kept for
// the session's calls and passed on to every upstream.
func (g *Gateway) setLevel(w http.ResponseWriter, r *http.Request, s *session, m *message) {
	level, ok := rawjson.DecodeString(rawjson.Member(m.Params, "level"))
	if !ok || mcpwire.LogLevelRank(level) < 0 {
		writeJSON(w, http.StatusOK, appendError(nil, m.ID, newRPCError(mcpwire.CodeInvalidParams, "invalid log level", nil)))
		return
	}
	s.logLevel.Store(&level)
	rt := g.acquire()
	defer rt.release()
	for _, u := range rt.byName {
		g.setUpstreamLevel(r.Context(), u, level)
	}
	writeJSON(w, http.StatusOK, appendResult(nil, m.ID, json.RawMessage(emptyObject)))
}

// setUpstreamLevel passes a client's log level on to a session-era
// upstream; a failure is logged, never the client's.
func (g *Gateway) setUpstreamLevel(ctx context.Context, u Upstream, level string) {
	l, ok := u.(leveler)
	if !ok {
		return
	}
	if err := l.SetLogLevel(ctx, level); err != nil {
		g.log.DebugContext(ctx, "setting an upstream log level failed", slog.String("upstream", u.Name()), slog.Any("error", err))
	}
}

// clientLogLevel is the log level the client of a call asked for: its
// session's, or the request's _meta; "" when it asked for none.
func clientLogLevel(s *session, meta json.RawMessage) string {
	if s != nil {
		if l := s.logLevel.Load(); l != nil {
			return *l
		}
		return ""
	}
	if len(meta) == 0 {
		return ""
	}
	level, _ := rawjson.DecodeString(rawjson.Member(meta, mcpwire.MetaLogLevel))
	if mcpwire.LogLevelRank(level) < 0 {
		return ""
	}
	return level
}
