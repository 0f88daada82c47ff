package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// members connects n clients subscribed to filter at qos.
func members(t *testing.T, b *mt.Broker, v byte, n int, filter string, qos byte, clean bool) []*mt.Raw {
	t.Helper()
	var ms []*mt.Raw
	for i := range n {
		c := mt.Dial(t, b.Addr, v)
		c.Connect(fmt.Sprint("member", i), clean)
		c.Subscribe(1, qos, filter)
		ms = append(ms, c)
	}
	return ms
}

// drain reads QoS 0 messages from each member until none comes for a
// moment, returning the payloads per member.
func drain(t *testing.T, ms []*mt.Raw) [][]string {
	got := make([][]string, len(ms))
	for i, c := range ms {
		for {
			p, err := c.ReadWithin(200 * time.Millisecond)
			if err != nil {
				break
			}
			pub := p.(*packet.Publish)
			if pub.QoS > 0 {
				c.Send(&packet.Puback{PacketID: pub.PacketID})
			}
			got[i] = append(got[i], string(pub.Payload))
		}
	}
	return got
}

func TestSharedRoundRobin(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{})
		ms := members(t, b, v, 2, "$share/g/sensors/+", 0, true)
		plain := mt.Dial(t, b.Addr, v) // a plain subscriber gets everything
		plain.Connect("plain", true)
		plain.Subscribe(1, 0, "sensors/+")
		pub := mt.Dial(t, b.Addr, v)
		pub.Connect("pub", true)
		for i := range 10 {
			pub.Send(&packet.Publish{Topic: "sensors/t", Payload: []byte(fmt.Sprint(i))})
		}
		got := drain(t, ms)
		if len(got[0]) != 5 || len(got[1]) != 5 {
			t.Fatalf("members got %v, want 5 each", got)
		}
		if all := drain(t, []*mt.Raw{plain}); len(all[0]) != 10 {
			t.Fatalf("plain subscriber got %d, want 10", len(all[0]))
		}
	})
}

func TestSharedStrategies(t *testing.T) {
	cases := []struct {
		name     string
		strategy broker.SharedStrategy
		check    func(got [][]string) bool
	}{
		{"sticky", broker.Sticky, func(g [][]string) bool { return len(g[0])+len(g[1]) == 10 && (len(g[0]) == 0 || len(g[1]) == 0) }},
		{"hash", broker.HashClientID, func(g [][]string) bool { return len(g[0])+len(g[1]) == 10 && (len(g[0]) == 0 || len(g[1]) == 0) }},
		{"random", broker.Random, func(g [][]string) bool { return len(g[0])+len(g[1]) == 10 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{SharedStrategy: tc.strategy})
			ms := members(t, b, packet.V5, 2, "$share/g/s", 0, true)
			pub := mt.Dial(t, b.Addr, packet.V5)
			pub.Connect("pub", true)
			for i := range 10 {
				pub.Send(&packet.Publish{Topic: "s", Payload: []byte(fmt.Sprint(i))})
			}
			if got := drain(t, ms); !tc.check(got) {
				t.Fatalf("members got %v", got)
			}
		})
	}
}

// TestSharedSkipsOfflineMembers: a persistent member that is offline does
// not take its turn while another member is connected.
func TestSharedSkipsOfflineMembers(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	ms := members(t, b, packet.V311, 2, "$share/g/s", 1, false)
	ms[1].Send(&packet.Disconnect{})
	ms[1].ExpectClosed(mt.Timeout)
	mt.Eventually(t, "member offline", func() bool { return b.Stats().Connections == 1 })
	pub := mt.Dial(t, b.Addr, packet.V311)
	pub.Connect("pub", true)
	for i := range 6 {
		pub.Send(&packet.Publish{Topic: "s", QoS: 1, PacketID: uint16(i + 1), Payload: []byte(fmt.Sprint(i))})
		mt.Expect[*packet.Puback](pub)
	}
	if got := drain(t, ms[:1]); len(got[0]) != 6 {
		t.Fatalf("connected member got %v, want all 6", got)
	}
}

