package policy

import "errors"

// Sentinel errors. Callers test for them with errors.Is; the messages of
// the errors returned around them add context.
var (
	// ErrReasonRequired rejects a kill switch or drain without a reason.
	ErrReasonRequired = errors.New("a reason is required")
	// ErrNegativeTTL rejects a kill switch whose TTL is negative or whose
	// expiry is not in the future.
	ErrNegativeTTL = errors.New("ttl must not be negative and expiry must be in the future")
	// ErrInvalidScope rejects a kill switch whose scope is not global,
	// upstream or tool.
	ErrInvalidScope = errors.New("scope must be global, upstream or tool")
	// ErrInvalidTarget rejects a kill switch whose target does not fit its
	// scope: a global switch with a target, or an upstream or tool switch
	// without one.
	ErrInvalidTarget = errors.New("invalid target for the scope")
	// ErrInvalidGlob rejects a tool switch whose target is not a valid
	// path.Match glob.
	ErrInvalidGlob = errors.New("target is not a valid glob")
	// ErrUnknownTool rejects a tool switch whose glob matches no exposed
	// tool: most likely a typo, which would otherwise stop nothing.
	ErrUnknownTool = errors.New("glob matches no known tool")
	// ErrUnknownUpstream rejects a switch or drain naming an upstream that
	// is not configured.
	ErrUnknownUpstream = errors.New("unknown upstream")
	// ErrInvalidID rejects a switch whose caller-chosen ID is not 1 to 64
	// letters, digits, '.', '_' or '-'.
	ErrInvalidID = errors.New("id must be 1 to 64 letters, digits, '.', '_' or '-'")
	// ErrExists rejects a switch whose ID is already in use.
	ErrExists = errors.New("a switch with this id already exists")
	// ErrNotFound is returned when removing a switch or undraining an
	// upstream that is not there.
	ErrNotFound = errors.New("not found")
	// ErrStateLost is returned by a Store whose backing service lost its
	// data (a Redis restarted without persistence). The caller puts back
	// the state it knows rather than trusting the empty store.
	ErrStateLost = errors.New("store lost its state")
	// ErrRedisUnavailable is returned when Redis does not answer.
	ErrRedisUnavailable = errors.New("redis unavailable")
	// ErrInvalidDigest rejects an approval whose digest is not "sha256:"
	// and 64 lower-case hex digits.
	ErrInvalidDigest = errors.New(`digest must be "sha256:" and 64 hex digits`)
	// ErrInvalidConfig is returned by constructors given unusable settings.
	ErrInvalidConfig = errors.New("invalid policy configuration")
)
