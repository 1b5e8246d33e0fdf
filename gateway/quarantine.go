package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/policy"
	"github.com/mcpgw/mcpgw/telemetry"
	"github.com/mcpgw/mcpgw/telemetry/audit"
)

// Pinned tool contracts at run time (docs/policy.md, "Pinned tool
// contracts"). When a catalog snapshot is built, every tool of an upstream
// whose pinning is warn or enforce is compared with its pin: the lock
// file's digest, or the digest an operator approved since (Approvals,
// shared through Redis as kill switches are). A tool that differs is
// *held*: under warn it stays callable and is logged, audited and counted
// once per new contract; under enforce (and, for a tool the lock file does
// not know, with pinning.new_tools: quarantine) it is quarantined: the
// catalog is built with it hidden, as a killed tool is, so that every list
// and every view derived from the catalog leaves it out, while its route
// stays, so that a call gets -32069 naming the change rather than "unknown
// tool". The call path's check is one map lookup in the state prepared
// here; no contract is digested per call.

// Audit actions of EventToolContract records.
const (
	contractQuarantine = "quarantine"
	contractWarn       = "warn"
	contractAllow      = "allow"
	contractApprove    = "approve"
)

// contractActor is the actor of the records the gateway writes itself.
const contractActor = "mcpgw"

// pinSet is what a runtime pins: the lock file's contracts and each
// upstream's mode. nil when every upstream's pinning is off.
type pinSet struct {
	lock *Lock
	// modes holds the upstreams whose pinning is warn or enforce.
	modes         map[string]string
	quarantineNew bool
}

// loadPins reads the lock file at path when some upstream pins its tools.
// A lock file that is missing is an error under enforce (a fresh
// deployment pins first: `mcpgw tools pin`), and under warn makes every
// tool new; one that does not read or check is an error.
func loadPins(cfg *configs.Config, path string, log *slog.Logger) (*pinSet, error) {
	p := &pinSet{modes: map[string]string{}, quarantineNew: cfg.Pinning.NewTools == configs.NewToolsQuarantine}
	enforced := false
	for i := range cfg.Upstreams {
		u := &cfg.Upstreams[i]
		switch mode := cfg.PinningMode(u); mode {
		case configs.PinningWarn, configs.PinningEnforce:
			p.modes[u.Name] = mode
			enforced = enforced || mode == configs.PinningEnforce
		}
	}
	if len(p.modes) == 0 {
		return nil, nil //nolint:nilnil // no pins is the common case, not an error.
	}
	lock, err := ReadLock(path)
	switch {
	case err == nil:
		p.lock = lock
	case errors.Is(err, fs.ErrNotExist) && !enforced:
		log.Warn("pinning: no lock file; every tool is reported as new until `mcpgw tools pin` writes one", slog.String("lock_file", path))
		p.lock = &Lock{Version: LockVersion, Upstreams: map[string]map[string]PinnedTool{}}
	default:
		return nil, fmt.Errorf("pinning: %w (`mcpgw tools pin` writes it)", err)
	}
	return p, nil
}

// CheckLock reads the lock file of cfg (loaded from configPath) as serve
// would: nil when nothing pins or the file reads and checks. It is what
// `mcpgw validate --resolve` reports under pinning.lock_file.
func CheckLock(cfg *configs.Config, configPath string) error {
	_, err := loadPins(cfg, cfg.LockFilePath(configPath), slog.New(slog.DiscardHandler))
	return err
}

// HeldContract is a tool whose contract differs from its pin, as the
// admin API and the console show it.
type HeldContract struct {
	// Tool is the exposed name; Upstream and Original where it routes.
	Tool     string `json:"tool"`
	Upstream string `json:"upstream"`
	Original string `json:"original"`
	// Mode is the upstream's pinning mode: warn or enforce.
	Mode string `json:"mode"`
	// Kind is changed (the lock file pins another contract) or added (the
	// lock file does not know the tool).
	Kind string `json:"kind"`
	// Members are the contract members that differ from the pin, for a
	// changed tool.
	Members []string `json:"members,omitempty"`
	// Pinned is the lock file's digest ("" for an added tool), Current the
	// contract's digest now: what an approval accepts.
	Pinned  string `json:"pinned,omitempty"`
	Current string `json:"current"`
	// Approved is the digest of an earlier approval of the tool, when its
	// contract changed again since.
	Approved string `json:"approved,omitempty"`
	// Quarantined reports whether the tool is hidden and its calls refused.
	Quarantined bool `json:"quarantined"`
}