// TestSharedRedistribution: when a member goes away, its queued and QoS 1
// in-flight messages go to a member that is still connected.
// Checks [MQTT-4.8.2-5].
func TestSharedRedistribution(t *testing.T) {
	for _, persistent := range []bool{true, false} {
		t.Run(fmt.Sprint("persistent=", persistent), func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{MaxInflight: 2, SharedStrategy: broker.Sticky})
			leaving := mt.Dial(t, b.Addr, packet.V311)
			leaving.Connect("leaving", !persistent)
			leaving.Subscribe(1, 1, "$share/g/jobs")
			pub := mt.Dial(t, b.Addr, packet.V311)
			pub.Connect("pub", true)
			for i := range 5 {
				pub.Send(&packet.Publish{Topic: "jobs", QoS: 1, PacketID: uint16(i + 1), Payload: []byte(fmt.Sprint(i))})
				mt.Expect[*packet.Puback](pub)
			}
			// Two in flight (unacknowledged), three queued behind the window.
			mt.Expect[*packet.Publish](leaving)
			mt.Expect[*packet.Publish](leaving)
			staying := mt.Dial(t, b.Addr, packet.V311)
			staying.Connect("staying", true)
			staying.Subscribe(1, 1, "$share/g/jobs")
			leaving.Conn.Close()
			seen := map[string]bool{}
			for range 5 {
				p := mt.Expect[*packet.Publish](staying)
				staying.Send(&packet.Puback{PacketID: p.PacketID})
				seen[string(p.Payload)] = true
			}
			if len(seen) != 5 {
				t.Fatalf("staying member got %v, want all 5 jobs", seen)
			}
		})
	}
}

// [MQTT-4.8.2-5]: a QoS 2 message sent to a shared member whose session then
// ends (clean session, no PUBREC yet) must not go to another member.
func TestSharedQoS2NotRedeliveredOnSessionEnd(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{SharedStrategy: broker.Sticky})
	leaving := mt.Dial(t, b.Addr, packet.V311)
	leaving.Connect("leaving", true)
	leaving.Subscribe(1, 2, "$share/g/jobs")
	pub := mt.Dial(t, b.Addr, packet.V311)
	pub.Connect("pub", true)
	pub.Send(&packet.Publish{Topic: "jobs", QoS: 2, PacketID: 1, Payload: []byte("x")})
	mt.Expect[*packet.Pubrec](pub)
	got := mt.Expect[*packet.Publish](leaving) // received, no PUBREC
	staying := mt.Dial(t, b.Addr, packet.V311)
	staying.Connect("staying", true)
	staying.Subscribe(1, 2, "$share/g/jobs")
	leaving.Conn.Close()
	if p, err := staying.ReadWithin(500 * time.Millisecond); err == nil {
		t.Errorf("QoS 2 message %q (already sent to the ended member as %q) delivered again to another member: %+v", p.(*packet.Publish).Payload, got.Payload, p)
	}
}

// A shared delivery the member refuses (PUBACK or PUBREC of 0x80 or more)
// is discarded, not offered to another member, and the refusing member's
// window is free again.
// Checks [MQTT-4.8.2-6].
func TestSharedRefusedNotRedelivered(t *testing.T) {
	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprintf("QoS %d", qos), func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{SharedStrategy: broker.Sticky, MaxInflight: 1})
			refusing := mt.Dial(t, b.Addr, packet.V5)
			refusing.Connect("refusing", true)
			refusing.Subscribe(1, qos, "$share/g/jobs")
			other := mt.Dial(t, b.Addr, packet.V5)
			other.Connect("other", true)
			other.Subscribe(1, qos, "$share/g/jobs")
			pub := mt.Dial(t, b.Addr, packet.V5)
			pub.Connect("pub", true)
			send := func(id uint16, payload string) {
				pub.Send(&packet.Publish{Topic: "jobs", QoS: qos, PacketID: id, Payload: []byte(payload)})
				if qos == 1 {
					mt.Expect[*packet.Puback](pub)
				} else {
					mt.Expect[*packet.Pubrec](pub)
					pub.Send(&packet.Pubrel{PacketID: id})
					mt.Expect[*packet.Pubcomp](pub)
				}
			}
			send(1, "refused")
			// Sticky: whoever got the first message gets the next while
			// connected; the test plays the refusing member with it.
			first, second := refusing, other
			p, err := refusing.ReadWithin(500 * time.Millisecond)
			if err != nil {
				first, second = other, refusing
				p = mt.Expect[*packet.Publish](other)
			}
			got := p.(*packet.Publish)
			if qos == 1 {
				first.Send(&packet.Puback{PacketID: got.PacketID, ReasonCode: packet.UnspecifiedError})
			} else {
				first.Send(&packet.Pubrec{PacketID: got.PacketID, ReasonCode: packet.UnspecifiedError})
			}
			second.ExpectNothing(200 * time.Millisecond)
			send(2, "next")
			if p := mt.Expect[*packet.Publish](first); string(p.Payload) != "next" {
				t.Fatalf("got %q, want the next message in the freed window", p.Payload)
			}
			second.ExpectNothing(100 * time.Millisecond)
		})
	}
}
