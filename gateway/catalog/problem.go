package catalog

import "fmt"

// Problem is one item (or one source) that Build skipped or changed, with
// the reason. Problems are not fatal: the snapshot is built without the
// item. For collisions Reason names both upstreams.
type Problem struct { //nolint:errname // exported API; the name predates the linter.
	// Upstream is the upstream whose item was skipped.
	Upstream string
	// Kind is the item's kind as a noun ("tool", "resource template"), or
	// "" for a problem with the source itself.
	Kind string
	// Item is the item's original name or URI, or "" when it has none.
	Item string
	// Reason says what is wrong and what Build did about it.
	Reason string
	// Cause classifies the problem, so that operators' tools can count
	// the kinds that only the live catalog can show.
	Cause Cause
}

// Cause is the class of a Problem.
type Cause string

// The causes of problems. Only CauseNamePattern and CauseNameClash can
// happen to a well-formed upstream under a valid configuration: they are
// what validate cannot see, so the gateway logs, counts and shows them.
const (
	// CauseNamePattern: the exposed name does not match the name pattern,
	// most often because prefix and separator push it past 64 characters.
	CauseNamePattern Cause = "name_pattern"
	// CauseNameClash: another upstream's item took the exposed name first.
	CauseNameClash Cause = "name_clash"
	// CauseDuplicate: the upstream lists the same name twice.
	CauseDuplicate Cause = "duplicate"
	// CauseMalformed: the item or the source itself cannot be used.
	CauseMalformed Cause = "malformed"
)

var _ error = Problem{}

// Error formats the problem as
// `tool "x.y" from upstream "orders": exposed name ... does not match ...`.
func (p Problem) Error() string { //nolint:gocritic // a value receiver: Problem values are the errors, as Build returns them.
	switch {
	case p.Kind == "":
		return fmt.Sprintf("upstream %q: %s", p.Upstream, p.Reason)
	case p.Item == "":
		return fmt.Sprintf("%s from upstream %q: %s", p.Kind, p.Upstream, p.Reason)
	default:
		return fmt.Sprintf("%s %q from upstream %q: %s", p.Kind, p.Item, p.Upstream, p.Reason)
	}
}
