package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/telemetry/audit"
)

// reloadWait bounds how long a reload waits for the upstreams it connects
// to list their catalogs before it swaps anyway (their tools then appear
// when they load, as at start).
const reloadWait = 10 * time.Second

// reloadCounts counts reloads by result.
type reloadCounts struct {
	applied, rejected atomic.Uint64
}

// ReloadCounts returns how many reloads were applied and rejected.
func (g *Gateway) ReloadCounts() (applied, rejected uint64) {
	return g.reloads.applied.Load(), g.reloads.rejected.Load()
}

// ErrRestartRequired marks a reload that changed settings only a restart
// applies. The rest of the new configuration is applied.
var ErrRestartRequired = errors.New("needs a restart to apply")

// ReloadFile loads, validates and applies the configuration file at path:
// the same loading and validation as `mcpgw validate`. A file that does
// not load or validate changes nothing.
func (g *Gateway) ReloadFile(ctx context.Context, path string) error {
	// Read once and parse those bytes (configs.Load is ReadFile + Parse),
	// so the audit record's hash is of the configuration applied.
	raw, err := os.ReadFile(path)
	if err != nil {
		err = fmt.Errorf("reading config: %w", err)
		g.reloadRejected(ctx, path, nil, err)
		return err
	}
	cfg, err := configs.Parse(raw)
	if err != nil {
		g.reloadRejected(ctx, path, raw, err)
		return err
	}
	return g.reload(ctx, cfg, path, raw)
}

// Reload applies cfg: it builds a new runtime (upstream pool, catalog,
// required scopes, rate limits) beside the current one, taking over the
// upstream clients whose configuration is unchanged; connects the new
// upstreams and waits (bounded) for their catalogs; swaps atomically; then
// lets the calls on the old runtime finish before closing what it alone
// used. Sessions, kill switches, drains and the audit stream are not
// configuration and carry over. A configuration that does not validate or
// build changes nothing.
//
// Settings read once at start (server, auth, redis, audit, kill-switch
// storage, log) are not applied; a change to them is logged and reported
// with ErrRestartRequired, and everything else is applied.
func (g *Gateway) Reload(ctx context.Context, cfg *configs.Config) error {
	return g.reload(ctx, cfg, "", nil)
}

func (g *Gateway) reload(ctx context.Context, cfg *configs.Config, path string, raw []byte) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	if g.draining.Load() {
		err := errors.New("gateway is shutting down")
		g.reloadRejected(ctx, path, raw, err)
		return err
	}
	if err := cfg.Validate(); err != nil {
		g.reloadRejected(ctx, path, raw, err)
		return err
	}
	old := g.rt.Load()
	if path != "" {
		g.configPath = path // the lock file's default place is beside it
	}
	rt, err := newRuntime(cfg, g.runtimeDeps(cfg, old))
	if err != nil {
		g.reloadRejected(ctx, path, raw, err)
		return err
	}
	rt.startClients()
	g.waitLoaded(ctx, rt)
	rt.rebuild()

	g.rt.Store(rt)
	old.stopLoop()
	old.retiring.Store(true)
	rt.startLoop()
	// The new runtime's first snapshot was built before the swap; tell
	// sessions and listeners what changed against the old one.
	if prev, cur := old.snapshot(), rt.snapshot(); prev != nil && cur != nil && prev != cur {
		g.catalogChanged(prev, cur)
	}

	// Restart-only sections are compared with what the process runs, the
	// configuration it started with, not with the previous reload's.
	restart := restartOnly(g.cfg, cfg)
	g.reloads.applied.Add(1)
	g.tel.Metrics().ConfigReload(true)
	g.auditReload(ctx, "applied", path, raw, cfg, restart, nil)
	g.log.InfoContext(ctx, "configuration reloaded", slog.String("path", path),
		slog.Int("upstreams", len(cfg.Upstreams)), slog.Int("connected", len(rt.fresh)),
		slog.Int("kept", len(rt.clients)-len(rt.fresh)), slog.Uint64("catalog_version", rt.snapshot().Version()))

	// Retire the old runtime in the background: its calls finish on the
	// clients they started with, bounded by the shutdown timeout.
	keep := make(map[Upstream]bool, len(rt.clients))
	for _, c := range rt.clients {
		keep[c] = true
	}
	g.wg.Go(func() { g.retire(old, keep) })

	if len(restart) > 0 {
		g.log.WarnContext(ctx, "configuration changes that need a restart were not applied",
			slog.String("sections", strings.Join(restart, ",")))
		return fmt.Errorf("%s: %w", strings.Join(restart, ", "), ErrRestartRequired)
	}
	return nil
}

