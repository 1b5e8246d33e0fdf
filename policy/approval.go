package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// ScopeApproval is the scope of an approval record (Approvals).
const ScopeApproval Scope = "approval"

// ApprovalOptions configure Approvals. Every field is optional.
type ApprovalOptions struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives changes and store failures. Default: discard.
	Logger *slog.Logger
	// OnChange is called after the set of approvals changed (here or, with
	// a shared store, on another replica). It must not block for long.
	OnChange func()
	// ResyncInterval is how often a shared store is reloaded and how often
	// an unavailable store is retried. Default 500ms.
	ResyncInterval time.Duration
}

// Approvals are the tool contracts operators approved while the gateway
// runs: each accepts one contract digest of one tool of one upstream, on
// top of the lock file's pins, until the lock file is updated. A new
// approval of a tool replaces the previous one.
//
// They are kept in their own Store (memory, a state file, or a RedisStore
// named "approvals") with the same syncing as kill switches, so that an
// approval on one replica reaches every replica sharing Redis through the
// same pub/sub channel mechanism. While the store cannot be loaded,
// nothing is approved beyond the lock file: a quarantined tool stays
// quarantined, which fails closed.
type Approvals struct {
	reg  *registry
	snap atomic.Pointer[approvalSnapshot]
	opts ApprovalOptions
}

type approvalSnapshot struct {
	loaded bool
	byTool map[string]Switch // by approvalTarget
}

// NewApprovals loads the approvals from store and starts the background
// loop. Close stops it.
func NewApprovals(ctx context.Context, store Store, opts ApprovalOptions) (*Approvals, error) {
	a := &Approvals{opts: opts}
	if a.opts.Now == nil {
		a.opts.Now = time.Now
	}
	reg, err := newRegistry(ctx, store, &registryOptions{
		name:           "approvals",
		now:            a.opts.Now,
		logger:         opts.Logger,
		onChange:       opts.OnChange,
		resyncInterval: opts.ResyncInterval,
		publish:        a.publish,
	})
	if err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	a.reg = reg
	return a, nil
}

// approvalTarget is the Target of the approval of upstream's tool (by its
// original name). Upstream names never contain '/'.
func approvalTarget(upstream, tool string) string { return upstream + "/" + tool }

// approvalID is the record ID of the approval of a target: a digest of it,
// since tool names may be longer than an ID and hold other characters.
func approvalID(target string) string {
	sum := sha256.Sum256([]byte(target))
	return "ap-" + hex.EncodeToString(sum[:12])
}

// Approved returns the approval of upstream's tool (by its original name),
// if any: its Digest is the contract it accepts.
func (a *Approvals) Approved(upstream, tool string) (Switch, bool) {
	s, ok := a.snap.Load().byTool[approvalTarget(upstream, tool)]
	return s, ok
}

// Degraded reports whether the approvals could not be loaded yet.
func (a *Approvals) Degraded() bool { return !a.snap.Load().loaded }

// List returns the approvals, oldest first.
func (a *Approvals) List() []Switch { return a.reg.list() }

// Approve approves the contract with the given digest ("sha256:" and 64
// hex digits) of upstream's tool, replacing an earlier approval of the
// tool, and returns the record. reason is optional.
func (a *Approvals) Approve(ctx context.Context, upstream, tool, digest, actor, reason string) (Switch, error) {
	if upstream == "" || tool == "" || strings.Contains(upstream, "/") {
		return Switch{}, fmt.Errorf("%w: an approval names an upstream and a tool", ErrInvalidTarget)
	}
	if !validDigest(digest) {
		return Switch{}, fmt.Errorf("%w: %q", ErrInvalidDigest, digest)
	}
	target := approvalTarget(upstream, tool)
	rec := Switch{
		ID:      approvalID(target),
		Scope:   ScopeApproval,
		Target:  target,
		Reason:  strings.TrimSpace(reason),
		Actor:   actor,
		Created: a.opts.Now().UTC().Round(0),
		Digest:  digest,
	}
	if err := a.reg.put(ctx, &rec, true); err != nil {
		return Switch{}, fmt.Errorf("approving %s: %w", target, err)
	}
	a.reg.opts.logger.InfoContext(ctx, "tool contract approved", slog.String("upstream", upstream), slog.String("tool", tool),
		slog.String("digest", digest), slog.String("actor", actor))
	return rec, nil
}

// Revoke withdraws the approval of upstream's tool and returns it. It
// fails with ErrNotFound when the tool has none.
func (a *Approvals) Revoke(ctx context.Context, upstream, tool, actor string) (Switch, error) {
	target := approvalTarget(upstream, tool)
	s, err := a.reg.remove(ctx, approvalID(target))
	if err != nil {
		return Switch{}, fmt.Errorf("revoking the approval of %s: %w", target, err)
	}
	a.reg.opts.logger.InfoContext(ctx, "tool contract approval revoked", slog.String("upstream", upstream), slog.String("tool", tool), slog.String("actor", actor))
	return s, nil
}

// Close stops the background loops and waits for them.
func (a *Approvals) Close() error {
	a.reg.close()
	return nil
}

func (a *Approvals) publish(records []Switch, loaded bool, _ time.Time) {
	snap := &approvalSnapshot{loaded: loaded, byTool: make(map[string]Switch, len(records))}
	for i := range records {
		if records[i].Scope == ScopeApproval {
			snap.byTool[records[i].Target] = records[i]
		}
	}
	a.snap.Store(snap)
}

// validDigest reports whether d is "sha256:" and 64 lower-case hex digits.
func validDigest(d string) bool {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexPart) != 64 {
		return false
	}
	for i := range len(hexPart) {
		c := hexPart[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
