package broker_test

import (
	"time"

	"testing"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store/pebble"
)

// pebbleBroker starts a broker on a Pebble store in dir; closing the
// broker closes the store, and the next call reopens it.
func pebbleBroker(t *testing.T, dir string) *mt.Broker {
	t.Helper()
	return pebbleBrokerWith(t, dir, broker.Options{})
}

func pebbleBrokerWith(t *testing.T, dir string, opts broker.Options) *mt.Broker {
	t.Helper()
	st, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Store = st
	return mt.StartBroker(t, opts)
}

// TestDurableRestart: after a restart on the same data directory, a
// persistent session has its subscriptions, its queue in order, its
// in-flight messages again with DUP [MQTT-4.4.0-1], its QoS 2 progress,
// and retained messages are back.
// Checks [MQTT-4.1.0-1].
func TestDurableRestart(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		dir := t.TempDir()
		b1 := pebbleBroker(t, dir)
		sub := mt.Dial(t, b1.Addr, v)
		sub.Connect("sub", false)
		sub.Subscribe(1, 2, "d/#")
		pub := mt.Dial(t, b1.Addr, v)
		pub.Connect("pub", false)
		// In flight when the broker stops: one QoS 1 unacknowledged, one
		// QoS 2 received (PUBREC sent) but not completed.
		pub.Send(&packet.Publish{Topic: "d/1", QoS: 1, PacketID: 1, Payload: []byte("inflight-1")})
		mt.Expect[*packet.Puback](pub)
		if p := mt.Expect[*packet.Publish](sub); string(p.Payload) != "inflight-1" {
			t.Fatalf("got %q", p.Payload)
		}
		pub.Send(&packet.Publish{Topic: "d/2", QoS: 2, PacketID: 2, Payload: []byte("inflight-2")})
		mt.Expect[*packet.Pubrec](pub)
		p2 := mt.Expect[*packet.Publish](sub)
		sub.Send(&packet.Pubrec{PacketID: p2.PacketID})
		mt.Expect[*packet.Pubrel](sub)
		sub.Conn.Close()
		mt.Eventually(t, "subscriber offline", func() bool { return b1.Stats().Connections == 1 })
		// Queued while the subscriber is away.
		for i, q := range []byte{1, 2, 1} {
			id := uint16(10 + i)
			pub.Send(&packet.Publish{Topic: "d/q", QoS: q, PacketID: id, Payload: []byte{'q', '0' + byte(i)}})
			if q == 1 {
				mt.Expect[*packet.Puback](pub)
			} else {
				mt.Expect[*packet.Pubrec](pub)
			}
		}
		pub.Send(&packet.Publish{Topic: "r/x", QoS: 1, PacketID: 20, Retain: true, Payload: []byte("kept")})
		mt.Expect[*packet.Puback](pub)
		b1.Close()

		b2 := pebbleBroker(t, dir)
		// The publisher's QoS 2 message 11 is still marked received: a
		// retransmission is acknowledged, not delivered again
		// [MQTT-4.3.3-2].
		pub = mt.Dial(t, b2.Addr, v)
		// 3.1 has no Session Present flag; the deliveries below show it.
		if ack := pub.Connect("pub", false); !ack.SessionPresent && v != packet.V31 {
			t.Fatal("publisher session lost")
		}
		pub.Send(&packet.Publish{Topic: "d/q", QoS: 2, PacketID: 11, Dup: true, Payload: []byte("q1")})
		mt.Expect[*packet.Pubrec](pub)
		pub.Send(&packet.Pubrel{PacketID: 11})
		mt.Expect[*packet.Pubcomp](pub)

		sub = mt.Dial(t, b2.Addr, v)
		if ack := sub.Connect("sub", false); !ack.SessionPresent && v != packet.V31 {
			t.Fatal("subscriber session lost")
		}
		// In-flight first, in their original order, then the queue.
		p := mt.Expect[*packet.Publish](sub)
		if string(p.Payload) != "inflight-1" || !p.Dup {
			t.Fatalf("got %q dup=%v, want inflight-1 again with DUP", p.Payload, p.Dup)
		}
		sub.Send(&packet.Puback{PacketID: p.PacketID})
		if rel := mt.Expect[*packet.Pubrel](sub); rel.PacketID != p2.PacketID {
			t.Fatalf("PUBREL for %d, want %d", rel.PacketID, p2.PacketID)
		}
		sub.Send(&packet.Pubcomp{PacketID: p2.PacketID})
		for i, released := 0, false; i < 3 || !released; {
			switch p := sub.Read().(type) {
			case *packet.Publish:
				if want := string([]byte{'q', '0' + byte(i)}); string(p.Payload) != want {
					t.Fatalf("queued message %d: got %q, want %q", i, p.Payload, want)
				}
				i++
				if p.QoS == 1 {
					sub.Send(&packet.Puback{PacketID: p.PacketID})
				} else {
					sub.Send(&packet.Pubrec{PacketID: p.PacketID})
				}
			case *packet.Pubrel:
				sub.Send(&packet.Pubcomp{PacketID: p.PacketID})
				released = true
			default:
				t.Fatalf("got %T", p)
			}
		}
		sub.ExpectNothing(100 * time.Millisecond)
		// A new subscriber gets the retained message.
		r := mt.Dial(t, b2.Addr, v)
		r.Connect("r", true)
		r.Subscribe(1, 1, "r/#")
		if p := mt.Expect[*packet.Publish](r); string(p.Payload) != "kept" || !p.Retain {
			t.Fatalf("retained: got %+v", p)
		}
		// Everything acknowledged is gone from the store: a third start
		// delivers nothing again.
		sub.Send(&packet.Disconnect{})
		sub.ExpectClosed(mt.Timeout)
		b2.Close()
		b3 := pebbleBroker(t, dir)
		sub = mt.Dial(t, b3.Addr, v)
		sub.Connect("sub", false)
		sub.ExpectNothing(200 * time.Millisecond)
	})
}
