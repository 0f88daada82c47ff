package broker_test

import (
	"fmt"
	"github.com/ternmq/tern/auth"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }
func u8(v byte) *byte      { return &v }

func TestV5ConnackCapabilities(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{MaxPacketSize: 4096, DisableRetain: true, ReceiveMaximum: 10})
	c := mt.Dial(t, b.Addr, packet.V5)
	p := c.Connect("caps", true).Properties
	if p.MaximumPacketSize == nil || *p.MaximumPacketSize != 4096 {
		t.Fatalf("Maximum Packet Size %v, want 4096", p.MaximumPacketSize)
	}
	if p.RetainAvailable == nil || *p.RetainAvailable != 0 {
		t.Fatalf("Retain Available %v, want 0", p.RetainAvailable)
	}
	if p.ReceiveMaximum == nil || *p.ReceiveMaximum != 10 {
		t.Fatalf("Receive Maximum %v, want 10", p.ReceiveMaximum)
	}
}

// TestV5ClientReceiveMaximum: the broker never has more unacknowledged
// QoS 1 messages in flight than the client allowed [MQTT-3.3.4-9].
// Checks [MQTT-4.9.0-1] [MQTT-4.9.0-2].
func TestV5ClientReceiveMaximum(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	sub := mt.Dial(t, b.Addr, packet.V5)
	sub.ConnectWith(&packet.Connect{ClientID: "rm", CleanStart: true, Properties: packet.Properties{ReceiveMaximum: u16(2)}})
	sub.Subscribe(1, 1, "rm")
	pub := mt.Dial(t, b.Addr, packet.V5)
	pub.Connect("p", true)
	for i := range 5 {
		pub.Send(&packet.Publish{Topic: "rm", QoS: 1, PacketID: uint16(i + 1), Payload: []byte(fmt.Sprint(i))})
		mt.Expect[*packet.Puback](pub)
	}
	a, b2 := mt.Expect[*packet.Publish](sub), mt.Expect[*packet.Publish](sub)
	sub.ExpectNothing(200 * time.Millisecond)
	sub.Send(&packet.Puback{PacketID: a.PacketID})
	if p := mt.Expect[*packet.Publish](sub); string(p.Payload) != "2" {
		t.Fatalf("got %q, want 2", p.Payload)
	}
	sub.Send(&packet.Puback{PacketID: b2.PacketID})
	if p := mt.Expect[*packet.Publish](sub); string(p.Payload) != "3" {
		t.Fatalf("got %q, want 3", p.Payload)
	}
}

// TestV5ServerReceiveMaximum: a client with more unreleased QoS 2 messages
// than the server's Receive Maximum is disconnected with 0x93.
// Checks [MQTT-3.3.4-7].
func TestV5ServerReceiveMaximum(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{ReceiveMaximum: 2})
	c := mt.Dial(t, b.Addr, packet.V5)
	c.Connect("greedy", true)
	for i := range 3 {
		c.Send(&packet.Publish{Topic: "q2", QoS: 2, PacketID: uint16(i + 1)})
	}
	got := c.ExpectClosed(mt.Timeout)
	last, ok := got[len(got)-1].(*packet.Disconnect)
	if !ok || last.ReasonCode != packet.ReceiveMaximumExceeded {
		t.Fatalf("got %+v, want DISCONNECT 0x93 last", got)
	}
}

// TestV5ClientMaximumPacketSize: a message larger than the client accepts
// is not sent to it; the next one is.
// Checks [MQTT-3.1.2-24] [MQTT-3.1.2-25].
func TestV5ClientMaximumPacketSize(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	sub := mt.Dial(t, b.Addr, packet.V5)
	sub.ConnectWith(&packet.Connect{ClientID: "small", CleanStart: true, Properties: packet.Properties{MaximumPacketSize: u32(100)}})
	sub.Subscribe(1, 1, "sz")
	pub := mt.Dial(t, b.Addr, packet.V5)
	pub.Connect("p", true)
	pub.Send(&packet.Publish{Topic: "sz", QoS: 1, PacketID: 1, Payload: make([]byte, 200)})
	mt.Expect[*packet.Puback](pub)
	pub.Send(&packet.Publish{Topic: "sz", QoS: 0, Payload: make([]byte, 200)})
	pub.Send(&packet.Publish{Topic: "sz", QoS: 1, PacketID: 2, Payload: []byte("fits")})
	mt.Expect[*packet.Puback](pub)
	if p := mt.Expect[*packet.Publish](sub); string(p.Payload) != "fits" {
		t.Fatalf("got %d bytes, want only the small message", len(p.Payload))
	}
}

