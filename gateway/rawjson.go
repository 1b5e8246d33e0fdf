package gateway

import (
	"encoding/json"

	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// The helpers here read and edit one top-level member of a raw JSON object
// without decoding the rest, so arguments and results are forwarded byte
// for byte. They trust their input (the envelope was validated once, by
// parseMessage) and delegate to internal/rawjson; they are kept so that
// the call path need not change while it is being rewritten, and are to
// be inlined.

// member returns the raw value of the top-level member key, or nil; nil
// too when the member is ambiguous (twice, or also spelt in another case),
// so the gateway never checks one value while the upstream uses another.
func member(obj []byte, key string) json.RawMessage { return rawjson.Member(obj, key) }

// replaceMember returns a copy of obj with the value of the top-level member
// key replaced by value. It reports false when member would return nil.
func replaceMember(obj []byte, key string, value []byte) ([]byte, bool) {
	return rawjson.ReplaceMember(obj, key, value)
}

// stringMember returns the string value of obj's member key; false when it
// is missing or not a string.
func stringMember(obj json.RawMessage, key string) (string, bool) {
	return rawjson.DecodeString(rawjson.Member(obj, key))
}

// decodeString decodes the JSON string raw; false when raw is not one.
func decodeString(raw []byte) (string, bool) { return rawjson.DecodeString(raw) }

// stringIs reports whether raw is a JSON string whose value is want,
// without allocating when raw has no escapes.
func stringIs(raw []byte, want string) bool { return rawjson.StringIs(raw, want) }

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int { return rawjson.SkipSpace(b, i) }
