package packet

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"runtime"
	"testing"
	"unsafe"
)

// headerOnly serves a fixed header and then fails the test if anything
// more is read: it declares a body it does not have.
type headerOnly struct {
	t    *testing.T
	b    []byte
	done bool
}

func (r *headerOnly) Read(p []byte) (int, error) {
	if r.done {
		r.t.Error("ReadPacket read past the fixed header")
		return 0, io.EOF
	}
	r.done = true
	return copy(p, r.b), nil
}

func TestReadPacketTooLargeReadsNoBody(t *testing.T) {
	const declared = 200 << 20 // 200 MB
	hdr := AppendVarint([]byte{0x30}, declared)
	for _, v := range []byte{0, V311, V5} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ReadPacket(bufio.NewReader(&headerOnly{t: t, b: hdr}), v, 1<<20)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, PacketTooLarge) {
			t.Fatalf("v%d: err = %v, want PacketTooLarge", v, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
			t.Errorf("v%d: allocated %d bytes refusing the packet", v, grew)
		}
	}
	if _, _, err := DecodeBytes(hdr, V311, 1<<20); !errors.Is(err, PacketTooLarge) {
		t.Errorf("DecodeBytes: err = %v, want PacketTooLarge", err)
	}
}

// TestMaxSize checks that the limit counts the whole packet, fixed header
// included, and that 0 means no limit.
func TestMaxSize(t *testing.T) {
	b := enc(t, &Publish{Topic: "t", Payload: make([]byte, 200)}, V311) // 3-byte fixed header
	n := uint32(len(b))
	for _, c := range []struct {
		max uint32
		ok  bool
	}{{0, true}, {n, true}, {n + 1, true}, {n - 1, false}, {1, false}} {
		_, err := ReadPacket(bufio.NewReader(bytes.NewReader(b)), V311, c.max)
		_, _, err2 := DecodeBytes(b, V311, c.max)
		if c.ok != (err == nil) || c.ok != (err2 == nil) {
			t.Errorf("max %d: ReadPacket %v, DecodeBytes %v", c.max, err, err2)
		}
		if !c.ok && (!errors.Is(err, PacketTooLarge) || !errors.Is(err2, PacketTooLarge)) {
			t.Errorf("max %d: want PacketTooLarge, got %v, %v", c.max, err, err2)
		}
	}
}

func TestReadPacketEOF(t *testing.T) {
	if _, err := ReadPacket(bufio.NewReader(bytes.NewReader(nil)), V311, 0); err != io.EOF {
		t.Errorf("empty stream: err = %v, want io.EOF itself", err)
	}
	if _, _, err := DecodeBytes(nil, V311, 0); err != io.EOF {
		t.Errorf("DecodeBytes(nil): err = %v, want io.EOF", err)
	}
	for _, s := range []string{
		"30",                   // no remaining length
		"30 80",                // remaining length cut short
		"30 05 00 01",          // PUBLISH body cut short (allocated body)
		"82 06 00 01 00 01",    // SUBSCRIBE body cut short (body read in place)
		"10 ff ff 01 00 04 4d", // large CONNECT cut short
	} {
		b := unhex(t, s)
		if _, err := ReadPacket(bufio.NewReader(bytes.NewReader(b)), V311, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("ReadPacket(% x): err = %v, want io.ErrUnexpectedEOF", b, err)
		}
		if _, _, err := DecodeBytes(b, V311, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("DecodeBytes(% x): err = %v, want io.ErrUnexpectedEOF", b, err)
		}
	}
}

func TestReadPacketReadError(t *testing.T) {
	boom := errors.New("boom")
	r := bufio.NewReader(io.MultiReader(bytes.NewReader([]byte{0x30, 0x05}), &errReader{boom}))
	if _, err := ReadPacket(r, V311, 0); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the reader's error", err)
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

// TestReadPacketStream reads many packets back to back through a small
// buffer, so that both the in-place and the allocated body paths run, and
// checks that a packet decoded in place does not change when the buffer is
// reused by the next read.
func TestReadPacketStream(t *testing.T) {
	for _, v := range versions {
		var stream []byte
		var want []Packet
		for range 3 {
			for _, s := range samples(v) {
				stream, _ = s.p.Append(stream, v)
				want = append(want, s.p)
			}
		}
		for _, size := range []int{16, 64, 4096} {
			r := bufio.NewReaderSize(bytes.NewReader(stream), size)
			var got []Packet
			for {
				p, err := ReadPacket(r, v, 0)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("v%d size %d: packet %d: %v", v, size, len(got), err)
				}
				got = append(got, p)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("v%d size %d: stream did not round-trip", v, size)
			}
		}
	}
}

