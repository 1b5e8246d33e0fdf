package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fullRecord() *Record {
	return &Record{
		Time:          time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		Event:         EventToolsCall,
		RequestID:     "req-1",
		TraceID:       "4bf92f3577b34da6a3ce929d0e0e4736",
		SessionID:     "sess-1",
		Endpoint:      "/mcp/support",
		Subject:       "alice@example.com",
		Issuer:        "https://idp.example.com",
		ClientID:      "claude",
		Tool:          "payments__refund_payment",
		Upstream:      "payments",
		UpstreamTool:  "refund_payment",
		Decision:      DecisionAllowed,
		Rule:          "",
		Outcome:       OutcomeToolError,
		ErrorCode:     -32603,
		LatencyMicros: 1534,
		ServerName:    "payments-mcp",
		ServerVersion: "1.2.3",
		ArgsSHA256:    CanonicalSHA256(json.RawMessage(`{"id":"p_1","amount":5}`)),
		Args:          json.RawMessage("{\n  \"id\": \"p_1\",\n  \"amount\": 5\n}"),
	}
}

// decode parses one encoded record into generic values.
func decode(tb testing.TB, line []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal(line, &m), "%s", line)
	return m
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()

	expires := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		rec  *Record
	}{
		{name: "tools/call", rec: fullRecord()},
		{name: "minimal", rec: &Record{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Event: EventToolsCall}},
		{name: "refused", rec: &Record{
			Time: time.Unix(1, 0).UTC(), Event: EventToolsCall, Subject: "bob", Tool: "t", Decision: DecisionLimited,
			Rule: "per_principal", ErrorCode: -32029,
		}},
		{name: "kill switch", rec: &Record{
			Time: time.Unix(2, 5).UTC(), Event: EventKillSwitch, Action: "add", SwitchID: "ks-1", Scope: "tool",
			Target: "payments__refund_*", Reason: "fraud \"spike\"\n", Ticket: "INC-7", Actor: "alice", Expires: expires,
		}},
		{name: "reload", rec: &Record{
			Time: time.Unix(3, 0).UTC(), Event: EventConfigReload, Action: "rejected",
			Detail: map[string]string{"error": "upstreams[0].name: required", "sha256": "abc", "<b>": "\u2028\x00"},
		}},
		{name: "escapes", rec: &Record{
			Time: time.Unix(4, 0).UTC(), Event: EventToolsCall, Subject: "tab\there \\ \"quoted\" \x01\x1f <script>&",
			Tool: "invalid \xff utf8 \u2029 ünïcode 😀",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got := tt.rec.AppendJSON(nil)
			assert.NotContains(t, string(got), "\n", "one line")
			want, err := json.Marshal(tt.rec)
			require.NoError(t, err)
			assert.Equal(t, decode(t, want), decode(t, got))
		})
	}
}

func TestAppendJSONText(t *testing.T) {
	t.Parallel()

	r := &Record{
		Time:    time.Date(2026, 3, 1, 12, 0, 0, 500, time.FixedZone("CET", 3600)),
		Event:   EventToolsCall,
		Subject: "a\"b",
		Args:    json.RawMessage(`{"a": [1, 2]}`),
	}
	assert.Equal(t, `{"time":"2026-03-01T11:00:00.0000005Z","event":"tools/call","subject":"a\"b","args":{"a":[1,2]}}`, string(r.AppendJSON(nil))) //nolint:testifylint // the hand-written encoder's exact bytes (key order, compaction) are under test

	r.Args = json.RawMessage(`{"a":`)
	assert.Equal(t, `{"time":"2026-03-01T11:00:00.0000005Z","event":"tools/call","subject":"a\"b","args_invalid":true}`, string(r.AppendJSON(nil))) //nolint:testifylint // the hand-written encoder's exact bytes are under test
}

// FuzzAppendJSON checks the hand-written encoder against encoding/json:
// both encodings decode to the same values.
func FuzzAppendJSON(f *testing.F) {
	f.Add("alice", "payments__refund", "a\"b\\c\n", `{"x":[1,2.5,"y"]}`, int64(1700000000123456789), -32603, int64(12))
	f.Add("\xff\xfe", "\u2028", "\x00\x1f<>&", ``, int64(0), 0, int64(0))
	f.Add("😀", "t", "r", "  [ ]  ", int64(-1), 1, int64(-5))
	f.Fuzz(func(t *testing.T, subject, tool, reason, args string, nanos int64, code int, latency int64) {
		r := &Record{
			Time:          time.Unix(0, nanos).UTC(),
			Event:         EventToolsCall,
			Subject:       subject,
			Tool:          tool,
			Reason:        reason,
			Rule:          subject + tool,
			ErrorCode:     code,
			LatencyMicros: latency,
			Detail:        map[string]string{subject: reason, "k": tool},
		}
		if json.Valid([]byte(args)) {
			r.Args = json.RawMessage(args)
		}
		got := r.AppendJSON(nil)
		require.True(t, json.Valid(got), "%q", got)
		assert.NotContains(t, string(got), "\n")
		want, err := json.Marshal(r)
		require.NoError(t, err)
		assert.Equal(t, decode(t, want), decode(t, got))
	})
}

func BenchmarkAuditEncode(b *testing.B) {
	r := fullRecord()
	r.Args = json.RawMessage(`{"id":"p_1","amount":5}`)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
}
