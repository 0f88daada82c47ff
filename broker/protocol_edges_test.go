package broker_test

import (
	"slices"
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

// TestQoS2ResendAtReceiveMaximum: a v5 client holding exactly Receive
// Maximum unreleased QoS 2 messages reconnects and resends one with DUP
// [MQTT-4.4.0-1]: it is acknowledged again, not refused with 0x93.
// Checks [MQTT-3.1.2-25].
func TestQoS2ResendAtReceiveMaximum(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{ReceiveMaximum: 2})
	c, _ := dialAs(t, b, packet.V5, "q2", "", false)
	for id := range uint16(2) {
		c.Send(&packet.Publish{Topic: "t", QoS: 2, PacketID: id + 1, Payload: []byte("x")})
		mt.Expect[*packet.Pubrec](c)
	}
	c.Conn.Close()
	for range 2 { // on every reconnect
		c, ack := dialAs(t, b, packet.V5, "q2", "", false)
		if !ack.SessionPresent {
			t.Fatal("session lost")
		}
		c.Send(&packet.Publish{Topic: "t", QoS: 2, PacketID: 1, Dup: true, Payload: []byte("x")})
		if p := mt.Expect[*packet.Pubrec](c); p.PacketID != 1 || p.ReasonCode.IsFailure() {
			t.Fatalf("PUBREC %+v", p)
		}
		c.Conn.Close()
	}
}

// TestResumeWithinNewLimits: on resume the in-flight messages are resent
// within the new connection's Receive Maximum [MQTT-3.3.4-9], and one too
// large for its Maximum Packet Size is discarded [MQTT-3.1.2-25] and its
// slot freed.
func TestResumeWithinNewLimits(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	sub, _ := dialAs(t, b, packet.V5, "s", "", false)
	sub.Subscribe(1, 1, "t")
	pub := mt.Dial(t, b.Addr, packet.V5)
	pub.Connect("p", true)
	payloads := []string{"a", string(make([]byte, 500)), "c", "d", "e"}
	for i, pl := range payloads {
		pub.Send(&packet.Publish{Topic: "t", QoS: 1, PacketID: uint16(i + 1), Payload: []byte(pl)})
		mt.Expect[*packet.Puback](pub)
		mt.Expect[*packet.Publish](sub) // not acknowledged
	}
	sub.Conn.Close()
	sub = mt.Dial(t, b.Addr, packet.V5)
	sub.ConnectWith(&packet.Connect{ClientID: "s", KeepAlive: 30, Properties: packet.Properties{
		SessionExpiry: u32(3600), ReceiveMaximum: new(uint16(1)), MaximumPacketSize: u32(100)}})
	var got []string
	for range 4 {
		p := mt.Expect[*packet.Publish](sub)
		if !p.Dup {
			t.Fatalf("resent without DUP: %+v", p)
		}
		sub.ExpectNothing(50 * time.Millisecond) // one at a time
		got = append(got, string(p.Payload))
		sub.Send(&packet.Puback{PacketID: p.PacketID})
	}
	if want := []string{"a", "c", "d", "e"}; !slices.Equal(got, want) {
		t.Fatalf("resent %q, want %q (the large one discarded)", got, want)
	}
	// The discarded message's slot is free: a new message comes through.
	pub.Send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 9, Payload: []byte("new")})
	if p := mt.Expect[*packet.Publish](sub); string(p.Payload) != "new" {
		t.Fatalf("got %q", p.Payload)
	}
}

// TestMaxKeepAliveAndV311: with max_keep_alive, a 3.1.1 client asking for
// no keep alive or a longer one is refused rather than dropped later
// without a word; a v5 client is told the Server Keep Alive.
// Checks [MQTT-3.2.2-22].
func TestMaxKeepAliveAndV311(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{MaxKeepAlive: 10 * time.Second})
	for _, ka := range []uint16{0, 60} {
		c := mt.Dial(t, b.Addr, packet.V311)
		if ack := c.ConnectWith(&packet.Connect{ClientID: "k", CleanStart: true, KeepAlive: ka}); ack.ReasonCode != packet.RefusedIdentifierRejected {
			t.Fatalf("3.1.1 keep alive %d: CONNACK %#x", ka, byte(ack.ReasonCode))
		}
	}
	c := mt.Dial(t, b.Addr, packet.V311)
	if ack := c.ConnectWith(&packet.Connect{ClientID: "k", CleanStart: true, KeepAlive: 5}); ack.ReasonCode != 0 {
		t.Fatalf("3.1.1 keep alive 5: CONNACK %#x", byte(ack.ReasonCode))
	}
	v5 := mt.Dial(t, b.Addr, packet.V5)
	ack := v5.ConnectWith(&packet.Connect{ClientID: "k5", CleanStart: true})
	if ka := ack.Properties.ServerKeepAlive; ack.ReasonCode != 0 || ka == nil || *ka != 10 {
		t.Fatalf("v5: CONNACK %#x, Server Keep Alive %v", byte(ack.ReasonCode), ka)
	}
}

