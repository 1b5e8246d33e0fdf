package telemetry

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metrics are the instruments of mcpgw, named as in the metrics contract
// (METRICS.md; semconv names for the MCP histograms). A nil *Metrics records
// nothing, so callers need no checks beyond the ones they want for speed.
//
// The hot path records with pre-built options (metric.WithAttributeSet of a
// cached attribute.Set): see ServerAttributes and the callers' caches.
type Metrics struct {
	meter metric.Meter

	// ServerDuration is mcp.server.operation.duration: one MCP request
	// served downstream, in seconds.
	ServerDuration metric.Float64Histogram
	// ClientDuration is mcp.client.operation.duration: one request to an
	// upstream, in seconds.
	ClientDuration metric.Float64Histogram
	// Decisions is mcpgw.decisions: one per tools/call policy outcome.
	Decisions metric.Int64Counter

	reloads      metric.Int64Counter
	reloadOK     metric.AddOption
	reloadFailed metric.AddOption
	auditRefused metric.Int64Counter
	// contractChanges is mcpgw.tool_contract.changes.
	contractChanges metric.Int64Counter

	breakerState   metric.Int64ObservableGauge
	sessions       metric.Int64ObservableGauge
	catalogItems   metric.Int64ObservableGauge
	catalogDropped metric.Int64ObservableGauge
	catalogVersion metric.Int64ObservableGauge
	auditDepth     metric.Int64ObservableGauge
	killSwitches   metric.Int64ObservableGauge
}

// NewMetrics creates the instruments on meter.
func NewMetrics(meter metric.Meter) (*Metrics, error) {
	m := &Metrics{meter: meter}
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	m.ServerDuration, err = meter.Float64Histogram("mcp.server.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("MCP request duration as observed by the gateway serving hosts."),
		metric.WithExplicitBucketBoundaries(DurationBuckets()...))
	add(err)
	m.ClientDuration, err = meter.Float64Histogram("mcp.client.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("MCP request duration as observed by the gateway calling an upstream."),
		metric.WithExplicitBucketBoundaries(DurationBuckets()...))
	add(err)
	m.Decisions, err = meter.Int64Counter("mcpgw.decisions", metric.WithUnit("{call}"),
		metric.WithDescription("tools/call policy decisions by outcome and upstream."))
	add(err)
	m.reloads, err = meter.Int64Counter("mcpgw.config.reloads", metric.WithUnit("{reload}"),
		metric.WithDescription("Configuration reloads by result (ok, failed)."))
	add(err)
	m.auditRefused, err = meter.Int64Counter("mcpgw.audit.refused", metric.WithUnit("{record}"),
		metric.WithDescription("Calls refused or audit records not written because the audit sink is stuck or failing."))
	add(err)
	m.contractChanges, err = meter.Int64Counter("mcpgw.tool_contract.changes", metric.WithUnit("{change}"),
		metric.WithDescription("Tool contracts found to differ from their pin in the lock file, by upstream, tool and pinning mode (warn, enforce)."))
	add(err)
	m.breakerState, err = meter.Int64ObservableGauge("mcpgw.breaker.state",
		metric.WithDescription("Circuit breaker state per upstream and tool (tool empty for the upstream's own breaker): 1 for the current state, 0 otherwise."))
	add(err)
	m.sessions, err = meter.Int64ObservableGauge("mcpgw.sessions.active",
		metric.WithDescription("Open 2025-era sessions on this replica."))
	add(err)
	m.catalogItems, err = meter.Int64ObservableGauge("mcpgw.catalog.items",
		metric.WithDescription("Items of the merged catalog per upstream and kind."))
	add(err)
	m.catalogDropped, err = meter.Int64ObservableGauge("mcpgw.catalog.dropped",
		metric.WithDescription("Tools of an upstream the merged catalog leaves out, by reason (name_pattern, name_clash)."))
	add(err)
	m.catalogVersion, err = meter.Int64ObservableGauge("mcpgw.catalog.version",
		metric.WithDescription("Version of the published catalog snapshot."))
	add(err)
	m.auditDepth, err = meter.Int64ObservableGauge("mcpgw.audit.queue.depth",
		metric.WithDescription("Audit records waiting to be written."))
	add(err)
	m.killSwitches, err = meter.Int64ObservableGauge("mcpgw.killswitches.active",
		metric.WithDescription("Active kill switches by scope."))
	add(err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m.reloadOK = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "ok")))
	m.reloadFailed = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "failed")))
	return m, nil
}

