package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/telemetry/audit"
)

// Pinned tool contracts (docs/policy.md, "Pinned tool contracts").
//
// A tool's contract is what an agent trusts about it: its name,
// description, input and output schemas, and annotations. Its digest is
// the SHA-256 of those members of the tool object, as the upstream sent
// them, in RFC 8785 canonical JSON (so whitespace and member order do not
// count). The lock file records the digest and the canonical contract of
// every tool of every upstream, so that a later change can be shown
// member by member without the old server.

// LockVersion is the lock file format's version.
const LockVersion = 1

// contractMembers are the members of a tool object that make its
// contract (MCP server/tools, "Tool"): what a host shows the model.
var contractMembers = [...]string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"} //nolint:gochecknoglobals // read-only: the definition of a contract.

// Lock is the lock file: every pinned tool's contract, by upstream and
// original tool name.
type Lock struct {
	// Version is LockVersion.
	Version int `json:"version"`
	// Upstreams maps an upstream's name to its tools by original name.
	Upstreams map[string]map[string]PinnedTool `json:"upstreams"`
}

// PinnedTool is one tool's pinned contract.
type PinnedTool struct {
	// Digest is "sha256:" and the hex SHA-256 of Contract.
	Digest string `json:"digest"`
	// Contract is the tool's contract in canonical JSON.
	Contract json.RawMessage `json:"contract"`
}

// Contract returns the contract of a raw tool object: its contract
// members in RFC 8785 canonical JSON, and the digest of those bytes.
func Contract(tool json.RawMessage) (PinnedTool, error) {
	obj := []byte{'{'}
	for _, name := range contractMembers {
		v := rawjson.Member(tool, name)
		if len(v) == 0 {
			continue
		}
		if len(obj) > 1 {
			obj = append(obj, ',')
		}
		obj = rawjson.AppendString(obj, name)
		obj = append(obj, ':')
		obj = append(obj, v...)
	}
	obj = append(obj, '}')
	canon, err := audit.Canonicalize(nil, obj)
	if err != nil {
		return PinnedTool{}, fmt.Errorf("canonicalizing the contract: %w", err)
	}
	sum := sha256.Sum256(canon)
	return PinnedTool{Digest: "sha256:" + hex.EncodeToString(sum[:]), Contract: canon}, nil
}

// LockOf pins every tool of a catalog snapshot, by upstream and original
// name; a tool whose object cannot be canonicalized is an error.
func LockOf(snap *catalog.Snapshot) (*Lock, error) {
	lock := &Lock{Version: LockVersion, Upstreams: map[string]map[string]PinnedTool{}}
	var errs []error
	for _, exposed := range snap.ToolNames() { // killed and quarantined ones too
		route, _ := snap.Tool(exposed)
		raw, _ := snap.ToolObject(exposed)
		pt, err := Contract(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("upstream %q tool %q: %w", route.Upstream, route.Name, err))
			continue
		}
		if lock.Upstreams[route.Upstream] == nil {
			lock.Upstreams[route.Upstream] = map[string]PinnedTool{}
		}
		lock.Upstreams[route.Upstream][route.Name] = pt
	}
	return lock, errors.Join(errs...)
}

// ReadLock reads a lock file.
func ReadLock(path string) (*Lock, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading lock file: %w", err)
	}
	if err := rawjson.Validate(b, rawjson.Limits{}); err != nil {
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	var lock Lock
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("lock file %s: %w", path, err)
	}
	if lock.Version != LockVersion {
		return nil, fmt.Errorf("lock file %s: version %d, want %d", path, lock.Version, LockVersion)
	}
	// The file is indented for people; each contract is brought back to
	// its canonical form, and must still have its digest.
	var errs []error
	for up, tools := range lock.Upstreams {
		for name, pt := range tools {
			canon, err := Contract(pt.Contract)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("lock file %s: %s/%s: %w", path, up, name, err))
			case canon.Digest != pt.Digest:
				errs = append(errs, fmt.Errorf("lock file %s: %s/%s: digest %s does not match its contract (%s)", path, up, name, pt.Digest, canon.Digest))
			default:
				tools[name] = canon
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &lock, nil
}