// TestReadPacketVersionZero: before CONNECT, CONNECT decodes by its own
// level and anything else as 3.1.1.
func TestReadPacketVersionZero(t *testing.T) {
	in := append(enc(t, &Connect{ProtocolLevel: 5, ClientID: "c", Properties: propsWith(0x11)}, V5),
		unhex(t, "40 02 00 07 40 03 00 07 10")...)
	r := bufio.NewReader(bytes.NewReader(in))
	p, err := ReadPacket(r, 0, 0)
	if err != nil || p.(*Connect).Properties.SessionExpiry == nil {
		t.Fatalf("CONNECT: %#v, %v", p, err)
	}
	if p, err = ReadPacket(r, 0, 0); err != nil || !reflect.DeepEqual(p, &Puback{PacketID: 7}) {
		t.Fatalf("PUBACK: %#v, %v", p, err)
	}
	// A v5 PUBACK with a reason code is malformed at 3.1.1.
	if _, err = ReadPacket(r, 0, 0); !errors.Is(err, MalformedPacket) {
		t.Fatalf("v5 PUBACK before CONNECT: %v", err)
	}
}

// TestDecodeAliasing checks that binary fields do not let an append
// overwrite the fields after them in the shared body.
func TestDecodeAliasing(t *testing.T) {
	p := &Connect{ProtocolLevel: 5, ClientID: "c",
		Will:         &Will{Topic: "t", Payload: []byte("will"), Properties: Properties{CorrelationData: []byte("cd"), ContentType: "ct"}},
		UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("pw")}
	b := enc(t, p, V5)
	orig := bytes.Clone(b)
	got, _, err := DecodeBytes(b, V5, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := got.(*Connect)
	_ = append(c.Will.Properties.CorrelationData, "XXXXXXXXXXXXXXXX"...)
	_ = append(c.Will.Payload, "XXXXXXXXXXXXXXXX"...)
	_ = append(c.Password, "XXXXXXXXXXXXXXXX"...)
	if !bytes.Equal(b, orig) {
		t.Errorf("appending to decoded fields changed the body:\n% x\nwant\n% x", b, orig)
	}
}

// TestDecodeAllocs pins the allocation budget of the hot decoders.
func TestDecodeAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts differ under coverage or -race")
	}
	cases := []struct {
		p          Packet
		v          byte
		max        float64
		what       string
		maxScratch float64 // with a Scratch
	}{
		// With a Scratch, the same topic again is the same string.
		{&Publish{QoS: 1, PacketID: 1, Topic: "a/b", Payload: []byte("x")}, V311, 3, "body, topic, struct", 1},
		{&Publish{QoS: 1, PacketID: 1, Topic: "a/b", Payload: []byte("x")}, V5, 3, "body, topic, struct", 1},
		{&Puback{PacketID: 1}, V311, 1, "struct", 0},
		{&Puback{PacketID: 1, ReasonCode: QuotaExceeded}, V5, 1, "struct", 0},
		{&Pubrel{PacketID: 1}, V311, 1, "struct", 0},
		{&Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a/+"}}}, V311, 3, "struct, slice, filter", 3},
		{&Pingreq{}, V311, 0, "nothing", 0},
	}
	for _, c := range cases {
		b := enc(t, c.p, c.v)
		rd := bytes.NewReader(b)
		r := bufio.NewReader(rd)
		var scratch Scratch
		for _, with := range []*Scratch{nil, &scratch} {
			n := testing.AllocsPerRun(100, func() {
				rd.Reset(b)
				r.Reset(rd)
				if _, err := readPacket(r, c.v, 0, nil, with); err != nil {
					t.Fatal(err)
				}
			})
			if with == nil && n > c.max {
				t.Errorf("ReadPacket %T v%d: %v allocs, want <= %v (%s)", c.p, c.v, n, c.max, c.what)
			}
			if with != nil && n > c.maxScratch {
				t.Errorf("ReadPacketScratch %T v%d: %v allocs, want <= %v", c.p, c.v, n, c.maxScratch)
			}
		}
	}
}

