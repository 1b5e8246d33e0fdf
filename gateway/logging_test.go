package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestReplierRelaysNotificationsByLevel: a call's notifications become
// events of its SSE answer, in order, without the log messages below the
// client's level; a client that accepts no SSE gets none.
func TestReplierRelaysNotificationsByLevel(t *testing.T) {
	tests := []struct {
		name   string
		accept string
		level  int
		want   string
	}{
		{
			"every level", "application/json, text/event-stream", -1,
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"a\"}}\n\n" +
				"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/other\",\"params\":{\"x\":1}}\n\n" +
				"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"error\",\"data\":\"b\"}}\n\n" +
				"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
		},
		{
			"warning and above", "application/json, text/event-stream", 3,
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/other\",\"params\":{\"x\":1}}\n\n" +
				"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"error\",\"data\":\"b\"}}\n\n" +
				"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
		},
		{"no SSE", "application/json", -1, `{"jsonrpc":"2.0","id":1,"result":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/mcp", http.NoBody)
			r.Header.Set("Accept", tt.accept)
			rp := newReplier(w, r, false)
			rp.minLog = tt.level
			rp.Notify("notifications/message", []byte(`{"level":"info","data":"a"}`))
			rp.Notify("notifications/other", []byte(`{"x":1}`))
			rp.Notify("notifications/message", []byte(`{"level":"error","data":"b"}`))
			rp.send([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
			assert.Equal(t, tt.want, w.Body.String())
		})
	}
}
