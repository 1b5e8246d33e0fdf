// Package rawjson is mcpgw's one raw-JSON scanner: it reads and edits JSON
// as bytes, without decoding it into Go values, so the gateway forwards
// arguments and results byte for byte and spends no reflection on them.
//
// It has two entries and one encoder:
//
//   - Validate and ValidateObject check untrusted bytes (a request body, an
//     upstream's catalog): syntax, nesting depth, size and duplicate member
//     names, with errors that say which rule broke and where.
//   - The trusting functions (Member, MemberSpan, ReplaceMember,
//     EachMember, EachElement, SkipValue, SkipSpace, DecodeString,
//     StringIs, IsNull, IsTrue) read bytes that are valid already. They are
//     the hot path: they jump from quote to quote and allocate nothing to
//     find a member.
//   - AppendString (encoding/json's rules) and AppendStringJCS (RFC 8785's)
//     encode Go strings, with one escaping loop.
//
// It imports only the standard library, so every package of mcpgw may
// import it (test/deps checks both).
package rawjson
