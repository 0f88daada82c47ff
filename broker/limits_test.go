package broker_test

import (
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// TestConnectionLimits: beyond a limit a new connection is closed before
// anything is read; the ones already in are untouched.
func TestConnectionLimits(t *testing.T) {
	for name, opts := range map[string]broker.Options{
		"total":  {MaxConnections: 2},
		"per-ip": {MaxConnectionsPerIP: 2},
		"rate":   {ConnectRatePerIP: 2},
	} {
		t.Run(name, func(t *testing.T) {
			b := mt.StartBroker(t, opts)
			first := mt.Dial(t, b.Addr, packet.V311)
			first.Connect("1", true)
			second := mt.Dial(t, b.Addr, packet.V311)
			second.Connect("2", true)
			third := mt.Dial(t, b.Addr, packet.V311)
			third.ExpectClosed(mt.Timeout)
			if n := b.Stats().RefusedConnects.ConnectionLimit; n != 1 {
				t.Fatalf("refused %d connections, want 1", n)
			}
			first.Send(&packet.Pingreq{})
			mt.Expect[*packet.Pingresp](first)
		})
	}
}

// TestSubscriptionLimit: a session holds at most MaxSubscriptions filters;
// replacing one it has is always allowed. Reload changes the limit for
// connections already up.
func TestSubscriptionLimit(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{MaxSubscriptions: 2})
		c := mt.Dial(t, b.Addr, v)
		c.Connect("s", true)
		refused := packet.SubackFailure
		if v == packet.V5 {
			refused = packet.QuotaExceeded
		}
		for i, tc := range []struct {
			filter string
			want   packet.ReasonCode
		}{{"a", 1}, {"b", 1}, {"c", refused}, {"a", 1}} {
			if ack := c.Subscribe(uint16(i+1), 1, tc.filter); ack.ReasonCodes[0] != tc.want {
				t.Fatalf("subscribe %q: %#x, want %#x", tc.filter, ack.ReasonCodes[0], tc.want)
			}
		}
		b.Reload(broker.Options{MaxSubscriptions: 3})
		if ack := c.Subscribe(9, 1, "c"); ack.ReasonCodes[0] != 1 {
			t.Fatalf("after reload: %#x", ack.ReasonCodes[0])
		}
	})
}

// TestTopicLimits: names and filters beyond the configured bounds are
// refused without disconnecting (v5 says why).
func TestTopicLimits(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{MaxTopicLevels: 3, MaxTopicLength: 20})
		sub, pub := pair(t, b, v, "#", 1)
		for i, name := range []string{"a/b/c/d", "a-very-long-topic-name"} {
			pub.Send(&packet.Publish{Topic: name, QoS: 1, PacketID: uint16(i + 1), Payload: []byte("x")})
			want := packet.Success
			if v == packet.V5 {
				want = packet.TopicNameInvalid
			}
			if ack := mt.Expect[*packet.Puback](pub); ack.ReasonCode != want {
				t.Fatalf("%q: PUBACK %#x, want %#x", name, ack.ReasonCode, want)
			}
		}
		sub.ExpectNothing(100 * time.Millisecond)
		want := packet.SubackFailure
		if v == packet.V5 {
			want = packet.TopicFilterInvalid
		}
		if ack := sub.Subscribe(2, 1, "a/b/c/#"); ack.ReasonCodes[0] != want {
			t.Fatalf("SUBACK %#x, want %#x", ack.ReasonCodes[0], want)
		}
		pub.Send(&packet.Publish{Topic: "a/b/c", QoS: 1, PacketID: 9, Payload: []byte("ok")})
		mt.Expect[*packet.Puback](pub)
		if p := mt.Expect[*packet.Publish](sub); p.Topic != "a/b/c" {
			t.Fatalf("got %q", p.Topic)
		}
	})
}

// TestInboundRates: a client over its message or byte rate is read more
// slowly, and everything it sent still arrives.
func TestInboundRates(t *testing.T) {
	for name, opts := range map[string]broker.Options{
		"messages": {MessageRate: 100},
		"bytes":    {ByteRate: 4000},
	} {
		t.Run(name, func(t *testing.T) {
			b := mt.StartBroker(t, opts)
			sub, pub := pair(t, b, packet.V311, "r", 1)
			const n = 150
			for i := range n {
				pub.Send(&packet.Publish{Topic: "r", QoS: 1, PacketID: uint16(i + 1), Payload: make([]byte, 30)})
			}
			for range n {
				mt.Expect[*packet.Puback](pub)
				p := mt.Expect[*packet.Publish](sub)
				sub.Send(&packet.Puback{PacketID: p.PacketID})
			}
			if b.Stats().Throttled == 0 {
				t.Fatal("never throttled")
			}
			if d := b.Stats().Dropped.QueueFull + b.Stats().Dropped.Slow; d != 0 {
				t.Fatalf("%d dropped", d)
			}
		})
	}
}