// ConfigReload counts one configuration reload (mcpgw.config.reloads).
func (m *Metrics) ConfigReload(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.reloads.Add(context.Background(), 1, m.reloadOK)
		return
	}
	m.reloads.Add(context.Background(), 1, m.reloadFailed)
}

// AuditRefused counts a call refused, or a record not written, because the
// audit sink is stuck or failing (mcpgw.audit.refused).
func (m *Metrics) AuditRefused(ctx context.Context) {
	if m == nil {
		return
	}
	m.auditRefused.Add(ctx, 1)
}

// ToolContractChange counts one tool contract found to differ from its pin
// (mcpgw.tool_contract.changes): tool is the exposed name, mode the
// upstream's pinning mode. It is counted once per new contract, when the
// catalog loads it, not per call.
func (m *Metrics) ToolContractChange(ctx context.Context, upstream, tool, mode string) {
	if m == nil {
		return
	}
	m.contractChanges.Add(ctx, 1, metric.WithAttributes(Upstream.String(upstream), ContractTool.String(tool), PinningMode.String(mode)))
}

// Sources are the readings of the observable gauges, taken at each scrape.
// Any may be nil.
type Sources struct {
	// Breakers calls report with the state (closed, half_open or open) of
	// each breaker: an upstream's own (tool "") and its per-tool ones.
	Breakers func(report func(upstream, tool, state string))
	// Sessions returns the number of open sessions.
	Sessions func() int64
	// Catalog calls report with the item count per upstream and kind
	// (tools, resources, resource_templates, prompts).
	Catalog func(report func(upstream, kind string, n int64))
	// CatalogDropped calls report with the number of tools per upstream
	// the catalog left out, by reason (name_pattern, name_clash).
	CatalogDropped func(report func(upstream, reason string, n int64))
	// CatalogVersion returns the version of the published snapshot.
	CatalogVersion func() int64
	// AuditQueueDepth returns the records waiting in the audit queue.
	AuditQueueDepth func() int64
	// KillSwitches calls report with the number of active switches per
	// scope (global, upstream, tool).
	KillSwitches func(report func(scope string, n int64))
}

// Observe registers the gauges' readings. The returned function
// unregisters them (a gateway that closes, or is replaced).
func (m *Metrics) Observe(s Sources) (func() error, error) {
	if m == nil {
		return func() error { return nil }, nil
	}
	reg, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if s.Breakers != nil {
			s.Breakers(func(upstream, tool, state string) {
				for _, st := range [...]string{BreakerClosed, BreakerHalfOpen, BreakerOpen} {
					var v int64
					if st == state {
						v = 1
					}
					o.ObserveInt64(m.breakerState, v, metric.WithAttributes(Upstream.String(upstream), attribute.String("tool", tool), attribute.String("state", st)))
				}
			})
		}
		if s.Sessions != nil {
			o.ObserveInt64(m.sessions, s.Sessions())
		}
		if s.Catalog != nil {
			s.Catalog(func(upstream, kind string, n int64) {
				o.ObserveInt64(m.catalogItems, n, metric.WithAttributes(Upstream.String(upstream), attribute.String("kind", kind)))
			})
		}
		if s.CatalogDropped != nil {
			s.CatalogDropped(func(upstream, reason string, n int64) {
				o.ObserveInt64(m.catalogDropped, n, metric.WithAttributes(Upstream.String(upstream), attribute.String("reason", reason)))
			})
		}
		if s.CatalogVersion != nil {
			o.ObserveInt64(m.catalogVersion, s.CatalogVersion())
		}
		if s.AuditQueueDepth != nil {
			o.ObserveInt64(m.auditDepth, s.AuditQueueDepth())
		}
		if s.KillSwitches != nil {
			s.KillSwitches(func(scope string, n int64) {
				o.ObserveInt64(m.killSwitches, n, metric.WithAttributes(attribute.String("scope", scope)))
			})
		}
		return nil
	}, m.breakerState, m.sessions, m.catalogItems, m.catalogDropped, m.catalogVersion, m.auditDepth, m.killSwitches)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}
