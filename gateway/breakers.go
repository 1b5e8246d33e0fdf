package gateway

import (
	"context"
	"log/slog"

	"github.com/mcpgw/mcpgw/telemetry/audit"
	"github.com/mcpgw/mcpgw/upstream"
)

// breakerChanged logs and audits one state change of an upstream's circuit
// breaker (tool is "" for the upstream's own breaker): an opening is a
// warning, the rest are informational. It runs on the goroutine of the
// call or reconnect that caused the change, so it only queues the record.
func (g *Gateway) breakerChanged(up, tool, from, to string) {
	scope := "upstream"
	if tool != "" {
		scope = "tool"
	}
	level := slog.LevelInfo
	if to == upstream.BreakerOpen {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	g.log.Log(ctx, level, "circuit breaker changed state", slog.String("upstream", up), slog.String("scope", scope),
		slog.String("tool", tool), slog.String("from", from), slog.String("to", to))
	rec := &audit.Record{
		Time: g.now(), Event: audit.EventBreaker, Target: up, Scope: scope, UpstreamTool: tool,
		Upstream: up, Action: to, Detail: map[string]string{"from": from},
	}
	if err := g.controls.audit.Log(ctx, rec); err != nil {
		g.auditRefused(ctx)
		g.log.Error("audit record not written", slog.String("event", string(rec.Event)), slog.String("upstream", up), slog.Any("error", err))
	}
}
