package policy

import "context"

// Tick runs one load and prune of the background loop and waits for it.
func (s *Switches) Tick(ctx context.Context) error { return s.reg.runTick(ctx) }

// Tick runs one load and prune of the background loop and waits for it.
func (d *Drains) Tick(ctx context.Context) error { return d.reg.runTick(ctx) }

// Buckets returns the number of local buckets held.
func (l *Limiter) Buckets() int { return l.local.len() }

// Tick runs one load of the background loop and waits for it.
func (a *Approvals) Tick(ctx context.Context) error { return a.reg.runTick(ctx) }
