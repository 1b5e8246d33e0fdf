package catalog

import (
	"encoding/base64"
	"encoding/binary"
)

// A cursor is 15 bytes, base64url-encoded without padding into 20
// characters:
//
//	[0]      format, cursorFormat
//	[1]      Kind of the list
//	[2:10]   snapshot version, big-endian
//	[10:14]  offset of the page's first entry, big-endian
//	[14]     check byte: the low byte of FNV-1a over bytes 0..13
//
// The check byte catches most garbling; the kind keeps a tools cursor out of
// prompts/list. Hosts must treat cursors as opaque.
const (
	cursorFormat = 1
	cursorBytes  = 15
	cursorChars  = 20 // base64.RawURLEncoding.EncodedLen(cursorBytes)
)

// encodeCursor returns the cursor of the page of kind k starting at offset.
func encodeCursor(k Kind, version uint64, offset int) string {
	var b [cursorBytes]byte
	b[0] = cursorFormat
	b[1] = byte(k)
	binary.BigEndian.PutUint64(b[2:10], version)
	binary.BigEndian.PutUint32(b[10:14], uint32(offset)) //nolint:gosec // an offset into one list, far below 2^32 items.
	b[14] = checkByte(b[:14])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// decodeCursor parses a cursor made by encodeCursor. It does not allocate.
func decodeCursor(c string) (k Kind, version uint64, offset int, ok bool) {
	if len(c) != cursorChars {
		return 0, 0, 0, false
	}
	var b [cursorBytes]byte
	for i, j := 0, 0; i < cursorChars; i, j = i+4, j+3 {
		var v uint32
		for _, ch := range []byte(c[i : i+4]) {
			d := base64URLValue(ch)
			if d == 0xff {
				return 0, 0, 0, false
			}
			v = v<<6 | uint32(d)
		}
		b[j], b[j+1], b[j+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	if b[0] != cursorFormat || b[14] != checkByte(b[:14]) || !Kind(b[1]).Valid() { //nolint:gosec // b is [cursorBytes]byte; 14 is in range.
		return 0, 0, 0, false
	}
	return Kind(b[1]), binary.BigEndian.Uint64(b[2:10]), int(binary.BigEndian.Uint32(b[10:14])), true
}

// checkByte is the low byte of the 32-bit FNV-1a hash of b.
func checkByte(b []byte) byte {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return byte(h)
}

// base64URLValue maps a base64url character to its value, others to 0xff.
func base64URLValue(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A'
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26
	case '0' <= c && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	default:
		return 0xff
	}
}
