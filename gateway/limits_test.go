package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHeaderExcess(t *testing.T) {
	tests := []struct {
		name   string
		host   string
		header http.Header
		want   string // "" for none
	}{
		{name: "none", want: ""},
		{name: "at the count, Host included", host: "h", header: http.Header{"A": {"1"}, "B": {"1", "2"}}, want: ""},
		{name: "a repeated field counts each time", host: "h", header: http.Header{"A": {"1"}, "B": {"1", "2", "3"}}, want: "too many header fields: 5, more than 4"},
		// "A: " + 91 bytes + CRLF = 96, "Host: h\r\n" = 9.
		{name: "at the size", host: "h", header: http.Header{"A": {strings.Repeat("x", 91)}}, want: ""},
		{name: "over the size", host: "h", header: http.Header{"A": {strings.Repeat("x", 92)}}, want: "header fields too large: 106 bytes, more than 105"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Host: tt.host, Header: tt.header}
			rerr := headerExcess(r, 105, 4)
			if tt.want == "" {
				assert.Nil(t, rerr)
				return
			}
			if assert.NotNil(t, rerr) {
				assert.Equal(t, -32600, rerr.Code)
				assert.Contains(t, rerr.Message, tt.want)
			}
		})
	}
}