// waitLoaded waits until every upstream the runtime connected has listed
// its catalog, or reloadWait passes, so that a changed upstream's tools do
// not blink out of the catalog across the swap.
func (g *Gateway) waitLoaded(ctx context.Context, rt *runtime) {
	if len(rt.fresh) == 0 {
		return
	}
	deadline := time.NewTimer(reloadWait)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pending := 0
		for _, c := range rt.fresh {
			if cat, _ := c.Catalog(); !settled(c, cat) {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-g.stop:
			return
		case <-deadline.C:
			g.log.WarnContext(ctx, "reload: upstreams not loaded yet; swapping anyway", slog.Int("pending", pending))
			return
		case <-tick.C:
		}
	}
}

// retire waits for the calls still holding old, then closes the upstream
// clients the new runtime did not take over.
func (g *Gateway) retire(old *runtime, keep map[Upstream]bool) {
	deadline := time.Now().Add(g.cfg.Server.ShutdownTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for old.inflight.Load() > 0 && time.Now().Before(deadline) {
		select {
		case <-tick.C:
		case <-g.stop:
			deadline = time.Now()
		}
	}
	if n := old.inflight.Load(); n > 0 {
		g.log.Warn("reload: closing the old upstreams with calls still in flight", slog.Int64("calls", n))
	}
	old.closeClients(keep)
}

func (g *Gateway) reloadRejected(ctx context.Context, path string, raw []byte, err error) {
	g.reloads.rejected.Add(1)
	g.tel.Metrics().ConfigReload(false)
	problems := configs.Problems(err)
	g.log.ErrorContext(ctx, "configuration rejected; the running configuration stays",
		slog.String("path", path), slog.Any("problems", problems))
	g.auditReload(ctx, "rejected", path, raw, nil, nil, problems)
}

// auditReload writes the audit record of a reload.
func (g *Gateway) auditReload(ctx context.Context, action, path string, raw []byte, cfg *configs.Config, restart, problems []string) {
	detail := map[string]string{}
	if path != "" {
		detail["path"] = path
	}
	if raw != nil {
		sum := sha256.Sum256(raw)
		detail["config_sha256"] = hex.EncodeToString(sum[:])
	}
	if cfg != nil {
		detail["upstreams"] = strconv.Itoa(len(cfg.Upstreams))
	}
	if len(restart) > 0 {
		detail["restart_required"] = strings.Join(restart, ",")
	}
	if len(problems) > 0 {
		detail["error"] = strings.Join(problems, "; ")
	}
	rec := &audit.Record{Time: g.now(), Event: audit.EventConfigReload, Action: action, Detail: detail}
	if err := g.controls.audit.Log(context.WithoutCancel(ctx), rec); err != nil {
		g.log.ErrorContext(ctx, "audit record not written", slog.String("event", string(rec.Event)), slog.Any("error", err))
	}
}

// restartOnly names the top-level sections that differ between a and b
// and are read only at start.
func restartOnly(a, b *configs.Config) []string {
	var out []string
	check := func(name string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			out = append(out, name)
		}
	}
	check("server", a.Server, b.Server)
	check("auth", a.Auth, b.Auth)
	check("redis", a.Redis, b.Redis)
	check("audit", a.Audit, b.Audit)
	check("policy.kill_switches", a.Policy.KillSwitches, b.Policy.KillSwitches)
	check("log", a.Log, b.Log)
	check("telemetry", a.Telemetry, b.Telemetry)
	return out
}