// held is a HeldContract with its refusal prepared.
type held struct {
	HeldContract
	msg  string
	data json.RawMessage
}

// contractState is the outcome of checking one catalog snapshot against
// the pins: the lookup the call path and the lists use.
type contractState struct {
	// held are the tools that differ, by exposed name.
	held map[string]*held
	// quarantined are those of held whose calls are refused.
	quarantined map[string]*held
}

// hide wraps a catalog filter so that it hides the quarantined tools too.
func (s *contractState) hide(base func(exposed, upstream string) bool) func(exposed, upstream string) bool {
	return func(exposed, upstream string) bool {
		if _, ok := s.quarantined[exposed]; ok {
			return true
		}
		return base != nil && base(exposed, upstream)
	}
}

// lookup returns the held contract of an exposed tool name.
func (s *contractState) lookup(exposed string) (*held, bool) {
	if s == nil {
		return nil, false
	}
	h, ok := s.held[exposed]
	return h, ok
}

// quarantinedPerUpstream counts the quarantined tools of each upstream.
func (rt *runtime) quarantinedPerUpstream() map[string]int {
	st := rt.contracts.Load()
	if st == nil {
		return nil
	}
	out := map[string]int{}
	for _, h := range st.quarantined {
		out[h.Upstream]++
	}
	return out
}

// list returns the held contracts, sorted by exposed name.
func (s *contractState) list() []HeldContract {
	if s == nil {
		return []HeldContract{}
	}
	out := make([]HeldContract, 0, len(s.held))
	for _, h := range s.held {
		out = append(out, h.HeldContract)
	}
	slices.SortFunc(out, func(a, b HeldContract) int { return strings.Compare(a.Tool, b.Tool) })
	return out
}

// contractWatch is the gateway's side of pinning, which outlives reloads:
// the digests already computed (a catalog rebuild digests only the tools
// whose objects changed) and the changes already reported (each new
// contract of a tool is logged, audited and counted once per replica).
type contractWatch struct {
	log       *slog.Logger
	now       func() time.Time
	approvals *policy.Approvals
	audit     *audit.Logger
	metrics   *telemetry.Metrics

	mu       sync.Mutex
	memo     map[toolKey]memoContract
	reported map[toolKey]string // the mode and digest last reported
}

type toolKey struct{ upstream, tool string }

type memoContract struct {
	raw []byte
	pt  PinnedTool
}

// contract returns the contract of a tool object, digested once per
// distinct object.
func (w *contractWatch) contract(k toolKey, raw []byte) (PinnedTool, error) {
	w.mu.Lock()
	m, ok := w.memo[k]
	w.mu.Unlock()
	if ok && bytes.Equal(m.raw, raw) {
		return m.pt, nil
	}
	pt, err := Contract(raw)
	if err != nil {
		return PinnedTool{}, err
	}
	w.mu.Lock()
	if w.memo == nil {
		w.memo = map[toolKey]memoContract{}
	}
	w.memo[k] = memoContract{raw: raw, pt: pt}
	w.mu.Unlock()
	return pt, nil
}