// Checks [MQTT-3.3.2-8] [MQTT-3.3.2-9] [MQTT-3.3.4-6] [MQTT-4.13.1-1] [MQTT-4.13.2-1].
func TestV5PublishViolations(t *testing.T) {
	cases := []struct {
		name string
		p    *packet.Publish
		want packet.ReasonCode
	}{
		{"subscription identifier", &packet.Publish{Topic: "a", Properties: packet.Properties{SubscriptionIDs: []uint32{1}}}, packet.ProtocolError},
		{"topic alias 0", &packet.Publish{Topic: "a", Properties: packet.Properties{TopicAlias: u16(0)}}, packet.TopicAliasInvalid},
		{"topic alias above maximum", &packet.Publish{Topic: "a", Properties: packet.Properties{TopicAlias: u16(65)}}, packet.TopicAliasInvalid},
		{"unknown topic alias", &packet.Publish{Properties: packet.Properties{TopicAlias: u16(3)}}, packet.ProtocolError},
		{"payload not utf-8", &packet.Publish{Topic: "a", Payload: []byte{0xff, 0xfe}, Properties: packet.Properties{PayloadFormat: u8(1)}}, packet.PayloadFormatInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			c := mt.Dial(t, b.Addr, packet.V5)
			c.Connect("c", true)
			c.Send(tc.p)
			got := c.ExpectClosed(mt.Timeout)
			if len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != tc.want {
				t.Fatalf("got %+v, want DISCONNECT %#x", got, tc.want)
			}
		})
	}
}

// Checks [MQTT-3.1.2-8] [MQTT-3.1.2-10] [MQTT-3.14.4-3].
func TestV5DisconnectWithWill(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	w := mt.Dial(t, b.Addr, packet.V5)
	w.Connect("w", true)
	w.Subscribe(1, 0, "will")
	c := mt.Dial(t, b.Addr, packet.V5)
	c.ConnectWith(&packet.Connect{ClientID: "c", CleanStart: true, Will: &packet.Will{Topic: "will", Payload: []byte("bye"),
		Properties: packet.Properties{ContentType: "text/plain", User: []packet.UserProperty{{Key: "k", Value: "v"}}}}})
	c.Send(&packet.Disconnect{ReasonCode: packet.DisconnectWithWill})
	c.ExpectClosed(mt.Timeout)
	p := mt.Expect[*packet.Publish](w)
	if string(p.Payload) != "bye" || p.Properties.ContentType != "text/plain" || len(p.Properties.User) != 1 {
		t.Fatalf("will %+v, want payload and will properties forwarded", p)
	}
}

func TestV5SessionExpiryAtDisconnect(t *testing.T) {
	t.Run("cannot go from 0 to non-zero", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{})
		c := mt.Dial(t, b.Addr, packet.V5)
		c.Connect("c", true)
		c.Send(&packet.Disconnect{Properties: packet.Properties{SessionExpiry: u32(60)}})
		got := c.ExpectClosed(mt.Timeout)
		if len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != packet.ProtocolError {
			t.Fatalf("got %+v, want DISCONNECT 0x82", got)
		}
	})
	t.Run("set to 0 ends the session", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{})
		c := mt.Dial(t, b.Addr, packet.V5)
		c.Connect("c", false) // never expires
		c.Subscribe(1, 1, "x")
		c.Send(&packet.Disconnect{Properties: packet.Properties{SessionExpiry: u32(0)}})
		c.ExpectClosed(mt.Timeout)
		mt.Eventually(t, "session gone", func() bool { return b.Stats().Sessions == 0 })
	})
}