// WriteLock writes a lock file atomically (a temporary file renamed
// over it), indented, with its members in sorted order so that it
// diffs well under version control.
func WriteLock(path string, lock *Lock) error {
	b, err := json.MarshalIndent(lock, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding lock file: %w", err)
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing lock file: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; only a failure leaves it
	if _, err := tmp.Write(b); err != nil {
		tmp.Close() //nolint:gosec // the write error is the one reported.
		return fmt.Errorf("writing lock file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing lock file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing lock file: %w", err)
	}
	return nil
}

// ContractChange is how one tool differs from its pin.
type ContractChange struct {
	Upstream string `json:"upstream"`
	Tool     string `json:"tool"`
	// Kind is changed, added (the lock file does not know the tool) or
	// removed (the upstream no longer lists it).
	Kind string `json:"kind"`
	// Members are the contract members that differ, in contract order,
	// for a changed tool.
	Members []MemberChange `json:"members,omitempty"`
	// Pinned and Current are the digests; one is empty for an added or
	// removed tool.
	Pinned  string `json:"pinned,omitempty"`
	Current string `json:"current,omitempty"`
}

// MemberChange is one contract member that differs: its canonical JSON
// in the lock file and now; empty when absent.
type MemberChange struct {
	Member  string          `json:"member"`
	Pinned  json.RawMessage `json:"pinned,omitempty"`
	Current json.RawMessage `json:"current,omitempty"`
}

// Contract change kinds (ContractChange.Kind).
const (
	ChangeChanged = "changed"
	ChangeAdded   = "added"
	ChangeRemoved = "removed"
)

// DiffLocks compares the pinned contracts with the current ones, member by
// member, in upstream and tool name order.
func DiffLocks(pinned, current *Lock) []ContractChange {
	var out []ContractChange
	for _, up := range sortedUnion(pinned.Upstreams, current.Upstreams) {
		was, now := pinned.Upstreams[up], current.Upstreams[up]
		for _, tool := range sortedUnion(was, now) {
			p, inPinned := was[tool]
			c, inCurrent := now[tool]
			switch {
			case !inPinned:
				out = append(out, ContractChange{Upstream: up, Tool: tool, Kind: ChangeAdded, Current: c.Digest})
			case !inCurrent:
				out = append(out, ContractChange{Upstream: up, Tool: tool, Kind: ChangeRemoved, Pinned: p.Digest})
			case p.Digest != c.Digest:
				out = append(out, ContractChange{
					Upstream: up, Tool: tool, Kind: ChangeChanged,
					Pinned: p.Digest, Current: c.Digest, Members: memberChanges(p.Contract, c.Contract),
				})
			}
		}
	}
	return out
}

// memberChanges lists the contract members whose canonical JSON differs.
func memberChanges(pinned, current json.RawMessage) []MemberChange {
	var out []MemberChange
	for _, name := range contractMembers {
		p, c := rawjson.Member(pinned, name), rawjson.Member(current, name)
		if !bytes.Equal(p, c) {
			out = append(out, MemberChange{Member: name, Pinned: p, Current: c})
		}
	}
	return out
}

// sortedUnion returns the keys of a and b, sorted, without duplicates.
func sortedUnion[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// LiveLock connects to the configured upstreams, waits up to wait for
// every catalog, and pins what they list now: what `mcpgw tools pin`
// writes and `mcpgw tools diff` compares with the lock file. Upstream tool
// filters apply, so only exposed tools are pinned.
func LiveLock(ctx context.Context, cfg *configs.Config, wait time.Duration) (*Lock, error) {
	// Pinning is off for the look: a quarantined tool is pinned as it is
	// now, and a missing lock file is what pin is for.
	live := *cfg
	live.Pinning.Mode = configs.PinningOff
	live.Upstreams = slices.Clone(cfg.Upstreams)
	for i := range live.Upstreams {
		live.Upstreams[i].Pinning = configs.PinningOff
	}
	g, err := New(&live, &Options{})
	if err != nil {
		return nil, err
	}
	defer g.Close()
	g.Start()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !g.Ready() {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("upstreams did not list their tools within %s", wait)
		case <-tick.C:
		}
	}
	return LockOf(g.rt.Load().snapshot())
}

// ErrNoSuchTool is returned by Approve for a name that matches no tool.
var ErrNoSuchTool = errors.New("no such tool")

// Approve pins the current contract of one tool in pinned, in place: what
// `mcpgw tools approve NAME` writes. name is the exposed name, or
// UPSTREAM/TOOL with the original name. A tool the upstream no longer
// lists is unpinned. It returns the change approved.
func Approve(cfg *configs.Config, pinned, current *Lock, name string) (ContractChange, error) {
	for _, ch := range DiffLocks(pinned, current) {
		u := upstreamConfig(cfg, ch.Upstream)
		if name != ch.Upstream+"/"+ch.Tool && (u == nil || name != catalog.ExposedName(u.ExposedPrefix(), cfg.Catalog.Separator, ch.Tool)) {
			continue
		}
		if ch.Kind == ChangeRemoved {
			delete(pinned.Upstreams[ch.Upstream], ch.Tool)
			return ch, nil
		}
		if pinned.Upstreams == nil {
			pinned.Upstreams = map[string]map[string]PinnedTool{}
		}
		if pinned.Upstreams[ch.Upstream] == nil {
			pinned.Upstreams[ch.Upstream] = map[string]PinnedTool{}
		}
		pinned.Upstreams[ch.Upstream][ch.Tool] = current.Upstreams[ch.Upstream][ch.Tool]
		return ch, nil
	}
	return ContractChange{}, fmt.Errorf("%w with a change to approve: %q", ErrNoSuchTool, name)
}

// upstreamConfig is the configuration of the named upstream; nil when none.
func upstreamConfig(cfg *configs.Config, name string) *configs.Upstream {
	for i := range cfg.Upstreams {
		if cfg.Upstreams[i].Name == name {
			return &cfg.Upstreams[i]
		}
	}
	return nil
}
