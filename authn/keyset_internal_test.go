package authn

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestKeySetTTL(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		cc   []string
		age  string
		want time.Duration
	}{
		{name: "none", want: defaultKeySetTTL},
		{name: "max-age", cc: []string{"public, max-age=3600"}, want: time.Hour},
		{name: "upper case, quoted", cc: []string{`Max-Age="600"`}, want: 10 * time.Minute},
		{name: "second header", cc: []string{"public", "max-age=120"}, want: 2 * time.Minute},
		{name: "less its age", cc: []string{"max-age=3600"}, age: "600", want: 50 * time.Minute},
		{name: "older than max-age", cc: []string{"max-age=60"}, age: "600", want: time.Second},
		{name: "below the interval", cc: []string{"max-age=0"}, want: defaultKeySetTTL},
		{name: "one second, interval floor", cc: []string{"max-age=1"}, want: time.Second},
		{name: "capped", cc: []string{"max-age=31536000"}, want: maxKeySetTTL},
		{name: "huge", cc: []string{"max-age=99999999999999999999"}, want: defaultKeySetTTL},
		{name: "no-cache", cc: []string{"no-cache"}, want: defaultKeySetTTL},
		{name: "no-store", cc: []string{"no-store, must-revalidate"}, want: defaultKeySetTTL},
		{name: "garbage", cc: []string{"max-age=soon"}, want: defaultKeySetTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for _, v := range tt.cc {
				h.Add("Cache-Control", v)
			}
			if tt.age != "" {
				h.Set("Age", tt.age)
			}
			assert.Equal(t, tt.want, keySetTTL(h, time.Second))
		})
	}
}
