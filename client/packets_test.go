package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// SUBSCRIBE and UNSUBSCRIBE carry the caller's v5 properties, and a
// refused filter comes back as a *SubscribeError with its code.
func TestSubscribePropertiesAndRefusal(t *testing.T) {
	s := newFakeServer(t, packet.V5, nil)
	c := s.connect(Options{})
	user := []packet.UserProperty{{Key: "k", Value: "v"}}
	type subResult struct {
		sa  *packet.Suback
		err error
	}
	ch := make(chan subResult, 1)
	go func() {
		sa, err := c.SubscribePacket(context.Background(), &packet.Subscribe{
			Properties:    packet.Properties{SubscriptionIDs: []uint32{42}, User: user},
			Subscriptions: []packet.Subscription{{Filter: "a", QoS: 1}, {Filter: "b", QoS: 1}},
		})
		ch <- subResult{sa, err}
	}()
	sub := expectType[*packet.Subscribe](t, s.expect())
	if len(sub.Properties.SubscriptionIDs) != 1 || sub.Properties.SubscriptionIDs[0] != 42 || len(sub.Properties.User) != 1 {
		t.Fatalf("SUBSCRIBE properties %+v", sub.Properties)
	}
	s.send(&packet.Suback{PacketID: sub.PacketID, ReasonCodes: []packet.ReasonCode{packet.GrantedQoS1, packet.NotAuthorized}})
	r := <-ch
	var se *SubscribeError
	if !errors.As(r.err, &se) || !errors.Is(r.err, packet.NotAuthorized) || len(se.Filters) != 1 || se.Filters[0] != "b" ||
		r.sa == nil || r.sa.ReasonCodes[0] != packet.GrantedQoS1 {
		t.Fatalf("SubscribePacket = %+v, %v; want a SubscribeError for b", r.sa, r.err)
	}

	errc := async(func() error {
		_, err := c.UnsubscribePacket(context.Background(), &packet.Unsubscribe{Properties: packet.Properties{User: user}, Filters: []string{"a"}})
		return err
	})
	uns := expectType[*packet.Unsubscribe](t, s.expect())
	if len(uns.Properties.User) != 1 || uns.Filters[0] != "a" {
		t.Fatalf("UNSUBSCRIBE %+v", uns)
	}
	s.send(&packet.Unsuback{PacketID: uns.PacketID, ReasonCodes: []packet.ReasonCode{0}})
	if err := recvErr(t, errc); err != nil {
		t.Fatal(err)
	}

	if err := c.DisconnectWith(&packet.Disconnect{ReasonCode: packet.DisconnectWithWill,
		Properties: packet.Properties{ReasonString: "bye", SessionExpiry: ptr[uint32](0)}}); err != nil {
		t.Fatal(err)
	}
	d := expectType[*packet.Disconnect](t, s.expect())
	if d.ReasonCode != packet.DisconnectWithWill || d.Properties.ReasonString != "bye" {
		t.Fatalf("DISCONNECT %+v", d)
	}
}

// Against Tern and mosquitto: a DISCONNECT with reason code 0x04 makes
// the server publish the will.
func TestDisconnectWithWill(t *testing.T) {
	for _, server := range []string{"tern", "mosquitto"} {
		t.Run(server, func(t *testing.T) {
			var addr string
			if server == "tern" {
				addr = mt.StartBroker(t, broker.Options{}).Addr
			} else {
				addr = mt.StartMosquitto(t, false).Addr
			}
			got := make(chan string, 1)
			w := connectTest(t, Options{Address: addr, Version: packet.V5, ClientID: "watch", CleanStart: true,
				OnMessage: func(p *packet.Publish) { got <- string(p.Payload) }})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := w.Subscribe(ctx, packet.Subscription{Filter: "will"}); err != nil {
				t.Fatal(err)
			}
			c := connectTest(t, Options{Address: addr, Version: packet.V5, ClientID: "leaver", CleanStart: true,
				Will: &packet.Will{Topic: "will", Payload: []byte("gone")}})
			if err := c.DisconnectWith(&packet.Disconnect{ReasonCode: packet.DisconnectWithWill}); err != nil {
				t.Fatal(err)
			}
			select {
			case g := <-got:
				if g != "gone" {
					t.Fatalf("got %q", g)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no will after DISCONNECT 0x04")
			}
		})
	}
}

// A Subscription Identifier sent with SubscribePacket comes back with
// the matching messages, from Tern and from mosquitto.
func TestSubscriptionIdentifierRoundTrip(t *testing.T) {
	for _, server := range []string{"tern", "mosquitto"} {
		t.Run(server, func(t *testing.T) {
			var addr string
			if server == "tern" {
				addr = mt.StartBroker(t, broker.Options{}).Addr
			} else {
				addr = mt.StartMosquitto(t, false).Addr
			}
			got := make(chan *packet.Publish, 1)
			c := connectTest(t, Options{Address: addr, Version: packet.V5, ClientID: "subid", CleanStart: true,
				OnMessage: func(p *packet.Publish) { got <- p }})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := c.SubscribePacket(ctx, &packet.Subscribe{Properties: packet.Properties{SubscriptionIDs: []uint32{7}},
				Subscriptions: []packet.Subscription{{Filter: "ids/#", QoS: 1}}}); err != nil {
				t.Fatal(err)
			}
			if err := c.Publish(ctx, &packet.Publish{Topic: "ids/a", QoS: 1, Payload: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			select {
			case p := <-got:
				if len(p.Properties.SubscriptionIDs) != 1 || p.Properties.SubscriptionIDs[0] != 7 {
					t.Fatalf("Subscription Identifiers %v, want [7]", p.Properties.SubscriptionIDs)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("message not received")
			}
		})
	}
}
