package mqtttest

import (
	"fmt"
	"net"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ternmq/tern/packet"
)

// BystanderDeadline bounds one bystander round trip: generous, since an
// attack shares the machine (and the race detector) with it.
const BystanderDeadline = 4 * Timeout

// Bystander is a well-behaved client beside an attack: it publishes QoS 1
// on a topic of its own, receives the message back through its
// subscription, and records how long each round trip took. Tests log the
// latencies and never assert on them.
type Bystander struct {
	t     testing.TB
	c     *Raw
	Topic string
	id    uint16
	rtts  []time.Duration
}

// NewBystander connects a v5 bystander over c with client id name,
// subscribed at QoS 1 to a topic of its own.
func NewBystander(t testing.TB, c net.Conn, name string) *Bystander {
	t.Helper()
	r := Wrap(t, c, packet.V5)
	if ack := r.Connect(name, true); ack.ReasonCode != packet.Success {
		t.Fatalf("bystander CONNACK %#x", byte(ack.ReasonCode))
	}
	s := &Bystander{t: t, c: r, Topic: "bystander/" + name}
	if ack := r.Subscribe(1, 1, s.Topic); ack.ReasonCodes[0] != 1 {
		t.Fatalf("bystander SUBACK %#x", byte(ack.ReasonCodes[0]))
	}
	return s
}

// read returns the next packet within BystanderDeadline.
func (s *Bystander) read() packet.Packet {
	s.t.Helper()
	p, err := s.c.ReadWithin(BystanderDeadline)
	if err != nil {
		s.t.Fatalf("bystander: no answer within %s: %v", BystanderDeadline, err)
	}
	return p
}

// RoundTrips makes n round trips: PUBLISH QoS 1, then both its PUBACK
// and the message itself (which it acknowledges) must come back.
func (s *Bystander) RoundTrips(n int) {
	s.t.Helper()
	for range n {
		if s.id++; s.id == 0 {
			s.id = 1
		}
		payload := fmt.Sprint("ping ", s.id)
		start := time.Now()
		s.c.Send(&packet.Publish{Topic: s.Topic, QoS: 1, PacketID: s.id, Payload: []byte(payload)})
		for acked, got := false, false; !acked || !got; {
			switch p := s.read().(type) {
			case *packet.Puback:
				if p.PacketID != s.id || p.ReasonCode != packet.Success {
					s.t.Fatalf("bystander PUBACK id %d code %#x, want id %d success", p.PacketID, byte(p.ReasonCode), s.id)
				}
				acked = true
			case *packet.Publish:
				if p.Topic != s.Topic || string(p.Payload) != payload {
					s.t.Fatalf("bystander got %q %q, want %q %q", p.Topic, p.Payload, s.Topic, payload)
				}
				s.c.Send(&packet.Puback{PacketID: p.PacketID})
				got = true
			default:
				s.t.Fatalf("bystander got %s", p.Type())
			}
		}
		s.rtts = append(s.rtts, time.Since(start))
	}
}

// Report logs the median and the worst round trip.
func (s *Bystander) Report() {
	s.t.Helper()
	if len(s.rtts) == 0 {
		s.t.Fatal("bystander made no round trip")
	}
	r := slices.Clone(s.rtts)
	slices.Sort(r)
	s.t.Logf("bystander: %d round trips, p50 %s, max %s", len(r), r[len(r)/2], r[len(r)-1])
}

// HeapAlloc is the live heap after a full collection.
func HeapAlloc() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// HeapBound fails the test if the heap grew from before by more than
// bound, and logs the growth.
func HeapBound(t testing.TB, what string, before, bound int64) {
	t.Helper()
	grown := HeapAlloc() - before
	t.Logf("%s: heap grew by %d bytes (%.2f MiB), bound %d", what, grown, float64(grown)/(1<<20), bound)
	if grown > bound {
		t.Errorf("%s: heap grew by %d bytes, want at most %d", what, grown, bound)
	}
}