// TestV5SubscriptionOptions: No Local, Retain As Published, Retain
// Handling and Subscription Identifiers.
// Checks [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] [MQTT-3.8.4-4].
func TestV5SubscriptionOptions(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	c := mt.Dial(t, b.Addr, packet.V5)
	c.Connect("me", true)
	c.Send(&packet.Publish{Topic: "keep", Retain: true, Payload: []byte("r")})
	c.Send(&packet.Subscribe{PacketID: 1, Properties: packet.Properties{SubscriptionIDs: []uint32{7}},
		Subscriptions: []packet.Subscription{{Filter: "own/#", NoLocal: true}, {Filter: "keep", RetainAsPublished: true, RetainHandling: 1}}})
	mt.Expect[*packet.Suback](c)
	if p := mt.Expect[*packet.Publish](c); p.Topic != "keep" || !p.Retain || len(p.Properties.SubscriptionIDs) != 1 || p.Properties.SubscriptionIDs[0] != 7 {
		t.Fatalf("retained on subscribe %+v, want it with subscription id 7", p)
	}
	c.Send(&packet.Publish{Topic: "own/x", Payload: []byte("mine")}) // [MQTT-3.8.3-3] not back to me
	c.Send(&packet.Publish{Topic: "keep", Retain: true, Payload: []byte("again")})
	p := mt.Expect[*packet.Publish](c)
	if p.Topic != "keep" || !p.Retain { // Retain As Published [MQTT-3.3.1-13]
		t.Fatalf("got %+v, want keep with RETAIN kept", p)
	}
	// Retain Handling 1: an existing subscription gets no retained copy.
	c.Send(&packet.Subscribe{PacketID: 2, Subscriptions: []packet.Subscription{{Filter: "keep", RetainHandling: 1}}})
	mt.Expect[*packet.Suback](c)
	// Retain Handling 2: never on subscribe.
	c.Send(&packet.Subscribe{PacketID: 3, Subscriptions: []packet.Subscription{{Filter: "+", RetainHandling: 2}}})
	mt.Expect[*packet.Suback](c)
	c.ExpectNothing(200 * time.Millisecond)
}

// TestMixedVersions: properties survive a v5 → v5 hop and are dropped for
// 3.1.1; a 3.1.1 publisher reaches a v5 subscriber.
func TestMixedVersions(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	v5 := mt.Dial(t, b.Addr, packet.V5)
	v5.Connect("five", true)
	v5.Subscribe(1, 1, "mix")
	v3 := mt.Dial(t, b.Addr, packet.V311)
	v3.Connect("three", true)
	v3.Subscribe(1, 1, "mix")

	v3pub := mt.Dial(t, b.Addr, packet.V311)
	v3pub.Connect("three-pub", true)
	v3pub.Send(&packet.Publish{Topic: "mix", QoS: 1, PacketID: 1, Payload: []byte("from 3")})
	mt.Expect[*packet.Puback](v3pub)
	for _, c := range []*mt.Raw{v5, v3} {
		p := mt.Expect[*packet.Publish](c)
		if string(p.Payload) != "from 3" {
			t.Fatalf("got %q", p.Payload)
		}
		c.Send(&packet.Puback{PacketID: p.PacketID})
	}

	props := packet.Properties{ContentType: "application/json", ResponseTopic: "reply/to", CorrelationData: []byte{1, 2},
		PayloadFormat: u8(1), MessageExpiry: u32(100),
		User: []packet.UserProperty{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "a", Value: "3"}}}
	v5pub := mt.Dial(t, b.Addr, packet.V5)
	v5pub.Connect("five-pub", true)
	v5pub.Send(&packet.Publish{Topic: "mix", QoS: 1, PacketID: 2, Payload: []byte("{}"), Properties: props})
	mt.Expect[*packet.Puback](v5pub)
	p := mt.Expect[*packet.Publish](v5)
	got := p.Properties
	if got.ContentType != props.ContentType || got.ResponseTopic != props.ResponseTopic || string(got.CorrelationData) != string(props.CorrelationData) ||
		got.PayloadFormat == nil || fmt.Sprint(got.User) != fmt.Sprint(props.User) {
		t.Fatalf("properties %+v, want %+v (user properties in order)", got, props)
	}
	if got.MessageExpiry == nil || *got.MessageExpiry > 100 || *got.MessageExpiry < 98 { // [MQTT-3.3.2-6]
		t.Fatalf("message expiry %v, want the remaining interval", got.MessageExpiry)
	}
	if q := mt.Expect[*packet.Publish](v3); string(q.Payload) != "{}" {
		t.Fatalf("3.1.1 subscriber got %q", q.Payload)
	}
}

