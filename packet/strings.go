package packet

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// maxString is the longest UTF-8 string or binary field: its length prefix
// is a two byte integer.
const maxString = 65535

// asciiNoNUL reports whether b is all ASCII without U+0000, the common
// case for topics and identifiers, checking eight bytes per step so that
// only other strings pay for full UTF-8 validation.
func asciiNoNUL[T string | []byte](b T) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		c := b[i : i+8]
		w := uint64(c[0]) | uint64(c[1])<<8 | uint64(c[2])<<16 | uint64(c[3])<<24 |
			uint64(c[4])<<32 | uint64(c[5])<<40 | uint64(c[6])<<48 | uint64(c[7])<<56
		// High bit set: not ASCII. (w-lo)&^w&hi: some byte is zero.
		if (w|(w-lo)&^w)&hi != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] == 0 || b[i] >= 0x80 {
			return false
		}
	}
	return true
}

// stringProblem says what is wrong with the bytes of a UTF-8 Encoded String,
// or returns "" when there is nothing wrong. The same rules apply to every
// protocol level, 3.1 included.
func stringProblem(b []byte) string {
	if asciiNoNUL(b) {
		return ""
	}
	// [MQTT-1.5.3-2] A string must not include the null character U+0000.
	if bytes.IndexByte(b, 0) >= 0 {
		return "contains U+0000"
	}
	// [MQTT-1.5.3-1] A string must be well-formed UTF-8; Go's validator also
	// rejects the encodings of surrogates U+D800..U+DFFF, as the spec asks.
	if !utf8.Valid(b) {
		return "is not well-formed UTF-8"
	}
	return ""
}

// stringProblemS is stringProblem for a Go string (encoding side).
func stringProblemS(s string) string {
	if asciiNoNUL(s) {
		return ""
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "contains U+0000"
	}
	if !utf8.ValidString(s) {
		return "is not well-formed UTF-8"
	}
	return ""
}

// stringSize checks that s can be written as a UTF-8 Encoded String and
// returns its encoded size. Append refuses a string the peer would reject as
// malformed rather than send it.
func stringSize(t Type, what, s string) (int, error) {
	if len(s) > maxString {
		return 0, errf(MalformedPacket, "%s %s: %d bytes exceeds the %d a string can hold", t, what, len(s), maxString)
	}
	if p := stringProblemS(s); p != "" {
		return 0, errf(MalformedPacket, "%s %s %s", t, what, p)
	}
	return 2 + len(s), nil
}

// binarySize checks that b fits a Binary Data field and returns its encoded size.
func binarySize(t Type, what string, b []byte) (int, error) {
	if len(b) > maxString {
		return 0, errf(MalformedPacket, "%s %s: %d bytes exceeds the %d binary data can hold", t, what, len(b), maxString)
	}
	return 2 + len(b), nil
}

func appendUint16(dst []byte, v uint16) []byte {
	return append(dst, byte(v>>8), byte(v))
}

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendString appends a length-prefixed string already checked by stringSize.
func appendString(dst []byte, s string) []byte {
	return append(appendUint16(dst, uint16(len(s))), s...)
}

// appendBinary appends length-prefixed binary data already checked by binarySize.
func appendBinary(dst []byte, b []byte) []byte {
	return append(appendUint16(dst, uint16(len(b))), b...)
}
