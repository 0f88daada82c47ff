//go:build linux

package broker_test

import (
	"fmt"
	"testing"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// TestIdleConnectionsLeaveTheRuntimePoller: a parked TCP connection lets
// go of the runtime's poll descriptor (sockConn), and is served all the
// same: it gets what is published to it, answers pings and is ended
// when its keep alive passes [MQTT-3.1.2-24].
func TestIdleConnectionsLeaveTheRuntimePoller(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{})
		const n = 20
		subs := make([]*mt.Raw, n)
		for i := range subs {
			subs[i] = mt.Dial(t, b.Addr, v)
			subs[i].Connect(fmt.Sprint("idle-", i), true)
			subs[i].Subscribe(1, 1, fmt.Sprintf("idle/%d/cmd", i))
		}
		mt.Eventually(t, "every idle connection detached", func() bool { return b.DetachedConns() == n })
		pub := mt.Dial(t, b.Addr, v)
		pub.Connect("pub", true)
		for i := range subs {
			pub.Send(&packet.Publish{Topic: fmt.Sprintf("idle/%d/cmd", i), QoS: 1, PacketID: uint16(i + 1), Payload: []byte("on")})
			mt.Expect[*packet.Puback](pub)
		}
		for i, s := range subs {
			p := mt.Expect[*packet.Publish](s)
			if p.Topic != fmt.Sprintf("idle/%d/cmd", i) || string(p.Payload) != "on" {
				t.Fatalf("subscriber %d got %s %q", i, p.Topic, p.Payload)
			}
			s.Send(&packet.Puback{PacketID: p.PacketID})
			s.Send(&packet.Pingreq{})
			mt.Expect[*packet.Pingresp](s)
		}
		mt.Eventually(t, "every idle connection detached again", func() bool { return b.DetachedConns() >= n })

		late := mt.Dial(t, b.Addr, v)
		late.ConnectWith(&packet.Connect{ClientID: "late", CleanStart: true, KeepAlive: 1})
		mt.Eventually(t, "the late connection detached", func() bool { return b.DetachedConns() == n+2 })
		late.ExpectClosed(mt.Timeout)
	})
}
