package catalog

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// dump renders a snapshot and its problems as text for golden files.
func dump(t *testing.T, s *Snapshot, problems []Problem) []byte {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "version %d\n", s.Version())
	b.WriteString("\nupstreams:\n")
	for _, u := range s.Upstreams() {
		fmt.Fprintf(&b, "  %+v\n", u)
	}
	b.WriteString("\nproblems:\n")
	for _, p := range problems {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	for k := range Kind(numKinds) {
		fmt.Fprintf(&b, "\n%s (%d):\n", k, s.Len(k))
		for _, name := range s.Names(k) {
			var r Route
			var ok bool
			switch k {
			case Tools:
				r, ok = s.Tool(name)
			case Prompts:
				r, ok = s.Prompt(name)
			case Resources:
				r, ok = s.Resource(name)
			case ResourceTemplates:
				fmt.Fprintf(&b, "  %s\n", name)
				continue
			}
			require.True(t, ok, name)
			fmt.Fprintf(&b, "  %s -> %s %q\n", name, r.Upstream, r.Name)
		}
		cursor := ""
		for page := 0; ; page++ {
			p, err := s.Page(k, cursor)
			require.NoError(t, err)
			fmt.Fprintf(&b, "  page %d: %s\n", page, p)
			var result struct {
				NextCursor string `json:"nextCursor"`
			}
			require.NoError(t, json.Unmarshal(p, &result))
			if result.NextCursor == "" {
				break
			}
			cursor = result.NextCursor
		}
	}
	return []byte(b.String())
}

// TestMergeGolden merges the demo upstreams, with one down, a bare prefix,
// a collision, a filter and shared resources, and compares the result with
// testdata/merge.golden.
func TestMergeGolden(t *testing.T) {
	opts := Options{Separator: "__", NamePattern: namePattern, PageSize: 3}
	raw := func(s ...string) []json.RawMessage {
		out := make([]json.RawMessage, len(s))
		for i := range s {
			out[i] = json.RawMessage(s[i])
		}
		return out
	}
	sources := []Source{
		{
			Upstream: "customers", Prefix: "customers", Available: true,
			Tools: raw(
				`{"name":"get_customer","description":"Get one customer.","inputSchema":{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}}`,
				`{"name":"search_customers","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`,
				`{"name":"delete_customer","inputSchema":{"type":"object"},"annotations":{"destructiveHint":true}}`,
			),
			Exclude:           []string{"delete_*"},
			Resources:         raw(`{"uri":"customer://index","name":"index"}`, `{"uri":"customer://schema","name":"schema"}`),
			ResourceTemplates: raw(`{"uriTemplate":"customer://{id}","name":"customer"}`),
			Prompts:           raw(`{"name":"summarize","arguments":[{"name":"id"}]}`),
		},
		{
			Upstream: "orders", Prefix: "orders", Available: true,
			Tools: raw(
				`{"name":"get_order","inputSchema":{"type":"object"}}`,
				`{"name":"cancel_order","inputSchema":{"type":"object"},"_meta":{"name":"kept"}}`,
				`{"name":"list.orders","inputSchema":{"type":"object"}}`,
			),
			Resources:         raw(`{"uri":"customer://index","name":"orders by customer"}`),
			ResourceTemplates: raw(`{"uriTemplate":"order://{id}{?expand}","name":"order"}`, `{"uriTemplate":"customer://{id}","name":"orders of customer"}`),
		},
		{
			Upstream: "search", Prefix: "", Available: true,
			Tools: raw(`{"name":"search","inputSchema":{"type":"object"}}`, `{"name":"orders__get_order","inputSchema":{"type":"object"}}`),
		},
		{
			Upstream: "payments", Prefix: "payments", Available: false,
			Tools:     raw(`{"name":"refund","inputSchema":{"type":"object"}}`),
			Resources: raw(`{"uri":"customer://schema","name":"payment schema"}`),
		},
		{Upstream: "ledger", Prefix: "ledger", Available: false},
	}
	s, problems := build(t, opts, sources...)
	golden(t, "merge.golden", dump(t, s, problems))
}
