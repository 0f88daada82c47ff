package packet

import "io"

// MaxVarint is the largest Variable Byte Integer (four bytes of seven bits),
// and so the largest remaining length a packet can declare.
const MaxVarint = 268435455

// VarintLen returns the number of bytes AppendVarint writes for v
// (1 to 4). v must not exceed MaxVarint.
func VarintLen(v uint32) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<21:
		return 3
	default:
		return 4
	}
}

// AppendVarint appends v as an MQTT Variable Byte Integer: seven bits per
// byte, least significant group first, high bit set while more follow.
// v must not exceed MaxVarint; a larger value is a programming error (the
// packet encoders check sizes before appending) and panics.
func AppendVarint(dst []byte, v uint32) []byte {
	if v > MaxVarint {
		panic("packet: AppendVarint: value exceeds MaxVarint")
	}
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// ConsumeVarint decodes a Variable Byte Integer from the start of b.
// n is the number of bytes used; n == 0 means b ended inside the integer and
// n < 0 means a fifth byte was needed, which is malformed: four is the
// maximum. Non-minimal encodings (0x80 0x00 for 0) are accepted, as 3.1.1
// does not forbid them and rejecting them gains nothing.
func ConsumeVarint(b []byte) (v uint32, n int) {
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0
		}
		v |= uint32(b[i]&0x7F) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}

// readVarint reads the remaining length from r. io.EOF inside the integer
// becomes io.ErrUnexpectedEOF: the fixed header byte was already read.
func readVarint(r io.ByteReader) (v uint32, n int, err error) {
	for i := 0; i < 4; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, i, err
		}
		v |= uint32(c&0x7F) << (7 * i)
		if c < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 4, errf(MalformedPacket, "remaining length has a fifth byte; the maximum is four")
}