// TestReadPacketScratch reads every sample packet, back to back, through
// one Scratch, for one version after another (as a pooled Scratch serves
// connections of any version): each decodes as ReadPacket decodes it,
// and what a packet's fields held is still intact after the Scratch has
// been reused.
func TestReadPacketScratch(t *testing.T) {
	var scratch Scratch
	for _, v := range []byte{V5, V311, V5, V31} {
		var wire []byte
		ss := samples(v)
		for _, s := range ss {
			wire = append(wire, enc(t, s.p, v)...)
		}
		r := bufio.NewReader(bytes.NewReader(wire))
		kept := make([]Packet, len(ss))
		for i, s := range ss {
			got, err := ReadPacketScratch(r, v, 0, &scratch)
			if err != nil {
				t.Fatalf("v%d %s: %v", v, s.name, err)
			}
			if !reflect.DeepEqual(got, s.p) {
				t.Errorf("v%d %s:\n got %#v\nwant %#v", v, s.name, got, s.p)
			}
			// A copy of the packet itself, sharing what its fields hold.
			cp := reflect.New(reflect.TypeOf(got).Elem())
			cp.Elem().Set(reflect.ValueOf(got).Elem())
			kept[i] = cp.Interface().(Packet)
		}
		for i, s := range ss {
			if !reflect.DeepEqual(kept[i], s.p) {
				t.Errorf("v%d %s after reuse:\n got %#v\nwant %#v", v, s.name, kept[i], s.p)
			}
		}
	}
}

// chunkReader serves b at most n bytes per Read, as a network does.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[k:]
	return k, nil
}

// TestReadPacketLargeBodies: bodies that outgrow the reader's buffer and
// the first growth step decode whole, whatever the sizes the bytes arrive
// in, and their buffer is exactly the body (nothing appended to a field can
// reach the next).
func TestReadPacketLargeBodies(t *testing.T) {
	payload := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		return b
	}
	var ps []Packet
	for _, n := range []int{500, 4090, growStart, growStart + 1, 3*growStart + 5, 100 << 10, 1 << 20} {
		ps = append(ps, &Publish{QoS: 1, PacketID: 1, Topic: "big", Payload: payload(n)})
	}
	ps = append(ps,
		&Connect{ProtocolName: "MQTT", ProtocolLevel: 5, ClientID: "c", Will: &Will{Topic: "w", Payload: payload(10 << 10)},
			PasswordFlag: true, Password: payload(60 << 10)},
		&Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: string(bytes.Repeat([]byte("a/"), 5000)) + "b"}}})
	for _, p := range ps {
		wire := enc(t, p, V5)
		for _, chunk := range []int{1 << 30, 1000, 4096, 65536} {
			for _, size := range []int{16, 512, 4096} {
				r := bufio.NewReaderSize(&chunkReader{b: wire, n: chunk}, size)
				got, err := ReadPacket(r, V5, 0)
				if err != nil {
					t.Fatalf("%s of %d bytes, chunks %d, buffer %d: %v", p.Type(), len(wire), chunk, size, err)
				}
				if !reflect.DeepEqual(got, p) {
					t.Fatalf("%s of %d bytes, chunks %d, buffer %d: did not round-trip", p.Type(), len(wire), chunk, size)
				}
				if pub, ok := got.(*Publish); ok && cap(pub.Payload) != len(pub.Payload) {
					t.Fatalf("payload of %d bytes has capacity %d", len(pub.Payload), cap(pub.Payload))
				}
				if _, err := ReadPacket(r, V5, 0); err != io.EOF {
					t.Fatalf("after the packet: %v, want io.EOF", err)
				}
			}
		}
	}
}

// stalled serves b, then fails every read as a connection whose peer went
// quiet until the read deadline.
type stalled struct{ b []byte }

