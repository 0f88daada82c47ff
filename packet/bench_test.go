package packet

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
)

// benchPublish is a typical QoS 1 message: 32-byte topic, 64-byte payload.
func benchPublish() *Publish {
	return &Publish{QoS: 1, PacketID: 42, Topic: "sensors/building-7/floor-3/temp1", Payload: []byte(strings.Repeat("p", 64))}
}

func benchPublishProps() *Publish {
	p := benchPublish()
	p.Properties = Properties{MessageExpiry: new(uint32(3600)), SubscriptionIDs: []uint32{7},
		User: []UserProperty{{"trace", "abc123"}}}
	return p
}

// loopReader serves b over and over, as a connection carrying the same
// packet repeatedly.
type loopReader struct {
	b   []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

func BenchmarkPublishAppend(b *testing.B) {
	for _, c := range []struct {
		name string
		p    *Publish
		v    byte
	}{{"v4", benchPublish(), V311}, {"v5", benchPublish(), V5}, {"v5-props", benchPublishProps(), V5}} {
		b.Run(c.name, func(b *testing.B) {
			dst := make([]byte, 0, 256)
			b.SetBytes(int64(c.p.Size(c.v)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = c.p.Append(dst[:0], c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchRead measures ReadPacket on a stream repeating p's encoding.
func benchRead(b *testing.B, p Packet, v byte) {
	wire := enc(b, p, v)
	r := bufio.NewReader(&loopReader{b: wire})
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadPacket(r, v, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// benchReadScratch measures ReadPacketScratch on a stream repeating p's
// encoding.
func benchReadScratch(b *testing.B, p Packet, v byte) {
	wire := enc(b, p, v)
	r := bufio.NewReader(&loopReader{b: wire})
	var s Scratch
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadPacketScratch(r, v, 0, &s); err != nil {
			b.Fatal(err)
		}
	}
}

// benchDecode measures Decode on p's body.
func benchDecode(b *testing.B, p Packet, v byte) {
	wire := enc(b, p, v)
	_, n := ConsumeVarint(wire[1:])
	h, body := wire[0], wire[1+n:]
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(h, body, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublishDecode(b *testing.B) {
	b.Run("ReadPacket/v4", func(b *testing.B) { benchRead(b, benchPublish(), V311) })
	b.Run("ReadPacket/v5", func(b *testing.B) { benchRead(b, benchPublish(), V5) })
	b.Run("ReadPacket/v5-props", func(b *testing.B) { benchRead(b, benchPublishProps(), V5) })
	b.Run("ReadPacketScratch/v4", func(b *testing.B) { benchReadScratch(b, benchPublish(), V311) })
	b.Run("ReadPacketScratch/v5", func(b *testing.B) { benchReadScratch(b, benchPublish(), V5) })
	b.Run("Decode/v4", func(b *testing.B) { benchDecode(b, benchPublish(), V311) })
	b.Run("Decode/v5", func(b *testing.B) { benchDecode(b, benchPublish(), V5) })
}

func BenchmarkConnectDecode(b *testing.B) {
	v4 := &Connect{ProtocolLevel: 4, CleanStart: true, KeepAlive: 60, ClientID: "sensor-000123",
		UsernameFlag: true, Username: "device", PasswordFlag: true, Password: []byte("s3cret-token")}
	v5 := *v4
	v5.ProtocolLevel = 5
	v5.Properties = Properties{SessionExpiry: new(uint32(3600)), ReceiveMaximum: new(uint16(100))}
	v5.Will = &Will{QoS: 1, Topic: "status/sensor-000123", Payload: []byte("offline"),
		Properties: Properties{WillDelay: new(uint32(5))}}
	b.Run("v4", func(b *testing.B) { benchDecode(b, v4, V311) })
	b.Run("v5-will-props", func(b *testing.B) { benchDecode(b, &v5, V5) })
}

func BenchmarkSubscribeDecode(b *testing.B) {
	one := &Subscribe{PacketID: 9, Subscriptions: []Subscription{{Filter: "sensors/+/floor-3/#", QoS: 1}}}
	three := &Subscribe{PacketID: 9, Properties: Properties{SubscriptionIDs: []uint32{12}},
		Subscriptions: []Subscription{{Filter: "sensors/+/floor-3/#", QoS: 1}, {Filter: "alerts/#", QoS: 2, NoLocal: true},
			{Filter: "$share/g/jobs/+", QoS: 1, RetainHandling: 2}}}
	b.Run("Decode/v4-1", func(b *testing.B) { benchDecode(b, one, V311) })
	b.Run("Decode/v5-3", func(b *testing.B) { benchDecode(b, three, V5) })
	b.Run("ReadPacket/v4-1", func(b *testing.B) { benchRead(b, one, V311) })
}

func BenchmarkAck(b *testing.B) {
	p := &Puback{PacketID: 42}
	b.Run("Append/v5", func(b *testing.B) {
		dst := make([]byte, 0, 16)
		b.ReportAllocs()
		for b.Loop() {
			dst, _ = p.Append(dst[:0], V5)
		}
	})
	b.Run("ReadPacket/v5", func(b *testing.B) { benchRead(b, p, V5) })
	b.Run("ReadPacketScratch/v4", func(b *testing.B) { benchReadScratch(b, p, V311) })
	b.Run("ReadPacketScratch/v5", func(b *testing.B) { benchReadScratch(b, p, V5) })
}

// BenchmarkLargePublishRead measures ReadPacket on bodies larger than the
// reader's buffer, which grow as their bytes arrive.
func BenchmarkLargePublishRead(b *testing.B) {
	for _, n := range []int{16 << 10, 256 << 10, 1 << 20} {
		b.Run(fmt.Sprint(n>>10, "KiB"), func(b *testing.B) {
			benchRead(b, &Publish{QoS: 1, PacketID: 1, Topic: "big", Payload: make([]byte, n)}, V311)
		})
	}
}