// TestMessageExpiry: a queued message whose expiry passes is not delivered.
// Checks [MQTT-3.3.2-5].
func TestMessageExpiry(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	sub := mt.Dial(t, b.Addr, packet.V5)
	sub.Connect("exp", false)
	sub.Subscribe(1, 1, "e")
	sub.Send(&packet.Disconnect{})
	sub.ExpectClosed(mt.Timeout)
	mt.Eventually(t, "session offline", func() bool { return b.Stats().Connections == 0 })
	pub := mt.Dial(t, b.Addr, packet.V5)
	pub.Connect("p", true)
	pub.Send(&packet.Publish{Topic: "e", QoS: 1, PacketID: 1, Payload: []byte("short"), Properties: packet.Properties{MessageExpiry: u32(1)}})
	mt.Expect[*packet.Puback](pub)
	pub.Send(&packet.Publish{Topic: "e", QoS: 1, PacketID: 2, Payload: []byte("long"), Properties: packet.Properties{MessageExpiry: u32(60)}})
	mt.Expect[*packet.Puback](pub)
	time.Sleep(1100 * time.Millisecond) // let the first expire
	back := mt.Dial(t, b.Addr, packet.V5)
	back.Connect("exp", false)
	if p := mt.Expect[*packet.Publish](back); string(p.Payload) != "long" {
		t.Fatalf("got %q, want only the unexpired message", p.Payload)
	}
}

// TestV5TopicAliases: inbound aliases resolve; outbound the broker sets up
// aliases within the client's maximum and then sends only the alias.
// Checks [MQTT-3.1.2-26] [MQTT-3.1.2-27] [MQTT-3.3.2-7] [MQTT-3.3.2-11] [MQTT-3.3.2-12].
func TestV5TopicAliases(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	sub := mt.Dial(t, b.Addr, packet.V5)
	sub.ConnectWith(&packet.Connect{ClientID: "s", CleanStart: true, Properties: packet.Properties{TopicAliasMaximum: u16(1)}})
	sub.Subscribe(1, 1, "al/#")
	pub := mt.Dial(t, b.Addr, packet.V5)
	if p := pub.Connect("p", true).Properties.TopicAliasMaximum; p == nil || *p != 64 {
		t.Fatalf("Topic Alias Maximum %v, want 64", p)
	}
	pub.Send(&packet.Publish{Topic: "al/long/topic/name", Payload: []byte("1"), Properties: packet.Properties{TopicAlias: u16(5)}})
	pub.Send(&packet.Publish{Payload: []byte("2"), QoS: 1, PacketID: 1, Properties: packet.Properties{TopicAlias: u16(5)}})
	mt.Expect[*packet.Puback](pub)
	pub.Send(&packet.Publish{Topic: "al/other", Payload: []byte("3")})

	first := mt.Expect[*packet.Publish](sub)
	if first.Topic != "al/long/topic/name" || first.Properties.TopicAlias == nil || *first.Properties.TopicAlias != 1 {
		t.Fatalf("first %+v, want the topic with new alias 1", first)
	}
	second := mt.Expect[*packet.Publish](sub)
	if second.Topic != "" || second.Properties.TopicAlias == nil || *second.Properties.TopicAlias != 1 || string(second.Payload) != "2" || second.QoS != 1 {
		t.Fatalf("second %+v, want alias 1 alone", second)
	}
	sub.Send(&packet.Puback{PacketID: second.PacketID})
	third := mt.Expect[*packet.Publish](sub) // the client's maximum (1) is used up
	if third.Topic != "al/other" || third.Properties.TopicAlias != nil {
		t.Fatalf("third %+v, want a plain topic", third)
	}
}

// Checks [MQTT-3.8.3-2].
func TestV5FeatureSwitches(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{DisableShared: true, DisableWildcards: true, DisableSubIDs: true})
	c := mt.Dial(t, b.Addr, packet.V5)
	p := c.Connect("c", true).Properties
	if p.SharedSubAvailable == nil || *p.SharedSubAvailable != 0 || p.WildcardSubAvailable == nil || *p.WildcardSubAvailable != 0 ||
		p.SubIDAvailable == nil || *p.SubIDAvailable != 0 {
		t.Fatalf("CONNACK %+v: availability flags must tell the truth", p)
	}
	c.Send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "$share/g/a"}, {Filter: "a/+"}, {Filter: "plain"}}})
	got := mt.Expect[*packet.Suback](c).ReasonCodes
	want := []packet.ReasonCode{packet.SharedSubNotSupported, packet.WildcardSubsNotSupported, 0}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("SUBACK %v, want %v", got, want)
	}
	c.Send(&packet.Subscribe{PacketID: 2, Properties: packet.Properties{SubscriptionIDs: []uint32{3}}, Subscriptions: []packet.Subscription{{Filter: "x"}}})
	if got := mt.Expect[*packet.Suback](c).ReasonCodes; got[0] != packet.SubIDsNotSupported {
		t.Fatalf("SUBACK %v, want 0xA1", got)
	}
}