// check compares every routed tool of snap whose upstream pins with its
// pin and returns the tools that differ; nil when nothing pins.
func (w *contractWatch) check(pins *pinSet, snap *catalog.Snapshot) *contractState {
	if pins == nil {
		return nil
	}
	st := &contractState{held: map[string]*held{}, quarantined: map[string]*held{}}
	for _, exposed := range snap.ToolNames() {
		route, _ := snap.Tool(exposed)
		mode, ok := pins.modes[route.Upstream]
		if !ok {
			continue
		}
		raw, _ := snap.ToolObject(exposed)
		k := toolKey{route.Upstream, route.Name}
		cur, err := w.contract(k, raw)
		if err != nil {
			// Build accepted the object, so it canonicalizes; should it not,
			// the tool is held as a changed one.
			w.log.Warn("pinning: tool contract does not canonicalize", slog.String("upstream", route.Upstream), slog.String("tool", route.Name), slog.Any("error", err))
			cur = PinnedTool{Digest: "invalid"}
		}
		pin, known := pins.lock.Upstreams[route.Upstream][route.Name]
		if known && pin.Digest == cur.Digest {
			continue
		}
		h := &held{HeldContract: HeldContract{
			Tool: exposed, Upstream: route.Upstream, Original: route.Name, Mode: mode,
			Kind: ChangeAdded, Current: cur.Digest,
		}}
		if ap, ok := w.approvals.Approved(route.Upstream, route.Name); ok {
			if ap.Digest == cur.Digest {
				continue
			}
			h.Approved = ap.Digest
		}
		if known {
			h.Kind, h.Pinned = ChangeChanged, pin.Digest
			for _, m := range memberChanges(pin.Contract, cur.Contract) {
				h.Members = append(h.Members, m.Member)
			}
		}
		h.Quarantined = mode == configs.PinningEnforce && (known || pins.quarantineNew)
		st.held[exposed] = h
		if h.Quarantined {
			h.prepare()
			st.quarantined[exposed] = h
		}
	}
	return st
}

// prepare builds the refusal of a quarantined tool's calls.
func (h *held) prepare() {
	what := "its contract is not in the lock file"
	if h.Kind == ChangeChanged {
		what = "its contract changed since it was pinned (" + strings.Join(h.Members, ", ") + ")"
	}
	h.msg = "tool " + strconv.Quote(h.Tool) + " is quarantined: " + what + "; an operator must approve it"
	data := struct {
		Tool     string   `json:"tool"`
		Upstream string   `json:"upstream"`
		Change   string   `json:"change"`
		Members  []string `json:"members,omitempty"`
		Pinned   string   `json:"pinned,omitempty"`
		Current  string   `json:"current"`
	}{h.Tool, h.Upstream, h.Kind, h.Members, h.Pinned, h.Current}
	h.data, _ = json.Marshal(data) //nolint:errchkjson // strings only.
}

// refusal is the error a call to a quarantined tool gets.
func (h *held) refusal() *rpcError {
	return newRPCError(mcpwire.CodeQuarantined, h.msg, h.data)
}

// report logs, audits and counts each held contract not reported before,
// and forgets the tools no longer held, so that a later change of one is
// reported again.
func (w *contractWatch) report(st *contractState) {
	if st == nil {
		return
	}
	var fresh []*held
	w.mu.Lock()
	if w.reported == nil {
		w.reported = map[toolKey]string{}
	}
	seen := make(map[toolKey]bool, len(st.held))
	for _, h := range st.held {
		k := toolKey{h.Upstream, h.Original}
		seen[k] = true
		if v := h.Mode + " " + h.Current; w.reported[k] != v {
			w.reported[k] = v
			fresh = append(fresh, h)
		}
	}
	for k := range w.reported {
		if !seen[k] {
			delete(w.reported, k)
		}
	}
	w.mu.Unlock()
	for _, h := range fresh {
		w.reportOne(h)
	}
}

func (w *contractWatch) reportOne(h *held) {
	action := contractWarn
	switch {
	case h.Quarantined:
		action = contractQuarantine
	case h.Kind == ChangeAdded && h.Mode == configs.PinningEnforce:
		action = contractAllow
	}
	ctx := context.Background()
	level := slog.LevelWarn
	if h.Quarantined {
		level = slog.LevelError
	}
	w.log.Log(ctx, level, "tool contract differs from its pin", slog.String("action", action), slog.String("tool", h.Tool),
		slog.String("upstream", h.Upstream), slog.String("kind", h.Kind), slog.String("members", strings.Join(h.Members, ",")),
		slog.String("pinned", h.Pinned), slog.String("current", h.Current))
	w.metrics.ToolContractChange(ctx, h.Upstream, h.Tool, h.Mode)
	rec := &audit.Record{
		Time: w.now(), Event: audit.EventToolContract, Action: action, Actor: contractActor,
		Tool: h.Tool, Upstream: h.Upstream, UpstreamTool: h.Original,
		Detail: map[string]string{"kind": h.Kind, "mode": h.Mode, "current": h.Current},
	}
	if h.Pinned != "" {
		rec.Detail["pinned"] = h.Pinned
	}
	if len(h.Members) > 0 {
		rec.Detail["members"] = strings.Join(h.Members, ",")
	}
	if h.Approved != "" {
		rec.Detail["approved"] = h.Approved
	}
	if err := w.audit.Log(ctx, rec); err != nil {
		w.log.Error("audit record not written", slog.String("event", string(rec.Event)), slog.String("tool", h.Tool), slog.Any("error", err))
	}
}

