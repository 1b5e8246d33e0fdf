package upstream

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Sentinels for failures of a call that are not the upstream's own JSON-RPC
// errors. Every such error returned by Client.Call is an *Error that wraps
// exactly one of them; test with errors.Is.
var (
	// ErrUnavailable: the upstream could not be reached, is known to be down,
	// answered with a non-2xx HTTP status (Error.Status says which), or its
	// session expired.
	ErrUnavailable = errors.New("unavailable")
	// ErrBadResponse: the upstream answered with something that is not a
	// JSON-RPC response to the request (not JSON, wrong id, wrong content
	// type, no response on the stream).
	ErrBadResponse = errors.New("bad response")
	// ErrResponseTooLarge: the response exceeded the upstream's
	// max_response_bytes.
	ErrResponseTooLarge = errors.New("response too large")
	// ErrTimeout: the call did not finish within the upstream's timeout (or
	// the caller's deadline). Errors wrapping it also wrap
	// context.DeadlineExceeded.
	ErrTimeout = errors.New("timeout")
	// ErrBadRequest: the request itself could not be sent, for example its
	// params are not a JSON object.
	ErrBadRequest = errors.New("bad request")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("client closed")
	// ErrCircuitOpen: the upstream's circuit breaker refused the call
	// without sending it (open, or half-open with its probes taken).
	// Error.Breaker and Error.RetryAfter say more.
	ErrCircuitOpen = errors.New("circuit open")
	// ErrBusy: the upstream's bulkhead refused the call without sending
	// it: every slot stayed taken for the queue timeout, or the queue was
	// full. Error.RetryAfter is a hint.
	ErrBusy = errors.New("too many calls in flight")
)

// RPCError is a JSON-RPC error the upstream returned; the gateway passes it
// through to the client unchanged.
type RPCError struct {
	Code    int
	Message string
	// Data is the error's data member as the upstream sent it, nil when
	// absent.
	Data []byte
	// Status is the HTTP status the error came with when it was not 2xx
	// (a stateless-era server answers protocol errors with 4xx, a sick
	// one may answer 5xx with a JSON-RPC error); 0 otherwise. A 5xx still
	// counts against the circuit breaker.
	Status int
	// Raw is the whole error object as the upstream sent it, when the
	// transport kept it (Streamable HTTP does; the mcp-go transports
	// decode it): the gateway relays it byte for byte.
	Raw []byte
}

// Error implements error.
func (e *RPCError) Error() string {
	return "jsonrpc error " + strconv.Itoa(e.Code) + ": " + e.Message
}

// Error is a failed call to an upstream that is not a JSON-RPC error of the
// upstream. Its message names the upstream; it unwraps to its Kind (one of
// the package sentinels), to Err (the cause, possibly nil) and, for timeouts
// and cancellations, to the context error.
type Error struct {
	// Upstream is the name of the upstream.
	Upstream string
	// Kind is the sentinel: ErrUnavailable, ErrBadResponse, ErrResponseTooLarge,
	// ErrTimeout, ErrBadRequest or ErrClosed. Nil when the caller's context
	// ended (Err is then the context error).
	Kind error
	// Detail says what happened, for humans.
	Detail string
	// Err is the underlying cause, if any.
	Err error
	// Status is the HTTP status of a non-2xx answer, 0 otherwise.
	Status int
	// Timeout is the timeout that expired, for ErrTimeout errors of the
	// upstream's own (per-tool) timeout; 0 when the caller's deadline
	// expired first, or for other errors.
	Timeout time.Duration
	// Breaker is the state of the breaker that refused an ErrCircuitOpen
	// call: "open" or "half-open".
	Breaker string
	// RetryAfter says when an ErrCircuitOpen or ErrBusy call may be tried
	// again: when the circuit half-opens, or a hint for a busy upstream.
	RetryAfter time.Duration
}

// Error implements error: `upstream "orders": unavailable: connection refused: …`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("upstream ")
	b.WriteString(strconv.Quote(e.Upstream))
	b.WriteString(": ")
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	}
	if e.Detail != "" {
		if e.Kind != nil {
			b.WriteString(": ")
		}
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes the sentinel and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// statusError is a non-2xx HTTP answer without a JSON-RPC error body.
type statusError struct {
	code int
	text string
}

func (e *statusError) Error() string {
	if e.text != "" {
		return "HTTP " + strconv.Itoa(e.code) + " " + e.text
	}
	return "HTTP " + strconv.Itoa(e.code)
}

// errSessionExpired marks a 404 answer to a request that carried a session id:
// the upstream forgot the session (it restarted, or the session idled out).
var errSessionExpired = errors.New("session expired")

// CircuitOpen reports whether the call was refused by an open circuit
// breaker (ErrCircuitOpen), for the decision metrics.
func (e *Error) CircuitOpen() bool { return errors.Is(e, ErrCircuitOpen) }