// TestReloadKeepsAnnouncedLimits: a reload that lowers Receive Maximum,
// Topic Alias Maximum, Maximum Packet Size and switches retained
// messages off does not disconnect a v5 client that keeps to what its
// CONNACK announced; a new connection gets the new values.
func TestReloadKeepsAnnouncedLimits(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{ReceiveMaximum: 10, TopicAliasMaximum: 10})
	c := mt.Dial(t, b.Addr, packet.V5)
	c.Connect("c", true)
	b.Reload(broker.Options{ReceiveMaximum: 1, TopicAliasMaximum: -1, MaxPacketSize: 100, DisableRetain: true})
	for id := range uint16(3) { // unreleased QoS 2, more than 1
		c.Send(&packet.Publish{Topic: "t", QoS: 2, PacketID: id + 1, Payload: []byte("x")})
		mt.Expect[*packet.Pubrec](c)
	}
	c.Send(&packet.Publish{Topic: "a", QoS: 1, PacketID: 10, Retain: true, Payload: make([]byte, 500),
		Properties: packet.Properties{TopicAlias: new(uint16(5))}})
	if p := mt.Expect[*packet.Puback](c); p.ReasonCode.IsFailure() {
		t.Fatalf("PUBACK %#x", byte(p.ReasonCode))
	}
	n := mt.Dial(t, b.Addr, packet.V5)
	ack := n.Connect("n", true)
	p := ack.Properties
	if p.ReceiveMaximum == nil || *p.ReceiveMaximum != 1 || p.TopicAliasMaximum != nil ||
		p.MaximumPacketSize == nil || *p.MaximumPacketSize != 100 || p.RetainAvailable == nil || *p.RetainAvailable != 0 {
		t.Fatalf("new connection's CONNACK %+v", p)
	}
}

// TestCleanStartDurableBeforeConnack: the deletion of the session a clean
// start discards is committed before CONNACK, like the new session's
// writes, so that a crash cannot bring the old session back.
// Checks [MQTT-3.1.2-4].
func TestCleanStartDurableBeforeConnack(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		g := newGatedStore()
		b := mt.StartBroker(t, broker.Options{Store: g})
		c, _ := dialAs(t, b, v, "c", "", false)
		c.Subscribe(1, 1, "t")
		c.Conn.Close()
		mt.Eventually(t, "offline", func() bool { return b.Stats().Connections == 0 })
		g.gate(true)
		c = mt.Dial(t, b.Addr, v)
		c.Send(&packet.Connect{ClientID: "c", CleanStart: true, KeepAlive: 30})
		c.ExpectNothing(100 * time.Millisecond)
		g.gate(false)
		if ack := mt.Expect[*packet.Connack](c); ack.ReasonCode != 0 || ack.SessionPresent {
			t.Fatalf("CONNACK %+v", ack)
		}
	}, packet.V311, packet.V5)
}

// TestResponseTopicWithWildcards: a v5 Response Topic is a topic name, so
// one with wildcards is a Protocol Error, in a PUBLISH and in a will.
// Checks [MQTT-3.3.2-14]
func TestResponseTopicWithWildcards(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	c := mt.Dial(t, b.Addr, packet.V5)
	c.Connect("rt", true)
	c.Send(&packet.Publish{Topic: "req", QoS: 1, PacketID: 1, Payload: []byte("x"),
		Properties: packet.Properties{ResponseTopic: "replies/+"}})
	for _, p := range c.ExpectClosed(mt.Timeout) {
		if d, ok := p.(*packet.Disconnect); ok && d.ReasonCode == packet.ProtocolError {
			w := mt.Dial(t, b.Addr, packet.V5)
			w.Send(&packet.Connect{ClientID: "w", CleanStart: true, KeepAlive: 30,
				Will: &packet.Will{Topic: "t", Payload: []byte("x"), Properties: packet.Properties{ResponseTopic: "r/#"}}})
			for _, p := range w.ExpectClosed(mt.Timeout) {
				if ack, ok := p.(*packet.Connack); ok && ack.ReasonCode == packet.Success {
					t.Fatal("will with a wildcard Response Topic accepted")
				}
			}
			return
		}
	}
	t.Fatal("no DISCONNECT 0x82 for a Response Topic with wildcards")
}
