package cluster

import (
	"testing"
	"time"

	"github.com/ternmq/tern/client"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

// TestQoS2RetransmittedElsewhere: a node records a QoS 2 message's packet
// id before it appends the message, and dies before it acknowledges it:
// with the message kept or not. The client retransmits both to another
// node, and each reaches the subscribers once [MQTT-4.3.3-2].
func TestQoS2RetransmittedElsewhere(t *testing.T) {
	nodes := startCluster(t, 3)
	sub, got := connect(t, nodes[2].addr, client.Options{ClientID: "q2-sub", CleanStart: true})
	subscribe(t, sub, "q2/#", 2)
	waitForInterest(t, nodes[0], "q2/x")

	pub := mt.Dial(t, nodes[0].addr, packet.V311)
	pub.Connect("q2-pub", false)
	// What the publisher's node wrote for two messages before it died:
	// both ids, and one of the messages.
	st := nodes[0].node.st
	st.PutInboundQoS2("q2-pub", store.Inbound{PacketID: 7, Token: 70})
	st.PutInboundQoS2("q2-pub", store.Inbound{PacketID: 8, Token: 80})
	kept := &store.Message{Topic: "q2/kept", QoS: 2, Payload: []byte("kept")}
	env := appendEnvelope(nil, &envelope{origin: 1, from: "q2-pub", msg: kept})
	if err := st.Wait(st.Append(fwdPrefix+Subject(kept.Topic), tokenMsgID(80), env)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the kept message", func() bool { return got.len() == 1 })
	pub.Conn.Close()
	nodes[0].stop()

	// While JetStream elects leaders after the loss, a CONNECT waits up
	// to 10 s and may then be refused: the client tries again.
	var again *mt.Raw
	for deadline := time.Now().Add(40 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		again = mt.Dial(t, nodes[1].addr, packet.V311)
		again.Send(&packet.Connect{ClientID: "q2-pub", KeepAlive: 30, ProtocolLevel: packet.V311})
		ack := mt.ExpectWithin[*packet.Connack](again, 15*time.Second)
		if ack.ReasonCode == packet.Success {
			if !ack.SessionPresent {
				t.Fatal("the session did not come to the other node")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect after the loss: %v", ack.ReasonCode)
		}
	}
	for _, p := range []*packet.Publish{
		{Topic: "q2/lost", QoS: 2, PacketID: 7, Dup: true, Payload: []byte("lost")},
		{Topic: "q2/kept", QoS: 2, PacketID: 8, Dup: true, Payload: []byte("kept")},
	} {
		again.Send(p)
		// Acknowledged once the stream has it: its leader may still be
		// being elected.
		if ack := mt.ExpectWithin[*packet.Pubrec](again, 20*time.Second); ack.PacketID != p.PacketID {
			t.Fatalf("PUBREC for %d, want %d", ack.PacketID, p.PacketID)
		}
		again.Send(&packet.Pubrel{PacketID: p.PacketID})
		mt.ExpectWithin[*packet.Pubcomp](again, 20*time.Second)
	}
	waitFor(t, 20*time.Second, "the lost message", func() bool { return got.len() >= 2 })
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive meanwhile
	if ps := payloads(got.all()); len(ps) != 2 || ps[0] != "kept" || ps[1] != "lost" {
		t.Fatalf("got %v, want kept and lost once each", ps)
	}
	if n := nodes[1].node.Stats().Reforwarded; n != 2 {
		t.Fatalf("reforwarded %d, want 2", n)
	}
}
