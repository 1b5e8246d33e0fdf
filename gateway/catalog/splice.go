package catalog

import (
	"bytes"

	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// The functions here find one top-level string member of a raw JSON object
// (a tool's "name", a resource's "uri") and splice a new value in its place,
// so every other byte of the upstream's object reaches the host unchanged:
// key order, whitespace, schemas, annotations and members this gateway does
// not know about.

// member is the located top-level string member of one item.
type member struct {
	obj        []byte // the object, without surrounding whitespace
	start, end int    // span of the member's value in obj, quotes included
	value      string // the decoded value
}

// findMember validates raw as a JSON object and locates its top-level
// member key, which must be a string. Validation is rawjson's: syntax,
// encoding/json's depth limit (a deeper item would make a Go host reject
// the whole page) and no duplicate member name at any depth (with two
// "name" members, hosts disagree about which one counts, so such an item
// cannot be renamed safely). Keys are compared after decoding escapes, as
// a JSON parser on the host would, and nested objects with a member of the
// same name are skipped. Validation and search are one pass over the bytes.
func findMember(raw []byte, key string) (member, error) {
	obj := bytes.TrimRight(raw[rawjson.SkipSpace(raw, 0):], " \t\r\n")
	var fb [16]rawjson.Field
	fields, err := rawjson.ValidateObject(obj, rawjson.Limits{}, fb[:0])
	if err != nil {
		return member{}, err
	}
	for _, f := range fields {
		if !rawjson.StringIs(obj[f.Key.Start:f.Key.End], key) {
			continue
		}
		value, ok := rawjson.DecodeString(obj[f.Value.Start:f.Value.End])
		if !ok {
			return member{}, errNotString
		}
		return member{obj: obj, start: f.Value.Start, end: f.Value.End, value: value}, nil
	}
	return member{}, errMissingMember
}

// appendReplaced appends m's object to dst with the member's value replaced
// by the JSON encoding of value.
func (m member) appendReplaced(dst []byte, value string) []byte {
	dst = append(dst, m.obj[:m.start]...)
	dst = rawjson.AppendString(dst, value)
	return append(dst, m.obj[m.end:]...)
}

// rename returns the JSON object raw with its top-level "name" replaced by
// name, and the original name.
func rename(raw []byte, name string) ([]byte, string, error) {
	m, err := findMember(raw, "name")
	if err != nil {
		return nil, "", err
	}
	return m.appendReplaced(make([]byte, 0, len(m.obj)+len(name)+8), name), m.value, nil
}
