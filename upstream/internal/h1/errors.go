package h1

import "errors"

// Errors of a request. Others are the network's (net.Error, io.EOF while
// reading a body) or the context's.
var (
	// ErrInvalidHead reports a request line or header field that cannot be
	// sent as it is (a control character in a value, a name that is not a
	// token): nothing was written.
	ErrInvalidHead = errors.New("invalid request head")
	// ErrMalformed reports a response that breaks HTTP/1.1 syntax or
	// framing (RFC 9112); its connection was closed.
	ErrMalformed = errors.New("malformed HTTP response")
	// ErrReusedEOF reports a reused keep-alive connection that the server
	// closed without answering. Whether the request was applied is
	// unknown, so it is not resent (RFC 9110 section 9.2.2); a caller may
	// retry a request that is safe to repeat.
	ErrReusedEOF = errors.New("server closed a reused connection without answering")
	// ErrClosed reports a request on a closed Transport.
	ErrClosed = errors.New("transport closed")
	// ErrAborted reports a read of a body closed before its end.
	ErrAborted = errors.New("request cancelled")
)

// Kinds of ErrMalformed, wrapped with it, where the parser is deliberately
// stricter than net/http's; the rules of FuzzResponse name them.
var (
	errStatusLine = errors.New("status line")
	errFolded     = errors.New("folded field line (obs-fold)")
	errNameSpace  = errors.New("space in a field name")
	errTooLong    = errors.New("head too long")
	errTE10       = errors.New("Transfer-Encoding in an HTTP/1.0 response")
)
