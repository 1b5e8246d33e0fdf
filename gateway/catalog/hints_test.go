package catalog

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRouteHints(t *testing.T) {
	s, _ := build(t, Options{Separator: "__"}, Source{Upstream: "orders", Prefix: "orders", Available: true, Tools: []json.RawMessage{
		json.RawMessage(`{"name":"cancel","inputSchema":{"type":"object"},"annotations":{"destructiveHint":true,"idempotentHint":false}}`),
		json.RawMessage(`{"name":"get","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`),
		json.RawMessage(`{"name":"put","inputSchema":{"type":"object"},"annotations":{"idempotentHint":true,"destructiveHint":false}}`),
		json.RawMessage(`{"name":"bare","inputSchema":{"type":"object"}}`),
		json.RawMessage(`{"name":"odd","inputSchema":{"type":"object"},"annotations":{"destructiveHint":"yes"}}`),
	}})
	tests := []struct {
		name      string
		want      Hints
		retryable bool
	}{
		{"orders__cancel", Hints{Destructive: true}, false},
		{"orders__get", Hints{ReadOnly: true}, true},
		{"orders__put", Hints{Idempotent: true}, true},
		{"orders__bare", Hints{}, false},
		{"orders__odd", Hints{}, false},
	}
	for _, tt := range tests {
		r, ok := s.Tool(tt.name)
		require.True(t, ok, tt.name)
		assert.Equal(t, tt.want, r.Hints, tt.name)
		assert.Equal(t, tt.retryable, r.Hints.Retryable(), tt.name)
	}
}