// quarantine refuses a call to a quarantined tool (stepQuarantine).
func (c *call) quarantine() *rpcError {
	st := c.rt.contracts.Load()
	if st == nil {
		return nil
	}
	h, ok := st.quarantined[c.t.name]
	if !ok {
		return nil
	}
	c.rec.Decision, c.rec.Rule = audit.DecisionQuarantined, "pinning:"+h.Kind
	return h.refusal()
}

// Errors of ApproveTool.
var (
	// ErrNothingToApprove: the tool's contract matches its pin.
	ErrNothingToApprove = errors.New("no contract change to approve")
	// ErrContractMoved: the contract changed again since the digest the
	// operator reviewed.
	ErrContractMoved = errors.New("the contract changed again")
)

// ApprovedContract is the answer to an approval.
type ApprovedContract struct {
	HeldContract
	Approval policy.Switch `json:"approval"`
}

// ApproveTool approves the current contract of the exposed tool name for
// actor: recorded in the approvals store (every replica sharing Redis
// applies it within its resync interval, at once through pub/sub), and
// audited. digest, when not empty, is the contract the operator reviewed:
// should the tool have changed again since, nothing is approved
// (ErrContractMoved). The catalog is rebuilt before it returns, so the
// tool is back in this replica's lists.
func (g *Gateway) ApproveTool(ctx context.Context, name, digest, actor, reason string) (ApprovedContract, error) {
	rt := g.rt.Load()
	if _, ok := rt.snapshot().Tool(name); !ok {
		return ApprovedContract{}, fmt.Errorf("%w: %q", ErrNoSuchTool, name)
	}
	st := rt.contracts.Load()
	if st == nil {
		return ApprovedContract{}, fmt.Errorf("tool %q: %w: pinning is off", name, ErrNothingToApprove)
	}
	h, ok := st.held[name]
	if !ok {
		return ApprovedContract{}, fmt.Errorf("tool %q: %w", name, ErrNothingToApprove)
	}
	if digest != "" && digest != h.Current {
		return ApprovedContract{}, fmt.Errorf("tool %q: %w: reviewed %s, now %s", name, ErrContractMoved, digest, h.Current)
	}
	rec, err := g.controls.approvals.Approve(ctx, h.Upstream, h.Original, h.Current, actor, reason)
	if err != nil {
		return ApprovedContract{}, err
	}
	g.controls.history.add(&SwitchEvent{Time: g.now(), Kind: string(audit.EventToolContract), Action: contractApprove, Actor: actor, Switch: rec})
	ar := &audit.Record{
		Time: g.now(), Event: audit.EventToolContract, RequestID: requestIDFrom(ctx), Subject: actor,
		Action: contractApprove, Actor: actor, Reason: rec.Reason,
		Tool: h.Tool, Upstream: h.Upstream, UpstreamTool: h.Original,
		Detail: map[string]string{"kind": h.Kind, "current": h.Current},
	}
	if h.Pinned != "" {
		ar.Detail["pinned"] = h.Pinned
	}
	if err := g.controls.audit.Log(context.WithoutCancel(ctx), ar); err != nil {
		g.log.ErrorContext(ctx, "audit record not written", slog.String("event", string(ar.Event)), slog.Any("error", err))
	}
	return ApprovedContract{HeldContract: h.HeldContract, Approval: rec}, nil
}

// HeldContracts lists the tools whose contract differs from its pin now,
// on this replica.
func (g *Gateway) HeldContracts() []HeldContract { return g.rt.Load().contracts.Load().list() }

// approvalsChanged rebuilds the current runtime's catalog at once, as a
// kill-switch change does: an approved tool is listed again as soon as
// the approval is known here.
func (g *Gateway) approvalsChanged() { g.switchesChanged() }
