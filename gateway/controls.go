package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/policy"
	"github.com/mcpgw/mcpgw/telemetry/audit"
)

// controls are the per-call policies and the audit stream. Unlike the
// runtime they are not rebuilt on reload: kill switches and drains are
// runtime state, not configuration.
type controls struct {
	switches *policy.Switches
	drains   *policy.Drains
	// approvals are the tool contracts approved at run time (pinning).
	approvals *policy.Approvals
	audit     *audit.Logger
	// tap hands the audit stream to the console's live tails.
	tap   *auditTap
	redis *redis.Client
	// history keeps the recent switch and drain changes for the admin
	// API and the console.
	history history
}

// controlsDeps are what the controls need from the gateway.
type controlsDeps struct {
	log            *slog.Logger
	now            func() time.Time
	knownUpstreams func() []string
	onChange       func()
	// onApproval is told when the approved tool contracts changed.
	onApproval func()
	auditTo    io.Writer
}

func newControls(ctx context.Context, cfg *configs.Config, d controlsDeps) (_ *controls, err error) {
	c := &controls{tap: newAuditTap()}
	defer func() {
		if err != nil {
			_ = c.close(context.WithoutCancel(ctx))
		}
	}()
	// The audit stream opens first: a sink that cannot be written stops the
	// start before anything else exists, and the kill switches can audit
	// their expiry.
	opts := audit.Options{
		QueueSize: cfg.Audit.QueueSize, StuckAfter: cfg.Audit.StuckAfter, Now: d.now,
		ErrorLog: d.log.With(slog.String("component", "audit")),
	}
	if d.auditTo != nil {
		opts.Writers = []io.Writer{d.auditTo}
	}
	for _, s := range cfg.Audit.Sinks {
		if d.auditTo != nil {
			break
		}
		switch s.Type {
		case "file":
			opts.Paths = append(opts.Paths, s.Path)
		default:
			opts.Writers = append(opts.Writers, os.Stdout)
		}
	}
	if len(opts.Writers)+len(opts.Paths) > 0 {
		// Only beside a real sink: a configuration without one is refused.
		opts.Writers = append(opts.Writers, c.tap)
	}
	if c.audit, err = audit.Open(&opts); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if cfg.Redis != nil {
		if c.redis, err = policy.NewRedisClient(ctx, cfg.Redis); err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
	}
	switchStore, drainStore, err := stores(cfg, c.redis)
	if err != nil {
		return nil, err
	}
	ks := cfg.Policy.KillSwitches
	c.switches, err = policy.NewSwitches(ctx, switchStore, policy.SwitchOptions{
		Now: d.now, Logger: d.log.With(slog.String("component", "killswitches")),
		KnownUpstreams: d.knownUpstreams, OnChange: d.onChange,
		OnExpire:       func(sw policy.Switch) { c.auditExpiry(d.log, d.now, &sw) },
		ResyncInterval: ks.ResyncInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("kill switches: %w", err)
	}
	c.drains, err = policy.NewDrains(ctx, drainStore, policy.DrainOptions{
		Now: d.now, Logger: d.log.With(slog.String("component", "drains")),
		KnownUpstreams: d.knownUpstreams, ResyncInterval: ks.ResyncInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("drains: %w", err)
	}
	approvalStore, err := approvalStore(cfg, c.redis)
	if err != nil {
		return nil, err
	}
	c.approvals, err = policy.NewApprovals(ctx, approvalStore, policy.ApprovalOptions{
		Now: d.now, Logger: d.log.With(slog.String("component", "approvals")),
		OnChange: d.onApproval, ResyncInterval: ks.ResyncInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	return c, nil
}

// auditExpiry writes the audit record of a kill switch that lifted itself.
func (c *controls) auditExpiry(log *slog.Logger, now func() time.Time, sw *policy.Switch) {
	c.history.add(&SwitchEvent{Time: now(), Kind: string(audit.EventKillSwitch), Action: "expire", Actor: sw.Actor, Switch: *sw})
	rec := &audit.Record{
		Time: now(), Event: audit.EventKillSwitch, Subject: sw.Actor,
		Action: "expire", SwitchID: sw.ID, Scope: string(sw.Scope), Target: sw.Target,
		Reason: sw.Reason, Ticket: sw.Ticket, Actor: sw.Actor, Expires: sw.Expires,
	}
	if err := c.audit.Log(context.Background(), rec); err != nil {
		log.Error("audit record not written", slog.String("event", string(rec.Event)), slog.String("id", sw.ID), slog.Any("error", err))
	}
}

func redisPrefix(cfg *configs.Config) string {
	if cfg.Redis == nil {
		return ""
	}
	return cfg.Redis.KeyPrefix
}

// stores picks where kill switches and drains live: Redis when replicas
// share state, a state file for a single replica that must survive
// restarts, memory otherwise.
func stores(cfg *configs.Config, rc *redis.Client) (policy.Store, policy.Store, error) { //nolint:ireturn // the configuration picks the implementation.
	switch {
	case rc != nil:
		s, err := policy.NewRedisStore(rc, cfg.Redis.KeyPrefix, policy.RedisStoreKillSwitches)
		if err != nil {
			return nil, nil, err
		}
		d, err := policy.NewRedisStore(rc, cfg.Redis.KeyPrefix, policy.RedisStoreDrains)
		if err != nil {
			return nil, nil, err
		}
		return s, d, nil
	case cfg.Policy.KillSwitches.StateFile != "":
		s, err := policy.NewFileStore(cfg.Policy.KillSwitches.StateFile)
		if err != nil {
			return nil, nil, fmt.Errorf("policy.kill_switches.state_file: %w", err)
		}
		d, err := policy.NewFileStore(cfg.Policy.KillSwitches.DrainStateFile())
		if err != nil {
			return nil, nil, fmt.Errorf("policy.kill_switches.state_file: %w", err)
		}
		return s, d, nil
	default:
		return &policy.MemoryStore{}, &policy.MemoryStore{}, nil
	}
}

// approvalStore picks where run-time approvals of tool contracts live, as
// stores does for kill switches: Redis, a state file, or memory.
func approvalStore(cfg *configs.Config, rc *redis.Client) (policy.Store, error) { //nolint:ireturn // the configuration picks the implementation.
	switch {
	case rc != nil:
		return policy.NewRedisStore(rc, cfg.Redis.KeyPrefix, policy.RedisStoreApprovals)
	case cfg.Policy.KillSwitches.StateFile != "":
		s, err := policy.NewFileStore(cfg.Policy.KillSwitches.ApprovalStateFile())
		if err != nil {
			return nil, fmt.Errorf("policy.kill_switches.state_file: %w", err)
		}
		return s, nil
	default:
		return &policy.MemoryStore{}, nil
	}
}

// close releases everything; the audit stream is drained first so that no
// record is lost on shutdown.
func (c *controls) close(ctx context.Context) error {
	var errs []error
	if c.audit != nil {
		errs = append(errs, c.audit.Close(ctx))
	}
	if c.switches != nil {
		errs = append(errs, c.switches.Close())
	}
	if c.drains != nil {
		errs = append(errs, c.drains.Close())
	}
	if c.approvals != nil {
		errs = append(errs, c.approvals.Close())
	}
	if c.redis != nil {
		errs = append(errs, c.redis.Close())
	}
	return errors.Join(errs...)
}
