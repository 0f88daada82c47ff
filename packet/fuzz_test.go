package packet

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// errClass names the kind of a decode error, so that two decoders can be
// compared; "" for nil and "?" for an error of no allowed kind.
func errClass(err error) string {
	switch {
	case err == nil:
		return ""
	case err == io.EOF:
		return "EOF"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	}
	for _, c := range []ReasonCode{MalformedPacket, ProtocolError, PacketTooLarge, UnsupportedProtocolVersion} {
		if errors.Is(err, c) {
			return c.Error()
		}
	}
	return "?"
}

// FuzzDecode: DecodeBytes never panics and fails only with the documented
// errors; ReadPacket agrees with it; and whatever decodes re-encodes, with
// the same version, to bytes that decode to an identical packet.
func FuzzDecode(f *testing.F) {
	for _, v := range versions {
		for _, s := range samples(v) {
			b, err := s.p.Append(nil, v)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, v, uint32(0))
			if _, ok := s.p.(*Connect); ok {
				f.Add(b, byte(0), uint32(0))
			}
		}
	}
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, V311, uint32(0))
	f.Add(frame(0x10, unhex(f, "00 04 4d 51 54 54 06 02 00 3c 00 01 63")), byte(0), uint32(0))
	f.Add(frame(0x30, unhex(f, "00 01 74 05 01 01 02 00 00")), V5, uint32(0))
	f.Add(frame(0x30, unhex(f, "00 01 74 00 68 69")), V5, uint32(8))

	f.Fuzz(func(t *testing.T, b []byte, v byte, maxSize uint32) {
		v = [...]byte{0, V31, V311, V5}[v%4]
		p, n, err := DecodeBytes(b, v, maxSize)
		class := errClass(err)
		if class == "?" {
			t.Fatalf("DecodeBytes: error of no documented kind: %v", err)
		}
		if p != nil && err != nil && !errors.Is(err, UnsupportedProtocolVersion) {
			t.Fatalf("DecodeBytes returned a packet with error %v", err)
		}
		if err == nil && (n <= 0 || n > len(b) || (maxSize != 0 && n > int(maxSize))) {
			t.Fatalf("DecodeBytes consumed %d of %d bytes (max %d)", n, len(b), maxSize)
		}

		// ReadPacket, through a small buffer so bodies are both read in
		// place and allocated, must agree.
		p2, err2 := ReadPacket(bufio.NewReaderSize(bytes.NewReader(b), 16), v, maxSize)
		if c2 := errClass(err2); c2 != class {
			t.Fatalf("DecodeBytes error %v, ReadPacket error %v", err, err2)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("DecodeBytes %#v, ReadPacket %#v", p, p2)
		}
		if err != nil {
			return
		}

		out, err := p.Append(nil, v)
		if err != nil {
			t.Fatalf("Append of a decoded %T: %v", p, err)
		}
		p3, n3, err := DecodeBytes(out, v, 0)
		if err != nil {
			t.Fatalf("DecodeBytes of re-encoded % x: %v", out, err)
		}
		if n3 != len(out) {
			t.Fatalf("re-encoded packet is %d bytes, decoded %d", len(out), n3)
		}
		if !reflect.DeepEqual(p, p3) {
			t.Fatalf("round trip changed the packet:\n got %#v\nwant %#v", p3, p)
		}
		if pub, ok := p.(*Publish); ok && pub.Size(v) != len(out) {
			t.Fatalf("Size %d, Append wrote %d", pub.Size(v), len(out))
		}
	})
}
