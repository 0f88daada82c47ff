package broker_test

import (
	"fmt"
	"testing"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// publishRetained sets n retained messages r/<i>/x through pub (QoS 1,
// pipelined) and waits for every PUBACK.
func publishRetained(t *testing.T, pub *mt.Raw, n int) {
	t.Helper()
	for i := range n {
		pub.Send(&packet.Publish{Topic: fmt.Sprintf("r/%d/x", i), QoS: 1, Retain: true,
			PacketID: uint16(i%60000 + 1), Payload: []byte(fmt.Sprint("retained ", i))})
	}
	for range n {
		if ack := mt.Expect[*packet.Puback](pub); ack.ReasonCode != packet.Success {
			t.Fatalf("PUBACK %#x", byte(ack.ReasonCode))
		}
	}
}

// readRetained reads PUBLISH packets into got until want distinct topics
// arrived, acknowledging QoS 1; it counts copies that were not resent
// (DUP) as duplicates. stop, if not nil, ends the reading early after
// that many packets.
func readRetained(t *testing.T, sub *mt.Raw, got map[string]int, want, stop int) (dups int) {
	t.Helper()
	for n := 0; len(got) < want && (stop == 0 || n < stop); n++ {
		p := mt.Expect[*packet.Publish](sub)
		if !p.Retain {
			t.Fatalf("got %q without RETAIN", p.Topic)
		}
		if got[p.Topic] > 0 && !p.Dup {
			dups++
		}
		got[p.Topic]++
		if p.QoS == 1 {
			sub.Send(&packet.Puback{PacketID: p.PacketID})
		}
	}
	return dups
}

// TestRetainedPaged: a subscriber to 5,000 retained messages, with a
// queue of 100, receives every one of them exactly once, at QoS 0 and 1,
// while a bystander keeps routing; nothing is counted as dropped.
func TestRetainedPaged(t *testing.T) {
	const n = 5000
	mt.Versions(t, func(t *testing.T, v byte) {
		for _, qos := range []byte{0, 1} {
			t.Run(fmt.Sprint("qos", qos), func(t *testing.T) {
				b := mt.StartBroker(t, broker.Options{MaxQueued: 100})
				by := newBystander(t, b, "paged")
				pub := mt.Dial(t, b.Addr, packet.V5)
				pub.Connect("retainer", true)
				publishRetained(t, pub, n)

				sub := mt.Dial(t, b.Addr, v)
				if v == packet.V5 {
					rm := uint16(10)
					sub.ConnectWith(&packet.Connect{ClientID: "pager", CleanStart: true, KeepAlive: 30,
						Properties: packet.Properties{ReceiveMaximum: &rm}})
				} else {
					sub.Connect("pager", true)
				}
				sub.Subscribe(1, qos, "r/#")
				got := map[string]int{}
				for len(got) < n {
					if dups := readRetained(t, sub, got, n, 500); dups > 0 {
						t.Fatalf("%d duplicates", dups)
					}
					by.RoundTrips(1) // others keep routing during the hand-over
				}
				for i := range n {
					if got[fmt.Sprintf("r/%d/x", i)] != 1 {
						t.Fatalf("r/%d/x received %d times", i, got[fmt.Sprintf("r/%d/x", i)])
					}
				}
				// A message published now comes after the retained ones.
				pub.Send(&packet.Publish{Topic: "r/sentinel", QoS: 1, PacketID: 1, Payload: []byte("s")})
				mt.Expect[*packet.Puback](pub)
				if p := mt.Expect[*packet.Publish](sub); p.Topic != "r/sentinel" || p.Retain {
					t.Fatalf("after the retained, got %q (retain %v), want the sentinel", p.Topic, p.Retain)
				}
				if d := b.Stats().Dropped; d.QueueFull != 0 || d.Slow != 0 {
					t.Fatalf("dropped: %+v", d)
				}
				by.Report()
			})
		}
	}, packet.V311, packet.V5)
}

// TestRetainedPagedResume: a persistent session that disconnects midway
// through 5,000 retained messages gets the rest when it comes back.
func TestRetainedPagedResume(t *testing.T) {
	const n = 5000
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{MaxQueued: 100})
		pub := mt.Dial(t, b.Addr, packet.V5)
		pub.Connect("retainer", true)
		publishRetained(t, pub, n)

		sub := mt.Dial(t, b.Addr, v)
		sub.Connect("resumer", false)
		sub.Subscribe(1, 1, "r/#")
		got := map[string]int{}
		readRetained(t, sub, got, n, 1500)
		sub.Conn.Close()

		by := newBystander(t, b, "resume")
		by.RoundTrips(5)
		sub = mt.Dial(t, b.Addr, v)
		if ack := sub.Connect("resumer", false); !ack.SessionPresent {
			t.Fatal("session not present")
		}
		if dups := readRetained(t, sub, got, n, 0); dups > 0 {
			t.Fatalf("%d duplicates", dups)
		}
		by.RoundTrips(5)
		by.Report()
	}, packet.V311, packet.V5)
}

// TestRetainedPagedUnsubscribe: unsubscribing midway stops the rest, and
// the session goes on with live messages.
func TestRetainedPagedUnsubscribe(t *testing.T) {
	const n = 3000
	b := mt.StartBroker(t, broker.Options{MaxQueued: 100})
	pub := mt.Dial(t, b.Addr, packet.V5)
	pub.Connect("retainer", true)
	publishRetained(t, pub, n)

	sub := mt.Dial(t, b.Addr, packet.V5)
	sub.Connect("quitter", true)
	sub.Subscribe(1, 1, "r/#", "live")
	got := map[string]int{}
	readRetained(t, sub, got, n, 200)
	sub.Send(&packet.Unsubscribe{PacketID: 2, Filters: []string{"r/#"}})
	pub.Send(&packet.Publish{Topic: "live", QoS: 1, PacketID: 1, Payload: []byte("l")})
	mt.Expect[*packet.Puback](pub)
	for unsubacked, live := false, false; !unsubacked || !live; {
		switch p := sub.Read().(type) {
		case *packet.Unsuback:
			unsubacked = true
		case *packet.Publish:
			if p.Topic == "live" {
				live = true
			} else if unsubacked {
				t.Fatalf("after UNSUBACK, got retained %q", p.Topic)
			}
			if p.QoS == 1 {
				sub.Send(&packet.Puback{PacketID: p.PacketID})
			}
		default:
			t.Fatalf("got %s", p.Type())
		}
	}
}
