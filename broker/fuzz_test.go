package broker_test

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/packet"
)

// FuzzConnSequence drives one connection with a valid CONNECT followed by
// arbitrary bytes (packets the fuzzer makes up, in any order): the broker
// must never panic, and the connection must end once the client hangs up.
func FuzzConnSequence(f *testing.F) {
	b, err := broker.New(broker.Options{Logger: slog.New(slog.DiscardHandler), MaxPacketSize: 64 << 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	seq := func(v byte, ps ...packet.Packet) []byte {
		var out []byte
		for _, p := range ps {
			out, _ = p.Append(out, v)
		}
		return out
	}
	for _, v := range []byte{packet.V311, packet.V5} {
		f.Add(v == packet.V5, seq(v,
			&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a/#", QoS: 2}, {Filter: "$share/g/b", QoS: 1}}},
			&packet.Publish{Topic: "a/b", QoS: 2, PacketID: 2, Retain: true, Payload: []byte("x")},
			&packet.Pubrel{PacketID: 2},
			&packet.Publish{Topic: "a/c", QoS: 1, PacketID: 3},
			&packet.Puback{PacketID: 1}, &packet.Pubrec{PacketID: 1}, &packet.Pubcomp{PacketID: 1},
			&packet.Unsubscribe{PacketID: 4, Filters: []string{"a/#"}},
			&packet.Pingreq{}, &packet.Disconnect{}))
	}
	f.Add(true, seq(packet.V5, &packet.Publish{Topic: "t", QoS: 1, PacketID: 1,
		Properties: packet.Properties{TopicAlias: new(uint16(1)), MessageExpiry: new(uint32(1))}},
		&packet.Publish{QoS: 1, PacketID: 2, Properties: packet.Properties{TopicAlias: new(uint16(1))}},
		&packet.Auth{ReasonCode: packet.ReAuthenticate}))
	f.Add(false, []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, v5 bool, data []byte) {
		v := byte(packet.V311)
		if v5 {
			v = packet.V5
		}
		server, client := net.Pipe()
		done := make(chan struct{})
		go func() { b.ServeConn(server); close(done) }()
		go io.Copy(io.Discard, client)
		client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		connect, _ := (&packet.Connect{ProtocolLevel: v, ClientID: "fuzz", CleanStart: true}).Append(nil, v)
		if _, err := client.Write(connect); err == nil {
			client.Write(data)
		}
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end after the client hung up")
		}
	})
}
