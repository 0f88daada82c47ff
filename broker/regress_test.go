package broker_test

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

type denyTopic string

func (d denyTopic) Authorize(_ *auth.Client, a auth.Action, t string) bool {
	return !(a == auth.Publish && t == string(d))
}

// A refused v5 QoS 2 PUBLISH ends its flow: the client may reuse the id at
// once for a message that must be delivered [MQTT-4.3.3-4].
// Checks [MQTT-4.3.3-9].
func TestV5RefusedQoS2FreesPacketID(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{Authorizer: denyTopic("deny")})
	sub, pub := pair(t, b, packet.V5, "ok", 2)
	pub.Send(&packet.Publish{Topic: "deny", QoS: 2, PacketID: 5, Payload: []byte("x")})
	if r := mt.Expect[*packet.Pubrec](pub); r.ReasonCode != packet.NotAuthorized {
		t.Fatalf("PUBREC %+v, want 0x87", r)
	}
	pub.Send(&packet.Publish{Topic: "ok", QoS: 2, PacketID: 5, Payload: []byte("y")})
	if r := mt.Expect[*packet.Pubrec](pub); r.ReasonCode != packet.Success {
		t.Fatalf("PUBREC %+v", r)
	}
	if p := mt.Expect[*packet.Publish](sub); string(p.Payload) != "y" {
		t.Fatalf("got %q", p.Payload)
	}
}

// A v5 subscriber refusing a QoS 2 message with PUBREC >= 0x80 frees its
// in-flight slot: no PUBREL, and the next message flows.
// Checks [MQTT-4.3.3-4] [MQTT-4.4.0-2].
func TestV5PubrecFailureFreesWindow(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{MaxInflight: 1})
	sub, pub := pair(t, b, packet.V5, "w", 2)
	for i := range 2 {
		pub.Send(&packet.Publish{Topic: "w", QoS: 2, PacketID: uint16(i + 1), Payload: []byte{byte('a' + i)}})
		mt.Expect[*packet.Pubrec](pub)
	}
	p := mt.Expect[*packet.Publish](sub)
	sub.Send(&packet.Pubrec{PacketID: p.PacketID, ReasonCode: packet.UnspecifiedError})
	if q := mt.Expect[*packet.Publish](sub); string(q.Payload) != "b" {
		t.Fatalf("got %+v, want the second message and no PUBREL", q)
	}
}

// A session owed more than the write buffer holds is resumed in pieces as
// the client reads, not dropped as a slow consumer.
func TestResumeLargeBacklog(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{MaxWriteBuffer: 256 << 10})
	sub := mt.Dial(t, b.Addr, packet.V311)
	sub.Connect("s", false)
	sub.Subscribe(1, 1, "big")
	sub.Send(&packet.Disconnect{})
	sub.ExpectClosed(mt.Timeout)
	pub := mt.Dial(t, b.Addr, packet.V311)
	pub.Connect("p", true)
	payload := bytes.Repeat([]byte("x"), 100<<10)
	const n = 60 // 6 MB: far beyond 4 x the write buffer
	for i := range n {
		pub.Send(&packet.Publish{Topic: "big", QoS: 1, PacketID: uint16(i + 1), Payload: payload})
		mt.Expect[*packet.Puback](pub)
	}
	back := mt.Dial(t, b.Addr, packet.V311)
	back.Connect("s", false)
	for i := range n {
		p, err := back.ReadWithin(mt.Timeout)
		if err != nil {
			t.Fatalf("after %d messages: %v", i, err)
		}
		back.Send(&packet.Puback{PacketID: p.(*packet.Publish).PacketID})
	}
}

// A take-over of a connection whose client reads nothing completes within
// the flush timeout, not the (longer) write timeout.
func TestTakeoverOfStuckClient(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{WriteTimeout: time.Minute})
	old := mt.Dial(t, b.Addr, packet.V311)
	old.Conn.(*net.TCPConn).SetReadBuffer(4096)
	old.Connect("dup", true)
	old.Subscribe(1, 0, "flood")
	pub := mt.Dial(t, b.Addr, packet.V311)
	pub.Connect("p", true)
	payload := bytes.Repeat([]byte("x"), 64<<10)
	for range 100 {
		pub.Send(&packet.Publish{Topic: "flood", Payload: payload})
	}
	pub.Send(&packet.Pingreq{})
	mt.Expect[*packet.Pingresp](pub)
	nw := mt.Dial(t, b.Addr, packet.V311)
	nw.Send(&packet.Connect{ProtocolLevel: packet.V311, ClientID: "dup", CleanStart: true, KeepAlive: 30})
	if _, err := nw.ReadWithin(30 * time.Second); err != nil {
		t.Fatalf("take-over waited for the write timeout: %v", err)
	}
}

type slowAuth struct{}

func (slowAuth) Authenticate(context.Context, *auth.Client) error {
	time.Sleep(200 * time.Millisecond)
	return nil
}

// Close while a CONNECT is being authenticated (a data race under -race
// before the protocol version was written under the output lock).
func TestCloseDuringConnect(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{Authenticator: slowAuth{}})
	c := mt.Dial(t, b.Addr, packet.V5)
	c.Send(&packet.Connect{ProtocolLevel: packet.V5, ClientID: "x", CleanStart: true})
	time.Sleep(50 * time.Millisecond)
	b.Close()
	// [MQTT-3.14.0-1] no DISCONNECT before a CONNACK.
	for _, p := range c.ExpectClosed(mt.Timeout) {
		if p.Type() == packet.DISCONNECT {
			t.Fatal("DISCONNECT sent before CONNACK")
		}
	}
}
