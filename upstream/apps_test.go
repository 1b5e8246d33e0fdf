package upstream

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDeclareUI(t *testing.T) {
	t.Parallel()
	const ui = `"io.modelcontextprotocol/ui":{"mimeTypes":["text/html;profile=mcp-app"]}`
	tests := []struct {
		name, caps, want string
	}{
		{"none", ``, ``},
		{"empty", ` { } `, ``},
		{"not an object", `[]`, ``},
		{"other capabilities", `{"elicitation":{}}`, `{"extensions":{` + ui + `},"elicitation":{}}`},
		{"other extensions", `{"extensions":{"x.example/y":{}},"roots":{}}`, `{"extensions":{` + ui + `,"x.example/y":{}},"roots":{}}`},
		{"empty extensions", `{"extensions":{ }}`, `{"extensions":{` + ui + ` }}`},
		{
			"declared by the host: its own settings", `{"extensions":{"io.modelcontextprotocol/ui":{"mimeTypes":["text/html;profile=mcp-app","x/y"]}}}`,
			`{"extensions":{"io.modelcontextprotocol/ui":{"mimeTypes":["text/html;profile=mcp-app","x/y"]}}}`,
		},
		{"extensions not an object: relayed", `{"extensions":true}`, `{"extensions":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := declareUI([]byte(tt.caps))
			assert.Equal(t, tt.want, string(got))
			if len(got) > 0 {
				require.True(t, json.Valid(got), string(got))
			}
		})
	}
	for _, c := range []string{sessionCapabilities, gatewayCapabilities} {
		require.True(t, json.Valid([]byte(c)), c)
		var v struct {
			Extensions map[string]struct {
				MimeTypes []string `json:"mimeTypes"`
			} `json:"extensions"`
		}
		require.NoError(t, json.Unmarshal([]byte(c), &v))
		assert.Equal(t, []string{"text/html;profile=mcp-app"}, v.Extensions["io.modelcontextprotocol/ui"].MimeTypes, c)
	}
}
