package client

// Interoperability with the Eclipse Mosquitto broker (Debian package
// mosquitto), a server we did not write.

import (
	"context"
	"fmt"
	"testing"
	"time"

	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

func TestInteropMosquitto(t *testing.T) {
	addr := mt.StartMosquitto(t, false).Addr
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got := make(chan *packet.Publish, 10)
			sub, err := Connect(ctx, Options{Address: addr, Version: tv.v, ClientID: "tern-sub-" + tv.name, CleanStart: true,
				OnMessage: func(p *packet.Publish) { got <- p }})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			sa, err := sub.Subscribe(ctx, packet.Subscription{Filter: "interop/#", QoS: 2})
			if err != nil || len(sa.ReasonCodes) != 1 || sa.ReasonCodes[0] != packet.GrantedQoS2 {
				t.Fatalf("Subscribe = %+v, %v", sa, err)
			}
			pub, err := Connect(ctx, Options{Address: addr, Version: tv.v, ClientID: "tern-pub-" + tv.name, CleanStart: true,
				Will: &packet.Will{Topic: "interop/will", Payload: []byte("gone")}})
			if err != nil {
				t.Fatal(err)
			}
			for qos := range byte(3) {
				payload := fmt.Sprintf("qos%d", qos)
				if err := pub.Publish(ctx, &packet.Publish{Topic: "interop/q", QoS: qos, Payload: []byte(payload)}); err != nil {
					t.Fatalf("QoS %d: %v", qos, err)
				}
				select {
				case p := <-got:
					if string(p.Payload) != payload || p.QoS != qos {
						t.Fatalf("got %+v, want %s at QoS %d", p, payload, qos)
					}
				case <-ctx.Done():
					t.Fatalf("QoS %d message not received", qos)
				}
			}
			// Close without DISCONNECT: the broker publishes the will.
			pub.Close()
			select {
			case p := <-got:
				if p.Topic != "interop/will" || string(p.Payload) != "gone" {
					t.Fatalf("got %+v, want the will", p)
				}
			case <-ctx.Done():
				t.Fatal("will not received")
			}
			if _, err := sub.Unsubscribe(ctx, "interop/#"); err != nil {
				t.Fatal(err)
			}
			if err := sub.Disconnect(); err != nil {
				t.Fatal(err)
			}
			waitDone(t, sub)
			if sub.Err() != nil {
				t.Errorf("Err = %v", sub.Err())
			}
		})
	}
}
