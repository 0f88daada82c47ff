package packet

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// Checks [MQTT-1.5.5-1].
func TestVarint(t *testing.T) {
	cases := []struct {
		v   uint32
		hex string
	}{
		{0, "00"},
		{127, "7f"},
		{128, "80 01"},
		{16383, "ff 7f"},
		{16384, "80 80 01"},
		{2097151, "ff ff 7f"},
		{2097152, "80 80 80 01"},
		{268435455, "ff ff ff 7f"},
	}
	for _, c := range cases {
		want := unhex(t, c.hex)
		if got := AppendVarint([]byte{0xAA}, c.v); !bytes.Equal(got, append([]byte{0xAA}, want...)) {
			t.Errorf("AppendVarint(%d) = % x, want aa % x", c.v, got, want)
		}
		if n := VarintLen(c.v); n != len(want) {
			t.Errorf("VarintLen(%d) = %d, want %d", c.v, n, len(want))
		}
		if v, n := ConsumeVarint(append(want, 0xFF)); v != c.v || n != len(want) {
			t.Errorf("ConsumeVarint(% x) = %d, %d", want, v, n)
		}
		if v, n, err := readVarint(bytes.NewReader(want)); v != c.v || n != len(want) || err != nil {
			t.Errorf("readVarint(% x) = %d, %d, %v", want, v, n, err)
		}
		// Truncated: every proper prefix is incomplete.
		for i := range len(want) {
			if _, n := ConsumeVarint(want[:i]); n != 0 {
				t.Errorf("ConsumeVarint(% x) n = %d, want 0", want[:i], n)
			}
			if _, _, err := readVarint(bytes.NewReader(want[:i])); err != io.ErrUnexpectedEOF {
				t.Errorf("readVarint(% x) err = %v", want[:i], err)
			}
		}
	}
}

func TestVarintFiveBytes(t *testing.T) {
	for _, s := range []string{"80 80 80 80 01", "ff ff ff ff 7f", "ff ff ff ff"} {
		b := unhex(t, s)
		if _, n := ConsumeVarint(b); n >= 0 && len(b) == 5 {
			t.Errorf("ConsumeVarint(% x) n = %d, want < 0", b, n)
		}
		if len(b) == 5 {
			if _, _, err := readVarint(bytes.NewReader(b)); !errors.Is(err, MalformedPacket) {
				t.Errorf("readVarint(% x) err = %v", b, err)
			}
			// The fixed header of a packet, through ReadPacket.
			r := bufio.NewReader(bytes.NewReader(append([]byte{0x30}, b...)))
			if _, err := ReadPacket(r, V311, 0); !errors.Is(err, MalformedPacket) {
				t.Errorf("ReadPacket(30 % x) err = %v", b, err)
			}
		}
	}
}

func TestAppendVarintPanicsAboveMax(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	AppendVarint(nil, MaxVarint+1)
}
