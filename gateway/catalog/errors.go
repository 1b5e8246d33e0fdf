package catalog

import "errors"

// ErrInvalidCursor reports a list cursor this package did not issue, issued
// for another list, or garbled on the way. The gateway maps it to
// mcpwire.CodeInvalidParams.
var ErrInvalidCursor = errors.New("invalid cursor")

// ErrUnknownKind reports a Kind outside Tools, Resources, ResourceTemplates
// and Prompts.
var ErrUnknownKind = errors.New("unknown catalog kind")

// ErrInconsistent reports a snapshot whose lists, routes and pages disagree.
// Consistent returns it wrapped; it means a bug in this package.
var ErrInconsistent = errors.New("inconsistent catalog snapshot")

// Errors of findMember, beside rawjson's validation errors. They end up as
// the Reason of a Problem.
var (
	errMissingMember = errors.New("member is missing")
	errNotString     = errors.New("member is not a string")
)

// Errors of the URI template compiler.
var (
	errUnclosedExpression = errors.New("unclosed expression")
	errEmptyExpression    = errors.New("empty expression")
	errReservedOperator   = errors.New("reserved operator")
	errBadVariable        = errors.New("bad variable name")
)
