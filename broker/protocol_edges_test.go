package broker_test

import (
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// TestNonPersistentNeverWaitsOnStore: while the store commits nothing
// (a stalled fsync), sessions that persist nothing connect, subscribe,
// publish at QoS 1 and 2 and receive: nothing on their path waits on the
// store.
func TestNonPersistentNeverWaitsOnStore(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		g := newGatedStore()
		g.gate(true)
		defer g.gate(false)
		b := mt.StartBroker(t, broker.Options{Store: g})
		sub := mt.Dial(t, b.Addr, v)
		sub.Connect("sub", true)
		sub.Subscribe(1, 2, "t")
		pub := mt.Dial(t, b.Addr, v)
		pub.Connect("pub", true)
		pub.Send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 1, Payload: []byte("1")})
		mt.Expect[*packet.Puback](pub)
		pub.Send(&packet.Publish{Topic: "t", QoS: 2, PacketID: 2, Payload: []byte("2")})
		mt.Expect[*packet.Pubrec](pub)
		pub.Send(&packet.Pubrel{PacketID: 2})
		mt.Expect[*packet.Pubcomp](pub)
		for range 2 {
			mt.Expect[*packet.Publish](sub)
		}
	}, packet.V311, packet.V5)
}

// TestDeliveryDoesNotWaitOnStore: a persistent subscriber is sent what
// is routed to it at once, QoS 0 and 1 alike, while its QoS 1 message is
// still being committed; only the publisher's PUBACK, which promises the
// message is stored, waits for the commit.
func TestDeliveryDoesNotWaitOnStore(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		g := newGatedStore()
		b := mt.StartBroker(t, broker.Options{Store: g})
		sub, _ := dialAs(t, b, v, "sub", "", false)
		sub.Subscribe(1, 1, "t")
		pub := mt.Dial(t, b.Addr, v)
		pub.Connect("pub", true)
		g.gate(true)
		pub.Send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 1, Payload: []byte("1")})
		pub.Send(&packet.Publish{Topic: "t", Payload: []byte("0")})
		for _, want := range []byte{1, 0} {
			if p := mt.Expect[*packet.Publish](sub); p.QoS != want {
				t.Fatalf("QoS %d, want %d", p.QoS, want)
			}
		}
		pub.ExpectNothing(100 * time.Millisecond) // no PUBACK before the commit
		g.gate(false)
		mt.Expect[*packet.Puback](pub)
	}, packet.V311, packet.V5)
}
