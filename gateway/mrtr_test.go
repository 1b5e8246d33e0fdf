package gateway

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// TestRequestStateBinding seals a state and opens it as every caller that
// must be refused: another principal, tool, method or upstream, too late,
// or a replica with another key.
func TestRequestStateBinding(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	now := base
	clock := func() time.Time { return now }
	mt, err := newMRTR(make([]byte, 32), time.Minute, time.Minute, clock)
	require.NoError(t, err)
	otherKey := make([]byte, 32)
	otherKey[0] = 1
	other, err := newMRTR(otherKey, time.Minute, time.Minute, clock)
	require.NoError(t, err)

	upState := "upstream-state"
	tg := target{upstream: "pay", name: "pay__approve"}
	sealed := mt.sealState(&sealedState{Owner: "iss\x00alice", Upstream: "pay", Name: "pay__approve", Method: "tools/call", State: &upState})
	assert.NotContains(t, string(sealed), upState)

	st, rerr := mt.openState(sealed, "iss\x00alice", &tg, "tools/call")
	require.Nil(t, rerr)
	require.NotNil(t, st.State)
	assert.Equal(t, upState, *st.State)

	tests := []struct {
		name   string
		mt     *mrtr
		owner  string
		t      target
		method string
		at     time.Time
		want   string
	}{
		{"another principal", mt, "iss\x00mallory", tg, "tools/call", base, "another principal"},
		{"anonymous", mt, "", tg, "tools/call", base, "another principal"},
		{"another tool", mt, "iss\x00alice", target{upstream: "pay", name: "pay__refund"}, "tools/call", base, "another request"},
		{"another method", mt, "iss\x00alice", tg, "prompts/get", base, "another request"},
		{"moved upstream", mt, "iss\x00alice", target{upstream: "pay2", name: "pay__approve"}, "tools/call", base, "another upstream"},
		{"expired", mt, "iss\x00alice", tg, "tools/call", base.Add(2 * time.Minute), "expired"},
		{"other key", other, "iss\x00alice", tg, "tools/call", base, "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case must differ from the genuine request in at least one
			// bound field, or its refusal would be a bug and not a check.
			genuine := tt.mt == mt && tt.owner == "iss\x00alice" && tt.t.upstream == tg.upstream &&
				tt.t.name == tg.name && tt.method == "tools/call" && !tt.at.After(base.Add(time.Minute))
			require.False(t, genuine, "the case differs from the genuine request")
			now = tt.at
			t.Cleanup(func() { now = base })
			_, rerr := tt.mt.openState(sealed, tt.owner, &tt.t, tt.method)
			require.NotNil(t, rerr)
			assert.Equal(t, mcpwire.CodeInvalidParams, rerr.Code)
			assert.Contains(t, rerr.Message, tt.want)
		})
	}
}

func FuzzOpenState(f *testing.F) {
	mt, err := newMRTR(make([]byte, 32), time.Minute, time.Minute, time.Now)
	require.NoError(f, err)
	f.Add(string(mt.sealState(&sealedState{Owner: "a", Upstream: "u", Name: "n", Method: "tools/call"})))
	f.Add(`"g1."`)
	f.Add(`"g1.AAAA"`)
	f.Add(`42`)
	f.Fuzz(func(t *testing.T, raw string) {
		_, _ = mt.openState([]byte(raw), "a", &target{upstream: "u", name: "n"}, "tools/call")
	})
}