func (r *stalled) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	k := copy(p, r.b)
	r.b = r.b[k:]
	return k, nil
}

// TestReadPacketStalledBodyAllocatesLittle: a packet declared at the
// protocol's maximum (256 MB) whose sender stops after a few bytes costs
// about what was sent, not what was declared.
func TestReadPacketStalledBodyAllocatesLittle(t *testing.T) {
	const declared = 268435455
	for _, h := range []byte{0x10, 0x30, 0x82} { // CONNECT, PUBLISH, SUBSCRIBE
		for _, sent := range []int{0, 1, 511, 5000, 100 << 10} {
			in := append(AppendVarint([]byte{h}, declared), make([]byte, sent)...)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := ReadPacket(bufio.NewReaderSize(&stalled{in}, 512), V311, 0)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("%#x after %d bytes: err = %v, want the reader's", h, sent, err)
			}
			grew := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s stalled after %d body bytes: %d bytes allocated", Type(h>>4), sent, grew)
			if limit := uint64(4*sent + 16<<10); grew > limit {
				t.Errorf("%s stalled after %d body bytes: allocated %d bytes, want <= %d", Type(h>>4), sent, grew, limit)
			}
		}
	}
}

// TestReadPacketReserve: reserve is asked once, before the body is read,
// for the bytes not yet buffered, and only for bodies read into a buffer
// of their own; its refusal ends the read there.
func TestReadPacketReserve(t *testing.T) {
	no := errors.New("no")
	big := enc(t, &Publish{Topic: "t", Payload: make([]byte, 3000)}, V311) // 3-byte fixed header
	for _, c := range []struct {
		name string
		in   []byte
		want []int // what reserve is asked, in order
	}{
		{"small in place", enc(t, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a"}}}, V311), nil},
		{"small aliasing, all buffered", enc(t, &Publish{Topic: "t", Payload: []byte("x")}, V311), nil},
		{"large, 512 of it buffered", big, []int{len(big) - 512}},
	} {
		var asked []int
		p, err := ReadPacketReserve(bufio.NewReaderSize(bytes.NewReader(c.in), 512), V311, 0, func(n int) error {
			asked = append(asked, n)
			return nil
		})
		if err != nil || p == nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(asked, c.want) {
			t.Errorf("%s: reserve asked %v, want %v", c.name, asked, c.want)
		}
	}
	hdr := AppendVarint([]byte{0x10}, 200<<20)
	_, err := ReadPacketReserve(bufio.NewReader(&headerOnly{t: t, b: hdr}), 0, 0, func(int) error { return no })
	if !errors.Is(err, no) {
		t.Errorf("refused: err = %v, want reserve's error", err)
	}
}

// TestReadPacketScratchTopic: a topic repeated is the string read before,
// another is read and checked anew.
func TestReadPacketScratchTopic(t *testing.T) {
	var wire []byte
	topics := []string{"a/b", "a/b", "c", "", "a/b"}
	for _, tp := range topics {
		wire = append(wire, enc(t, &Publish{Topic: tp, Payload: []byte("x")}, V5)...)
	}
	bad := enc(t, &Publish{Topic: "a/bX"}, V5)
	bad[2+2+3] = 0 // after the fixed header and the length: "a/b\x00", which is not allowed [MQTT-1.5.4-2]
	wire = append(wire, bad...)
	r := bufio.NewReader(bytes.NewReader(wire))
	var s Scratch
	var prev string
	for i, want := range topics {
		pk, err := ReadPacketScratch(r, V5, 0, &s)
		if err != nil {
			t.Fatal(err)
		}
		got := pk.(*Publish).Topic
		if got != want {
			t.Fatalf("packet %d: topic %q, want %q", i, got, want)
		}
		if i > 0 && want == topics[i-1] && want != "" && unsafe.StringData(got) != unsafe.StringData(prev) {
			t.Errorf("packet %d: the same topic again is a new string", i)
		}
		prev = got
	}
	if _, err := ReadPacketScratch(r, V5, 0, &s); !errors.Is(err, MalformedPacket) {
		t.Errorf("topic with U+0000 after a valid one: err = %v, want MalformedPacket", err)
	}
}