// Checks [MQTT-3.8.3-4].
func TestV5NoLocalOnSharedIsProtocolError(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	c := mt.Dial(t, b.Addr, packet.V5)
	c.Connect("c", true)
	c.Send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "$share/g/a", NoLocal: true}}})
	got := c.ExpectClosed(mt.Timeout)
	if len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != packet.ProtocolError {
		t.Fatalf("got %+v, want DISCONNECT 0x82", got)
	}
}

// Checks [MQTT-3.1.2-28].
func TestV5ServerKeepAliveAndResponseInformation(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{MaxKeepAlive: 20 * time.Second, ResponseInformation: "replies/%c"})
	c := mt.Dial(t, b.Addr, packet.V5)
	p := c.ConnectWith(&packet.Connect{ClientID: "rr", CleanStart: true, KeepAlive: 600,
		Properties: packet.Properties{RequestResponseInfo: u8(1)}}).Properties
	if p.ServerKeepAlive == nil || *p.ServerKeepAlive != 20 {
		t.Fatalf("Server Keep Alive %v, want 20", p.ServerKeepAlive)
	}
	if p.ResponseInfo != "replies/rr" {
		t.Fatalf("Response Information %q", p.ResponseInfo)
	}
	quiet := mt.Dial(t, b.Addr, packet.V5)
	if p := quiet.Connect("q", true).Properties; p.ResponseInfo != "" {
		t.Fatal("Response Information sent without being requested")
	}
}

func TestV5RefusalCarriesReasonString(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{MaxClientIDLength: 4})
	c := mt.Dial(t, b.Addr, packet.V5)
	ack := c.Connect("too-long-id", true)
	if ack.ReasonCode != packet.ClientIDNotValid || ack.Properties.ReasonString == "" {
		t.Fatalf("CONNACK %+v, want 0x85 with a reason string", ack)
	}
}

// Checks [MQTT-3.2.2-14].
func TestV5RetainNotSupported(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{DisableRetain: true})
	c := mt.Dial(t, b.Addr, packet.V5)
	c.Connect("c", true)
	c.Send(&packet.Publish{Topic: "r", Retain: true, QoS: 1, PacketID: 1, Payload: []byte("x")})
	got := c.ExpectClosed(mt.Timeout)
	if len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != packet.RetainNotSupported {
		t.Fatalf("got %+v, want DISCONNECT 0x9A", got)
	}
	w := mt.Dial(t, b.Addr, packet.V5)
	ack := w.ConnectWith(&packet.Connect{ClientID: "w", CleanStart: true, Will: &packet.Will{Topic: "will", Retain: true, Payload: []byte("bye")}})
	if ack.ReasonCode != packet.RetainNotSupported { // [MQTT-3.2.2-13]
		t.Fatalf("CONNACK %#x, want 0x9A", ack.ReasonCode)
	}
}

// Reason Strings are left out rather than exceed the client's Maximum
// Packet Size [MQTT-3.2.2-19] [MQTT-3.14.2-3].
func TestV5ReasonStringWithinMaximumPacketSize(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{Authenticator: auth.NewStatic(false, nil)})
	c := mt.Dial(t, b.Addr, packet.V5)
	ack := c.ConnectWith(&packet.Connect{ClientID: "c", CleanStart: true, Properties: packet.Properties{MaximumPacketSize: u32(16)}})
	if enc, _ := ack.Append(nil, packet.V5); len(enc) > 16 || ack.ReasonCode != packet.NotAuthorized {
		t.Fatalf("CONNACK %+v of %d bytes to a client whose maximum is 16", ack, len(enc))
	}
	b2 := mt.StartBroker(t, broker.Options{})
	old := mt.Dial(t, b2.Addr, packet.V5)
	old.ConnectWith(&packet.Connect{ClientID: "c", CleanStart: true, Properties: packet.Properties{MaximumPacketSize: u32(16)}})
	mt.Dial(t, b2.Addr, packet.V5).Connect("c", true)
	for _, p := range old.ExpectClosed(mt.Timeout) {
		if enc, _ := p.Append(nil, packet.V5); len(enc) > 16 {
			t.Fatalf("%s of %d bytes to a client whose maximum is 16", p.Type(), len(enc))
		}
	}
}
