package catalog

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A tool Select refuses is neither listed nor routed, and still holds
// its exposed name against a later source's tool of the same name.
func TestSelect(t *testing.T) {
	opts := defaultOpts
	opts.Select = func(exposed, upstream, original string, raw json.RawMessage) bool {
		return upstream == "b" || original == "keep"
	}
	s, problems := build(t, opts,
		Source{Upstream: "a", Available: true, Tools: tools("keep", "drop", "clash")},
		Source{Upstream: "b", Available: true, Tools: tools("clash", "other"), Prompts: []json.RawMessage{prompt("p")}},
	)
	tests := []struct {
		name   string
		routed bool
	}{{"keep", true}, {"drop", false}, {"clash", false}, {"other", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ok := s.Tool(tt.name)
			assert.Equal(t, tt.routed, ok)
		})
	}
	entries, _ := listAll(t, s, Tools)
	require.Len(t, entries, 2)
	assert.Equal(t, []string{"keep", "other"}, s.Names(Tools))
	assert.Equal(t, 1, s.Len(Prompts), "prompts are not selected")
	require.Len(t, problems, 1)
	assert.Equal(t, CauseNameClash, problems[0].Cause, "a's clash holds the name as it does without Select")
}
