package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mcpgw/mcpgw/internal/backoff"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// Resuming a session-era event stream that the upstream ended early.
//
// 2025-11-25 basic/transports lets a server close the SSE stream of a
// request before the response once it has sent an event with an id ("SSE
// polling", SEP-1699: it primes the stream with an id and empty data, and
// SHOULD send a retry field before it closes). The client then resumes
// with an HTTP GET carrying Last-Event-ID, whether the stream ended by the
// server's choice or by a network failure ("Resumability and
// Redelivery"), after waiting the retry time, which it MUST respect. The
// server replays what it sent after that id on the same stream and no
// other, so every message arrives once. Event ids are cursors within one
// stream: the last one seen is all a stream needs to be resumed.
//
// 2026-07-28 removed resumption (SEP-2575): its streams are never resumed.

// maxResumeFailures bounds the consecutive reconnections of one stream that
// bring nothing new (a refused or failed GET, or a stream that ends again
// without a new event id). An attempt that delivers an event with a new
// id starts the count again, so a server that polls for as long as the
// call's deadline allows is followed to the end.
const maxResumeFailures = 5

// errNotResumed is why a stream was not resumed.
var errNotResumed = errors.New("the stream cannot be resumed")

// resumption is the state of one stream across its reconnections.
type resumption struct {
	bo       backoff.Exponential
	failures int
	// seen is the last event id of the stream when it was last resumed.
	seen string
}

func newResumption() resumption { return resumption{bo: reconnectBackoff()} }

// resumable reports whether a stream whose reading ended with err may be
// resumed: in the session era, after an event id, when the stream ended or
// broke (an oversized event is not a reason to read it again).
func (h *httpConn) resumable(sr *sseReader, err error) bool {
	return !h.modern && sr.lastID != "" && !errors.Is(err, errEventTooLarge)
}

// resume reopens the stream sr read, with GET and Last-Event-ID, after the
// server's retry time (or a backoff, when it named none); it tries until a
// stream opens, ctx ends or maxResumeFailures attempts in a row brought
// nothing. It returns the body of the resumed stream. A 404 means the
// session is gone (statusError says so); other refusals mean the server
// cannot replay the stream, and are not tried again.
func (h *httpConn) resume(ctx context.Context, sr *sseReader, rs *resumption) (io.ReadCloser, error) {
	if sr.lastID != rs.seen {
		rs.seen, rs.failures = sr.lastID, 0
		rs.bo.Reset()
	} else {
		rs.failures++ // reopened last time, and nothing came
	}
	for ; rs.failures < maxResumeFailures; rs.failures++ {
		d := rs.bo.Next()
		if sr.hasRetry && (rs.failures == 0 || sr.retry > d) {
			d = sr.retry
		}
		if err := h.wait(ctx, d); err != nil {
			return nil, err
		}
		resp, err := h.get(ctx, sr.lastID)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			h.c.log.DebugContext(ctx, "resuming an upstream event stream failed")
			continue
		}
		if resp.StatusCode == http.StatusOK && mediaType(resp.Header.Get("Content-Type")) == "text/event-stream" {
			return resp.Body, nil
		}
		if resp.StatusCode/100 == 5 {
			_ = resp.Body.Close()
			continue
		}
		up := fromHTTP(resp)
		return nil, h.statusError(ctx, &up)
	}
	return nil, fmt.Errorf("%w: %d attempts brought nothing", errNotResumed, maxResumeFailures)
}

// wait waits d, or until ctx ends (its error) or the client closes.
func (h *httpConn) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-h.c.life.Done():
		return fmt.Errorf("%w: the client is closed", errNotResumed)
	}
}

// get opens a GET stream on the session: the standalone stream, or, with
// lastEventID, the resumption of the stream that event was sent on.
func (h *httpConn) get(ctx context.Context, lastEventID string) (*http.Response, error) {
	req := h.tmpl.WithContext(ctx)
	req.Method = http.MethodGet
	req.Header = make(http.Header, len(h.post)+1)
	for k, v := range h.post {
		if k != "Content-Type" {
			req.Header[k] = v
		}
	}
	req.Header["Accept"] = []string{"text/event-stream"}
	if lastEventID != "" {
		req.Header[mcpwire.HeaderLastEventID] = []string{lastEventID}
	}
	var err error
	if req.Header, err = h.sessionHeader(ctx, req.Header); err != nil {
		return nil, h.c.credentialsFail(err)
	}
	return h.d.rt.RoundTrip(req)
}

// restart makes sr read body, keeping what it knows of the stream (the
// last event id and the retry time).
func (s *sseReader) restart(body io.Reader) {
	s.br.Reset(body)
}

// resumeWait is how long the notification stream waits before it is
// resumed: the server's retry time, when it named one.
func resumeWait(sr *sseReader, bo *backoff.Exponential) time.Duration {
	if sr.hasRetry {
		return sr.retry
	}
	return bo.Next()
}
