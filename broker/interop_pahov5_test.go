package broker_test

// Interoperability with an MQTT 5.0 client we did not write: Eclipse Paho
// for Go, github.com/eclipse/paho.golang (the low-level paho package, one
// client per net.Conn, so that each test controls its connection), and
// paho.mqtt.golang (3.1.1) for the mixed-version tests. Every test speaks
// over real sockets on loopback; every wait is bounded by mt.Timeout.
//
// Where a test must show that something does NOT arrive, it does not
// sleep: it sends a sentinel message along a path that is ordered after
// the one being checked, and requires the sentinel to arrive first. The
// broker routes a PUBLISH (and sends the retained messages a SUBSCRIBE
// matches) before it reads the connection's next packet, so a message
// that wrongly went out would already be queued ahead of the sentinel.

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/auth/scram"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// p5Client is a paho.golang client on its own loopback connection; the
// messages it receives are collected in arrival order.
type p5Client struct {
	t    testing.TB
	cl   *paho.Client
	conn net.Conn
	msgs chan *paho.Publish
	disc chan *paho.Disconnect // DISCONNECT sent by the server
	up   bool                  // Connect succeeded and Disconnect was not called
}

// newP5Client dials addr and wraps the connection in a paho.golang client
// that is not connected yet; cfg may adjust the client configuration. The
// client is disconnected when the test ends.
func newP5Client(t testing.TB, addr string, cfg ...func(*paho.ClientConfig)) *p5Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, mt.Timeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &p5Client{t: t, conn: conn, msgs: make(chan *paho.Publish, 256), disc: make(chan *paho.Disconnect, 1)}
	conf := paho.ClientConfig{
		Conn:          conn,
		PacketTimeout: mt.Timeout,
		// The channel is sized for the test, so a full one is a test bug;
		// blocking rather than dropping makes it show.
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				c.msgs <- pr.Packet
				return true, nil
			},
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.disc <- d:
			default:
			}
		},
	}
	for _, f := range cfg {
		f(&conf)
	}
	c.cl = paho.NewClient(conf)
	t.Cleanup(func() {
		if c.up {
			c.cl.Disconnect(&paho.Disconnect{}) // waits for the client to stop
		}
		conn.Close()
	})
	return c
}

// connect sends cp and returns the CONNACK and paho's verdict.
func (c *p5Client) connect(cp *paho.Connect) (*paho.Connack, error) {
	ca, err := c.cl.Connect(c.t.Context(), cp)
	c.up = err == nil
	return ca, err
}

// p5Connect returns a connected paho.golang client and its CONNACK.
func p5Connect(t testing.TB, addr string, cp *paho.Connect, cfg ...func(*paho.ClientConfig)) (*p5Client, *paho.Connack) {
	t.Helper()
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 30
	}
	c := newP5Client(t, addr, cfg...)
	ca, err := c.connect(cp)
	if err != nil {
		t.Fatalf("connect %q: %v (CONNACK %v)", cp.ClientID, err, ca)
	}
	return c, ca
}

// p5Clean is a CONNECT with Clean Start and no session kept.
func p5Clean(id string) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
}

// p5Persistent is a CONNECT resuming (or starting) a session that lives
// expiry seconds after the connection; nil leaves the property out.
func p5Persistent(id string, expiry *uint32) *paho.Connect {
	return &paho.Connect{ClientID: id, KeepAlive: 30, Properties: &paho.ConnectProperties{SessionExpiryInterval: expiry}}
}

func (c *p5Client) disconnect(code byte) {
	c.t.Helper()
	c.up = false
	if err := c.cl.Disconnect(&paho.Disconnect{ReasonCode: code}); err != nil {
		c.t.Fatalf("disconnect: %v", err)
	}
}

// publish publishes p and waits for its flow to complete successfully.
func (c *p5Client) publish(p *paho.Publish) *paho.PublishResponse {
	c.t.Helper()
	r, err := c.cl.Publish(c.t.Context(), p)
	if err != nil {
		c.t.Fatalf("publish %s qos %d: %v", p.Topic, p.QoS, err)
	}
	if r.ReasonCode != 0 {
		c.t.Fatalf("publish %s qos %d: reason code %#x", p.Topic, p.QoS, r.ReasonCode)
	}
	return r
}

// subscribe subscribes with subs in one SUBSCRIBE and checks that each is
// granted the QoS it asked for.
func (c *p5Client) subscribe(subs ...paho.SubscribeOptions) {
	c.t.Helper()
	c.subscribeWith(&paho.Subscribe{Subscriptions: subs})
}

func (c *p5Client) subscribeWith(s *paho.Subscribe) {
	c.t.Helper()
	sa, err := c.cl.Subscribe(c.t.Context(), s)
	if err != nil {
		c.t.Fatalf("subscribe %+v: %v", s.Subscriptions, err)
	}
	for i, sub := range s.Subscriptions {
		if sa.Reasons[i] != sub.QoS {
			c.t.Fatalf("subscribe %q: SUBACK %#x, want granted QoS %d", sub.Topic, sa.Reasons[i], sub.QoS)
		}
	}
}

// next returns the next message received, failing the test after
// mt.Timeout.
func (c *p5Client) next() *paho.Publish {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(mt.Timeout):
		c.t.Fatalf("no message within %s", mt.Timeout)
		return nil
	}
}

// expect reads the next message and checks its topic, payload and QoS.
func (c *p5Client) expect(topic, payload string, qos byte) *paho.Publish {
	c.t.Helper()
	m := c.next()
	if m.Topic != topic || string(m.Payload) != payload || m.QoS != qos {
		c.t.Fatalf("got %s %.40q qos %d, want %s %.40q qos %d", m.Topic, m.Payload, m.QoS, topic, payload, qos)
	}
	return m
}

// sentinel publishes a QoS 1 message on topic from c and requires it to
// be the next message c receives: whatever should not have reached c
// before it did not (see the file comment). c must be subscribed to topic
// without No Local.
func (c *p5Client) sentinel(topic string) {
	c.t.Helper()
	c.publish(&paho.Publish{Topic: topic, QoS: 1, Payload: []byte("sentinel")})
	c.expect(topic, "sentinel", 1)
}

// expectServerDisconnect waits for a DISCONNECT from the server, checks
// its reason code and that it says why in a Reason String, and waits for
// the client to stop.
func (c *p5Client) expectServerDisconnect(code byte) {
	c.t.Helper()
	select {
	case d := <-c.disc:
		if d.ReasonCode != code {
			c.t.Fatalf("server DISCONNECT reason %#x, want %#x", d.ReasonCode, code)
		}
		if d.Properties == nil || d.Properties.ReasonString == "" {
			c.t.Errorf("server DISCONNECT %#x without a Reason String", code)
		}
	case <-time.After(mt.Timeout):
		c.t.Fatalf("no DISCONNECT from the server within %s", mt.Timeout)
	}
	select {
	case <-c.cl.Done():
	case <-time.After(mt.Timeout):
		c.t.Fatalf("client still running %s after the server's DISCONNECT", mt.Timeout)
	}
}

// p5Ptr returns a pointer to v, for optional properties.
func p5Ptr[T any](v T) *T { return &v }

// p5Val shows an optional property's value.
func p5Val[T any](p *T) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprint(*p)
}

// p5Deny refuses publishing and subscribing to one topic and allows the
// rest (reading included, so that only the publish check can stop a
// message).
type p5Deny string

var _ auth.Authorizer = p5Deny("")

func (d p5Deny) Authorize(_ *auth.Client, a auth.Action, topic string) bool {
	return a == auth.Read || topic != string(d)
}

// Checks [MQTT-3.1.3-7].
func TestPahoV5ConnackProperties(t *testing.T) {
	t.Run("configured", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{MaxPacketSize: 8192, ReceiveMaximum: 20, DisableRetain: true})
		_, ca := p5Connect(t, b.Addr, p5Clean("caps"))
		p := ca.Properties
		if p.MaximumPacketSize == nil || *p.MaximumPacketSize != 8192 {
			t.Errorf("Maximum Packet Size %s, want 8192", p5Val(p.MaximumPacketSize))
		}
		if p.ReceiveMaximum == nil || *p.ReceiveMaximum != 20 {
			t.Errorf("Receive Maximum %s, want 20", p5Val(p.ReceiveMaximum))
		}
		if p.RetainAvailable {
			t.Errorf("Retain Available true, want false with DisableRetain")
		}
		if p.AssignedClientID != "" {
			t.Errorf("Assigned Client Identifier %q for a client that chose its id", p.AssignedClientID)
		}
		if ca.SessionPresent {
			t.Error("session present on a first connection")
		}
	})
	t.Run("defaults", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{})
		_, ca := p5Connect(t, b.Addr, p5Clean("caps"))
		p := ca.Properties
		if p.MaximumPacketSize == nil || *p.MaximumPacketSize != 1<<20 {
			t.Errorf("Maximum Packet Size %s, want 1 MiB", p5Val(p.MaximumPacketSize))
		}
		if p.ReceiveMaximum == nil || *p.ReceiveMaximum != 1024 {
			t.Errorf("Receive Maximum %s, want 1024", p5Val(p.ReceiveMaximum))
		}
		if !p.RetainAvailable || !p.WildcardSubAvailable || !p.SubIDAvailable || !p.SharedSubAvailable {
			t.Errorf("availability flags %+v, want all available", p)
		}
		if p.MaximumQoS != nil || p.ServerKeepAlive != nil || p.ResponseInfo != "" {
			t.Errorf("Maximum QoS %s, Server Keep Alive %s, Response Information %q: want all absent",
				p5Val(p.MaximumQoS), p5Val(p.ServerKeepAlive), p.ResponseInfo)
		}
	})
	t.Run("server keep alive and response information", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{MaxKeepAlive: 10 * time.Second, ResponseInformation: "resp/%c"})
		cases := []struct {
			keepAlive uint16
			request   bool
			wantKA    *uint16 // nil: the client's own keep alive stands
			wantInfo  string
		}{
			{60, true, p5Ptr[uint16](10), "resp/ka60"}, // [MQTT-3.2.2-21] above the cap: the client must use 10
			{0, false, p5Ptr[uint16](10), ""},          // 0 (none) is above any cap
			{5, false, nil, ""},                        // below the cap: nothing to say
		}
		for _, tc := range cases {
			cp := p5Clean(fmt.Sprintf("ka%d", tc.keepAlive))
			cp.KeepAlive = tc.keepAlive
			cp.Properties = &paho.ConnectProperties{RequestResponseInfo: tc.request}
			c := newP5Client(t, b.Addr)
			ca, err := c.connect(cp) // not p5Connect: keep alive 0 must stay 0
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			p := ca.Properties
			if p5Val(p.ServerKeepAlive) != p5Val(tc.wantKA) {
				t.Errorf("keep alive %d: Server Keep Alive %s, want %s", tc.keepAlive, p5Val(p.ServerKeepAlive), p5Val(tc.wantKA))
			}
			// Response Information only to a client that asked for it.
			if p.ResponseInfo != tc.wantInfo {
				t.Errorf("request %v: Response Information %q, want %q", tc.request, p.ResponseInfo, tc.wantInfo)
			}
		}
	})
	t.Run("assigned client identifier", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{})
		seen := map[string]bool{}
		for range 2 {
			c, ca := p5Connect(t, b.Addr, p5Clean(""))
			id := ca.Properties.AssignedClientID
			// [MQTT-3.2.2-16] a unique id the client must use from now on;
			// 1-23 characters is what every server accepts.
			if id == "" || len(id) > 23 || seen[id] {
				t.Fatalf("Assigned Client Identifier %q (seen %v), want a new id of 1-23 characters", id, seen)
			}
			seen[id] = true
			if c.cl.ClientID() != id {
				t.Fatalf("paho uses client id %q, want the assigned %q", c.cl.ClientID(), id)
			}
		}
		mt.Eventually(t, "two sessions", func() bool { return b.Stats().Sessions == 2 })
	})
}

// Checks [MQTT-4.13.2-1].
func TestPahoV5ConnectRefused(t *testing.T) {
	users := broker.Options{Authenticator: auth.NewStatic(false, map[string]string{"u": "p"})}
	cases := []struct {
		name       string
		opts       broker.Options
		id         string
		user, pass string // user "" sends no username
		code       byte
	}{
		{"bad password", users, "c1", "u", "wrong", 0x86},
		{"unknown user", users, "c1", "x", "p", 0x86},
		{"anonymous", users, "c1", "", "", 0x87},
		{"client id too long", broker.Options{MaxClientIDLength: 8}, "much-too-long", "", "", 0x85},
		{"good credentials", users, "c1", "u", "p", 0x00},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mt.StartBroker(t, tc.opts)
			c := newP5Client(t, b.Addr)
			cp := p5Clean(tc.id)
			if tc.user != "" {
				cp.Username, cp.UsernameFlag = tc.user, true
				cp.Password, cp.PasswordFlag = []byte(tc.pass), true
			}
			ca, err := c.connect(cp)
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("connect: %v, want accepted", err)
				}
				if s := b.Stats(); s.Connections != 1 {
					t.Fatalf("connections %d, want 1", s.Connections)
				}
				return
			}
			if err == nil {
				t.Fatal("connect succeeded, want a refusal")
			}
			if ca == nil {
				t.Fatalf("connect: %v, but no CONNACK", err)
			}
			if ca.ReasonCode != tc.code || ca.SessionPresent {
				t.Fatalf("CONNACK reason %#x session present %v, want %#x and 0 [MQTT-3.2.2-6]", ca.ReasonCode, ca.SessionPresent, tc.code)
			}
			if ca.Properties.ReasonString == "" {
				t.Error("refusal without a Reason String")
			}
			// [MQTT-3.2.2-7] the server closes the connection.
			c.conn.SetReadDeadline(time.Now().Add(mt.Timeout))
			if n, err := c.conn.Read(make([]byte, 1)); err == nil {
				t.Fatalf("read %d bytes after the refusal, want the connection closed", n)
			}
			if s := b.Stats(); s.ConnectionsTotal != 0 || s.Sessions != 0 {
				t.Fatalf("refused client counted: %+v", s)
			}
		})
	}
}

// TestPahoV5QoSDelivery: messages at each QoS reach a subscriber intact, at
// the lower of the published and the granted QoS, with a successful PUBACK
// or PUBCOMP for the publisher.
// Checks [MQTT-3.3.4-1] [MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-4.2-1].
func TestPahoV5QoSDelivery(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	large := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB
	payloads := [][]byte{[]byte("hello"), {}, binary, large, []byte("héllo wörld ✓")}
	for _, sq := range []byte{0, 1, 2} {
		for _, pq := range []byte{0, 1, 2} {
			t.Run(fmt.Sprintf("publish qos %d subscribe qos %d", pq, sq), func(t *testing.T) {
				topic := fmt.Sprintf("qos/%d/%d", pq, sq)
				sub, _ := p5Connect(t, b.Addr, p5Clean("sub"))
				sub.subscribe(paho.SubscribeOptions{Topic: topic, QoS: sq})
				pub, _ := p5Connect(t, b.Addr, p5Clean("pub"))
				for _, pl := range payloads {
					pub.publish(&paho.Publish{Topic: topic, QoS: pq, Payload: pl})
				}
				want := min(pq, sq) // [MQTT-3.8.4-8]
				for i, pl := range payloads {
					m := sub.next()
					if m.Topic != topic || m.QoS != want || m.Retain || m.Duplicate() || !bytes.Equal(m.Payload, pl) {
						t.Fatalf("message %d: %s qos %d retain %v dup %v, %d bytes; want %s qos %d, %d bytes intact",
							i, m.Topic, m.QoS, m.Retain, m.Duplicate(), len(m.Payload), topic, want, len(pl))
					}
				}
			})
		}
	}
}

// TestPahoV5PublishNotAuthorized: a publish the Authorizer refuses is
// answered with reason 0x87 in PUBACK (QoS 1) or PUBREC (QoS 2) and not
// delivered; the connection stays usable. A refused subscription gets
// SUBACK 0x87.
// Checks [MQTT-3.3.5-2].
func TestPahoV5PublishNotAuthorized(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{Authorizer: p5Deny("deny")})
	sub, _ := p5Connect(t, b.Addr, p5Clean("sub"))
	sub.subscribe(paho.SubscribeOptions{Topic: "#", QoS: 2})
	pub, _ := p5Connect(t, b.Addr, p5Clean("pub"))

	r, err := pub.cl.Publish(t.Context(), &paho.Publish{Topic: "deny", QoS: 1, Payload: []byte("no")})
	if r == nil || r.ReasonCode != 0x87 || err == nil {
		t.Fatalf("QoS 1 publish refused: response %+v error %v, want PUBACK 0x87", r, err)
	}
	r, err = pub.cl.Publish(t.Context(), &paho.Publish{Topic: "deny", QoS: 2, Payload: []byte("no")})
	if err != nil || r == nil || r.ReasonCode != 0x87 {
		t.Fatalf("QoS 2 publish refused: response %+v error %v, want PUBREC 0x87", r, err)
	}
	// QoS 0 has no acknowledgement; it is dropped all the same.
	pub.publish(&paho.Publish{Topic: "deny", QoS: 0, Payload: []byte("no")})
	// The connection is still good, and nothing refused went through.
	pub.publish(&paho.Publish{Topic: "allow", QoS: 1, Payload: []byte("yes")})
	pub.publish(&paho.Publish{Topic: "allow", QoS: 2, Payload: []byte("yes 2")})
	sub.expect("allow", "yes", 1)
	sub.expect("allow", "yes 2", 2)

	sa, err := sub.cl.Subscribe(t.Context(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "deny", QoS: 1}}})
	if sa == nil || len(sa.Reasons) != 1 || sa.Reasons[0] != 0x87 || err == nil {
		t.Fatalf("refused subscription: SUBACK %+v error %v, want 0x87", sa, err)
	}
	sub.sentinel("after")
}

// TestPahoV5PublishProperties: the application properties of a PUBLISH
// reach v5 subscribers unchanged (user properties in order, duplicates
// kept), with the remaining Message Expiry Interval; a message without
// properties arrives without any.
// Checks [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-20].
func TestPahoV5PublishProperties(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	plain, _ := p5Connect(t, b.Addr, p5Clean("plain"))
	plain.subscribe(paho.SubscribeOptions{Topic: "props/#", QoS: 2})
	// A subscription identifier makes the broker encode this subscriber's
	// copy separately: both encodings must carry the properties.
	withID, _ := p5Connect(t, b.Addr, p5Clean("with-id"))
	subID := 5
	withID.subscribeWith(&paho.Subscribe{Properties: &paho.SubscribeProperties{SubscriptionIdentifier: &subID},
		Subscriptions: []paho.SubscribeOptions{{Topic: "props/#", QoS: 2}}})
	pub, _ := p5Connect(t, b.Addr, p5Clean("pub"))

	utf8, expiry := byte(1), uint32(100)
	user := paho.UserProperties{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "a", Value: "3"},
		{Key: "empty", Value: ""}, {Key: "ключ", Value: "値"}}
	props := &paho.PublishProperties{ContentType: "application/json", ResponseTopic: "props/reply",
		CorrelationData: []byte{0, 1, 2, 0xff}, PayloadFormat: &utf8, MessageExpiry: &expiry, User: user}
	for _, qos := range []byte{0, 1, 2} {
		pub.publish(&paho.Publish{Topic: "props/full", QoS: qos, Payload: []byte(`{"ok":true}`), Properties: props})
		pub.publish(&paho.Publish{Topic: "props/none", QoS: qos, Payload: []byte("bare")})
	}
	for _, c := range []*p5Client{plain, withID} {
		for _, qos := range []byte{0, 1, 2} {
			m := c.expect("props/full", `{"ok":true}`, qos)
			p := m.Properties
			if p.ContentType != props.ContentType || p.ResponseTopic != props.ResponseTopic ||
				!bytes.Equal(p.CorrelationData, props.CorrelationData) || p.PayloadFormat == nil || *p.PayloadFormat != 1 {
				t.Fatalf("qos %d: properties %+v, want %+v", qos, p, props)
			}
			if !slices.Equal(p.User, user) {
				t.Fatalf("qos %d: user properties %v, want %v in order [MQTT-3.3.2-18]", qos, p.User, user)
			}
			// [MQTT-3.3.2-6] the remaining lifetime, never more than sent.
			if p.MessageExpiry == nil || *p.MessageExpiry == 0 || *p.MessageExpiry > expiry {
				t.Fatalf("qos %d: Message Expiry Interval %s, want 1..%d", qos, p5Val(p.MessageExpiry), expiry)
			}
			m = c.expect("props/none", "bare", qos)
			p = m.Properties
			if p.ContentType != "" || p.ResponseTopic != "" || p.CorrelationData != nil || p.PayloadFormat != nil ||
				p.MessageExpiry != nil || len(p.User) != 0 {
				t.Fatalf("qos %d: message without properties arrived with %+v", qos, p)
			}
		}
	}
}

// TestPahoV5NoLocal: with No Local, a client does not get its own
// messages back through that subscription [MQTT-3.8.3-3]; others do, and
// its subscriptions without No Local still do.
func TestPahoV5NoLocal(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	me, _ := p5Connect(t, b.Addr, p5Clean("me"))
	me.subscribe(paho.SubscribeOptions{Topic: "nl/quiet", QoS: 1, NoLocal: true},
		paho.SubscribeOptions{Topic: "nl/echo", QoS: 1})
	other, _ := p5Connect(t, b.Addr, p5Clean("other"))
	other.subscribe(paho.SubscribeOptions{Topic: "nl/+", QoS: 1, NoLocal: true})

	me.publish(&paho.Publish{Topic: "nl/quiet", QoS: 1, Payload: []byte("mine")})
	me.publish(&paho.Publish{Topic: "nl/echo", QoS: 1, Payload: []byte("echo")})
	me.expect("nl/echo", "echo", 1) // and not nl/quiet before it
	other.expect("nl/quiet", "mine", 1)
	other.expect("nl/echo", "echo", 1)

	other.publish(&paho.Publish{Topic: "nl/quiet", QoS: 1, Payload: []byte("yours")})
	me.expect("nl/quiet", "yours", 1)
}

// TestPahoV5RetainAsPublished: with Retain As Published a forwarded
// message keeps its RETAIN flag, without it the flag is cleared
// [MQTT-3.3.1-12] [MQTT-3.3.1-13]; retained messages sent because of a
// subscription always have it set [MQTT-3.3.1-9].
// Checks [MQTT-3.3.1-5] [MQTT-3.3.1-7].
func TestPahoV5RetainAsPublished(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	pub, _ := p5Connect(t, b.Addr, p5Clean("pub"))
	pub.publish(&paho.Publish{Topic: "rap/t", QoS: 1, Retain: true, Payload: []byte("old")})
	keep, _ := p5Connect(t, b.Addr, p5Clean("keep"))
	keep.subscribe(paho.SubscribeOptions{Topic: "rap/#", QoS: 1, RetainAsPublished: true})
	drop, _ := p5Connect(t, b.Addr, p5Clean("drop"))
	drop.subscribe(paho.SubscribeOptions{Topic: "rap/#", QoS: 1})

	pub.publish(&paho.Publish{Topic: "rap/t", QoS: 1, Retain: true, Payload: []byte("new")})
	pub.publish(&paho.Publish{Topic: "rap/u", QoS: 1, Payload: []byte("plain")})
	for _, tc := range []struct {
		c       *p5Client
		liveRet bool
	}{{keep, true}, {drop, false}} {
		if m := tc.c.expect("rap/t", "old", 1); !m.Retain {
			t.Fatal("retained message sent on subscribe without RETAIN")
		}
		if m := tc.c.expect("rap/t", "new", 1); m.Retain != tc.liveRet {
			t.Fatalf("live retained message: RETAIN %v, want %v", m.Retain, tc.liveRet)
		}
		if m := tc.c.expect("rap/u", "plain", 1); m.Retain {
			t.Fatal("non-retained message forwarded with RETAIN")
		}
	}
}

// TestPahoV5RetainHandling: 0 sends retained messages at every subscribe,
// 1 only when the subscription is new, 2 never [MQTT-3.3.1-9]
// [MQTT-3.3.1-10] [MQTT-3.3.1-11].
func TestPahoV5RetainHandling(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	pub, _ := p5Connect(t, b.Addr, p5Clean("pub"))
	pub.publish(&paho.Publish{Topic: "rh/kept", QoS: 1, Retain: true, Payload: []byte("kept")})
	cases := []struct {
		rh           byte
		first, again bool // retained message on the first and on a repeated subscribe
	}{{0, true, true}, {1, true, false}, {2, false, false}}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("retain handling %d", tc.rh), func(t *testing.T) {
			c, _ := p5Connect(t, b.Addr, p5Clean(fmt.Sprintf("rh%d", tc.rh)))
			for _, want := range []bool{tc.first, tc.again} {
				c.subscribe(paho.SubscribeOptions{Topic: "rh/#", QoS: 1, RetainHandling: tc.rh})
				if want {
					if m := c.expect("rh/kept", "kept", 1); !m.Retain {
						t.Fatal("retained message without RETAIN")
					}
				}
				c.sentinel("rh/sentinel")
			}
		})
	}
}

// TestPahoV5SubscriptionIdentifier: messages carry the identifier of the
// subscription they matched, live and retained; a repeated subscription
// replaces the identifier; a subscription without one adds none.
// Checks [MQTT-3.3.4-3] [MQTT-3.3.4-4].
func TestPahoV5SubscriptionIdentifier(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	pub, _ := p5Connect(t, b.Addr, p5Clean("pub"))
	pub.publish(&paho.Publish{Topic: "sid/kept", QoS: 1, Retain: true, Payload: []byte("kept")})

	c, _ := p5Connect(t, b.Addr, p5Clean("c"))
	subscribe := func(id int, s paho.SubscribeOptions) {
		t.Helper()
		sp := &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{s}}
		if id != 0 {
			sp.Properties = &paho.SubscribeProperties{SubscriptionIdentifier: &id}
		}
		c.subscribeWith(sp)
	}
	expectID := func(m *paho.Publish, want int) {
		t.Helper()
		got := m.Properties.SubscriptionIdentifier
		if want == 0 && got != nil || want != 0 && (got == nil || *got != want) {
			t.Fatalf("%s %q: subscription identifier %s, want %d", m.Topic, m.Payload, p5Val(got), want)
		}
	}
	const maxID = 268435455 // the largest, a four-byte variable byte integer
	subscribe(42, paho.SubscribeOptions{Topic: "sid/#", QoS: 1})
	expectID(c.expect("sid/kept", "kept", 1), 42) // retained
	subscribe(maxID, paho.SubscribeOptions{Topic: "big/+", QoS: 0})
	subscribe(0, paho.SubscribeOptions{Topic: "none", QoS: 2})

	pub.publish(&paho.Publish{Topic: "sid/live", QoS: 1, Payload: []byte("1")})
	pub.publish(&paho.Publish{Topic: "big/x", QoS: 0, Payload: []byte("2")})
	pub.publish(&paho.Publish{Topic: "none", QoS: 2, Payload: []byte("3")})
	expectID(c.expect("sid/live", "1", 1), 42)
	expectID(c.expect("big/x", "2", 0), maxID)
	expectID(c.expect("none", "3", 2), 0)

	// [MQTT-3.8.4-3] the repeated subscription replaces the old one, its
	// identifier included; retained again (Retain Handling 0) with the new one.
	subscribe(43, paho.SubscribeOptions{Topic: "sid/#", QoS: 1})
	expectID(c.expect("sid/kept", "kept", 1), 43)
	pub.publish(&paho.Publish{Topic: "sid/live", QoS: 1, Payload: []byte("4")})
	expectID(c.expect("sid/live", "4", 1), 43)
}

// TestPahoV5Unsubscribe: UNSUBACK says per filter whether a subscription
// existed, and nothing arrives through a removed one.
// Checks [MQTT-2.2.1-6] [MQTT-3.10.4-1] [MQTT-3.10.4-4] [MQTT-3.10.4-5] [MQTT-3.10.4-6] [MQTT-3.11.3-1].
func TestPahoV5Unsubscribe(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	c, _ := p5Connect(t, b.Addr, p5Clean("c"))
	c.subscribe(paho.SubscribeOptions{Topic: "un/a", QoS: 1}, paho.SubscribeOptions{Topic: "un/b", QoS: 1})
	ua, err := c.cl.Unsubscribe(t.Context(), &paho.Unsubscribe{Topics: []string{"un/a", "un/never"}})
	if err != nil || !bytes.Equal(ua.Reasons, []byte{0x00, 0x11}) {
		t.Fatalf("UNSUBACK %+v error %v, want reasons [0x00 0x11]", ua, err)
	}
	c.publish(&paho.Publish{Topic: "un/a", QoS: 1, Payload: []byte("gone")})
	c.sentinel("un/b")
}

// TestPahoV5SessionResume: with Clean Start 0 and a Session Expiry
// Interval, subscriptions outlive the connection and QoS 1/2 messages are
// queued while the client is away, then delivered in order.
// Checks [MQTT-3.1.2-5] [MQTT-3.1.2-23] [MQTT-4.4.0-1].
func TestPahoV5SessionResume(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	expiry := uint32(60)
	s, ca := p5Connect(t, b.Addr, p5Persistent("sess", &expiry))
	if ca.SessionPresent {
		t.Fatal("session present on the first connection")
	}
	s.subscribe(paho.SubscribeOptions{Topic: "sess/#", QoS: 2})
	s.disconnect(0)
	mt.Eventually(t, "subscriber offline", func() bool { return b.Stats().Connections == 0 })
	if n := b.Stats().Sessions; n != 1 {
		t.Fatalf("%d sessions while the client is away, want 1", n)
	}

	pub, _ := p5Connect(t, b.Addr, p5Clean("pub"))
	want := []struct {
		payload string
		qos     byte
	}{{"m0", 1}, {"m1", 2}, {"m2", 1}, {"m3", 2}, {"m4", 1}}
	for _, w := range want {
		pub.publish(&paho.Publish{Topic: "sess/t", QoS: w.qos, Payload: []byte(w.payload)})
	}

	back, ca := p5Connect(t, b.Addr, p5Persistent("sess", &expiry))
	if !ca.SessionPresent {
		t.Fatal("session not present on return [MQTT-3.2.2-3]")
	}
	for _, w := range want {
		back.expect("sess/t", w.payload, w.qos)
	}
	// The subscription is still there: no SUBSCRIBE after resuming.
	pub.publish(&paho.Publish{Topic: "sess/live", QoS: 1, Payload: []byte("live")})
	back.expect("sess/live", "live", 1)
}

// TestPahoV5SessionEnds: a session whose Session Expiry Interval is absent
// or 0 ends with its connection [MQTT-3.1.2-23], as does one whose
// DISCONNECT sets the interval to 0; one with an interval ends when the
// interval has passed; Clean Start discards a kept session.
// Checks [MQTT-3.1.2-8] [MQTT-3.1.2-10].
func TestPahoV5SessionEnds(t *testing.T) {
	zero, one, long := uint32(0), uint32(1), uint32(60)
	cases := []struct {
		name         string
		expiry       *uint32
		atDisconnect *uint32 // Session Expiry Interval in DISCONNECT
		clean        bool    // reconnect with Clean Start 1
	}{
		{"expiry absent", nil, nil, false},
		{"expiry 0", &zero, nil, false},
		{"expiry 1s passed", &one, nil, false},
		{"expiry set to 0 at disconnect", &long, &zero, false},
		{"clean start discards", &long, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			c, _ := p5Connect(t, b.Addr, p5Persistent("s", tc.expiry))
			c.subscribe(paho.SubscribeOptions{Topic: "se/t", QoS: 1})
			c.up = false
			if err := c.cl.Disconnect(&paho.Disconnect{Properties: &paho.DisconnectProperties{SessionExpiryInterval: tc.atDisconnect}}); err != nil {
				t.Fatalf("disconnect: %v", err)
			}
			if tc.clean {
				mt.Eventually(t, "client offline", func() bool { return b.Stats().Connections == 0 })
			} else {
				mt.Eventually(t, "session ended", func() bool { return b.Stats().Sessions == 0 })
			}
			pub, _ := p5Connect(t, b.Addr, p5Clean("pub"))
			r, err := pub.cl.Publish(t.Context(), &paho.Publish{Topic: "se/t", QoS: 1, Payload: []byte("lost")})
			if err != nil || (r.ReasonCode != 0x00 && r.ReasonCode != 0x10) { // 0x10: no matching subscribers
				t.Fatalf("publish: response %+v error %v, want success", r, err)
			}
			cp := p5Persistent("s", tc.expiry)
			cp.CleanStart = tc.clean
			back, ca := p5Connect(t, b.Addr, cp)
			if ca.SessionPresent {
				t.Fatal("session present after it ended")
			}
			// Neither the subscription nor the message survived.
			back.subscribe(paho.SubscribeOptions{Topic: "se/#", QoS: 1})
			back.sentinel("se/sentinel")
		})
	}
}

// TestPahoV5Will: the will message, with its properties, is published when
// the connection ends without DISCONNECT and after DISCONNECT with reason
// 0x04; a normal DISCONNECT discards it [MQTT-3.1.2-8] [MQTT-3.1.2-10].
//
// paho.golang v0.23.0 encodes only the User Properties of a will (its
// Properties.Pack(CONNECT) writes Content Type, Response Topic,
// Correlation Data, Payload Format and Message Expiry for PUBLISH only), so
// the other will properties are sent by a raw client and received by paho.
func TestPahoV5Will(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	// Each subtest has its own watcher: a client's helpers fail the test
	// that created it.
	watch := func(t *testing.T) *p5Client {
		w, _ := p5Connect(t, b.Addr, p5Clean("watcher-"+t.Name()))
		w.subscribe(paho.SubscribeOptions{Topic: "will/#", QoS: 2})
		return w
	}
	user := paho.UserProperties{{Key: "k", Value: "v1"}, {Key: "k", Value: "v2"}, {Key: "why", Value: "test"}}
	withWill := func(id string) *paho.Connect {
		cp := p5Clean(id)
		cp.WillMessage = &paho.WillMessage{Topic: "will/" + id, QoS: 1, Payload: []byte("gone " + id)}
		cp.WillProperties = &paho.WillProperties{User: user}
		return cp
	}
	expectWill := func(t *testing.T, w *p5Client, id string) {
		t.Helper()
		m := w.expect("will/"+id, "gone "+id, 1)
		if !slices.Equal(m.Properties.User, user) {
			t.Fatalf("will user properties %v, want %v in order", m.Properties.User, user)
		}
	}

	t.Run("abnormal close", func(t *testing.T) {
		w := watch(t)
		c, _ := p5Connect(t, b.Addr, withWill("crash"))
		c.conn.Close()
		expectWill(t, w, "crash")
	})
	t.Run("disconnect with will", func(t *testing.T) {
		w := watch(t)
		c, _ := p5Connect(t, b.Addr, withWill("asked"))
		c.disconnect(0x04)
		expectWill(t, w, "asked")
	})
	t.Run("normal disconnect", func(t *testing.T) {
		w := watch(t)
		c, _ := p5Connect(t, b.Addr, withWill("polite"))
		c.disconnect(0)
		// The broker publishes a will before it counts the connection
		// closed: once only the watcher is left, a will would be queued.
		mt.Eventually(t, "only the watcher connected", func() bool { return b.Stats().Connections == 1 })
		w.sentinel("will/sentinel")
	})
	t.Run("will properties", func(t *testing.T) {
		w := watch(t)
		raw := mt.Dial(t, b.Addr, packet.V5)
		props := packet.Properties{ContentType: "text/plain", ResponseTopic: "will/reply", CorrelationData: []byte{9, 0, 9},
			PayloadFormat: p5Ptr[byte](1), MessageExpiry: p5Ptr[uint32](300),
			User: []packet.UserProperty{{Key: "k", Value: "v1"}, {Key: "k", Value: "v2"}}}
		if ack := raw.ConnectWith(&packet.Connect{ClientID: "raw", CleanStart: true, KeepAlive: 30,
			Will: &packet.Will{Topic: "will/raw", QoS: 2, Payload: []byte("gone raw"), Properties: props}}); ack.ReasonCode != 0 {
			t.Fatalf("CONNACK %+v", ack)
		}
		raw.Conn.Close()
		m := w.expect("will/raw", "gone raw", 2)
		p := m.Properties
		if p.ContentType != "text/plain" || p.ResponseTopic != "will/reply" || !bytes.Equal(p.CorrelationData, []byte{9, 0, 9}) ||
			p.PayloadFormat == nil || *p.PayloadFormat != 1 || fmt.Sprint(p.User) != "[{k v1} {k v2}]" {
			t.Fatalf("will properties %+v, want those of the CONNECT", p)
		}
		if p.MessageExpiry == nil || *p.MessageExpiry == 0 || *p.MessageExpiry > 300 {
			t.Fatalf("will Message Expiry Interval %s, want 1..300", p5Val(p.MessageExpiry))
		}
	})
}

// TestPahoV5ReceiveMaximum: the broker never has more unacknowledged QoS 1
// messages in flight to a client than the client's Receive Maximum
// [MQTT-3.3.4-9], and sends the next as soon as one is acknowledged.
func TestPahoV5ReceiveMaximum(t *testing.T) {
	const window, total = 2, 6
	b := mt.StartBroker(t, broker.Options{})
	rm := uint16(window)
	cp := p5Clean("slow")
	cp.Properties = &paho.ConnectProperties{ReceiveMaximum: &rm}
	sub, _ := p5Connect(t, b.Addr, cp, func(c *paho.ClientConfig) {
		c.EnableManualAcknowledgment = true
		c.SendAcksInterval = 5 * time.Millisecond
	})
	sub.subscribe(paho.SubscribeOptions{Topic: "rm", QoS: 1})
	pub, _ := p5Connect(t, b.Addr, p5Clean("pub"))
	for i := range total {
		pub.publish(&paho.Publish{Topic: "rm", QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}

	// Message k can only have been sent once k-window acknowledgements
	// had arrived, so received-acked never exceeds the window when the
	// broker keeps to it. Each time the window is full, check for a while
	// that nothing more comes before acknowledging the oldest message.
	var held []*paho.Publish
	acked := 0
	for i := range total {
		m := sub.expect("rm", fmt.Sprint(i), 1)
		held = append(held, m)
		if n := i + 1 - acked; n > window {
			t.Fatalf("%d unacknowledged messages in flight, client's Receive Maximum is %d", n, window)
		}
		if len(held) < window && i < total-1 {
			continue
		}
		if i < total-1 {
			select {
			case m := <-sub.msgs:
				t.Fatalf("message %q sent with %d unacknowledged, client's Receive Maximum is %d", m.Payload, len(held), window)
			case <-time.After(100 * time.Millisecond):
			}
		}
		if err := sub.cl.Ack(held[0]); err != nil {
			t.Fatalf("ack: %v", err)
		}
		held = held[1:]
		acked++
	}
	for _, m := range held {
		if err := sub.cl.Ack(m); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}

// TestPahoV5MaximumPacketSize: the broker does not send a client a packet
// larger than the client's Maximum Packet Size [MQTT-3.1.2-24], and tells a
// client that sends one larger than its own with DISCONNECT 0x95.
func TestPahoV5MaximumPacketSize(t *testing.T) {
	t.Run("client limit", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{})
		limit := uint32(200)
		cp := p5Clean("small")
		cp.Properties = &paho.ConnectProperties{MaximumPacketSize: &limit}
		small, _ := p5Connect(t, b.Addr, cp)
		small.subscribe(paho.SubscribeOptions{Topic: "mps/#", QoS: 1})
		pub, _ := p5Connect(t, b.Addr, p5Clean("pub"))
		for _, qos := range []byte{0, 1} {
			pub.publish(&paho.Publish{Topic: "mps/big", QoS: qos, Payload: make([]byte, 300)})
		}
		pub.publish(&paho.Publish{Topic: "mps/fits", QoS: 1, Payload: []byte("fits")})
		small.expect("mps/fits", "fits", 1)
	})
	t.Run("server limit", func(t *testing.T) {
		// Small enough that the whole oversized packet is read with its
		// header: the broker closes a connection with nothing unread.
		b := mt.StartBroker(t, broker.Options{MaxPacketSize: 128})
		c, ca := p5Connect(t, b.Addr, p5Clean("big"))
		if p := ca.Properties.MaximumPacketSize; p == nil || *p != 128 {
			t.Fatalf("Maximum Packet Size %s, want 128", p5Val(p))
		}
		c.publish(&paho.Publish{Topic: "mps", QoS: 0, Payload: make([]byte, 200)})
		c.expectServerDisconnect(0x95)
	})
}

// TestPahoV5TopicAlias: a client may replace a topic by an alias it set up
// before; subscribers get the full topic.
// Checks [MQTT-3.3.2-11] [MQTT-3.3.2-12].
func TestPahoV5TopicAlias(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	sub, _ := p5Connect(t, b.Addr, p5Clean("sub"))
	sub.subscribe(paho.SubscribeOptions{Topic: "alias/#", QoS: 1})
	pub, ca := p5Connect(t, b.Addr, p5Clean("pub"))
	if p := ca.Properties.TopicAliasMaximum; p == nil || *p == 0 {
		t.Fatalf("Topic Alias Maximum %s, want some", p5Val(p))
	}
	alias := uint16(1)
	pub.publish(&paho.Publish{Topic: "alias/a/long/topic", QoS: 1, Payload: []byte("set"),
		Properties: &paho.PublishProperties{TopicAlias: &alias}})
	pub.publish(&paho.Publish{QoS: 1, Payload: []byte("use"), Properties: &paho.PublishProperties{TopicAlias: &alias}})
	pub.publish(&paho.Publish{Topic: "alias/other", QoS: 0, Payload: []byte("remap"),
		Properties: &paho.PublishProperties{TopicAlias: &alias}})
	pub.publish(&paho.Publish{QoS: 1, Payload: []byte("use again"), Properties: &paho.PublishProperties{TopicAlias: &alias}})
	sub.expect("alias/a/long/topic", "set", 1)
	sub.expect("alias/a/long/topic", "use", 1)
	sub.expect("alias/other", "remap", 0)
	sub.expect("alias/other", "use again", 1)
}

// TestPahoV5MixedVersions: messages cross between a paho.mqtt.golang 3.1.1
// client and a paho.golang 5.0 client in both directions, payload and QoS
// intact; 5.0-only properties are not sent to the 3.1.1 client, and none
// are invented for the 5.0 one.
// Checks [MQTT-3.1.4-3].
func TestPahoV5MixedVersions(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	v3msgs := make(chan mqtt.Message, 64)
	v3 := mqtt.NewClient(mqtt.NewClientOptions().
		AddBroker("tcp://" + b.Addr).
		SetClientID("three").
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(mt.Timeout).
		SetWriteTimeout(mt.Timeout).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { v3msgs <- m }))
	wait := func(tok mqtt.Token, what string) {
		t.Helper()
		if !tok.WaitTimeout(mt.Timeout) {
			t.Fatalf("3.1.1 %s: no answer within %s", what, mt.Timeout)
		}
		if err := tok.Error(); err != nil {
			t.Fatalf("3.1.1 %s: %v", what, err)
		}
	}
	wait(v3.Connect(), "connect")
	t.Cleanup(func() { v3.Disconnect(100) })
	v5, _ := p5Connect(t, b.Addr, p5Clean("five"))
	subID := 9
	v5.subscribeWith(&paho.Subscribe{Properties: &paho.SubscribeProperties{SubscriptionIdentifier: &subID},
		Subscriptions: []paho.SubscribeOptions{{Topic: "mix/to5", QoS: 2}}})
	wait(v3.Subscribe("mix/to3", 2, nil), "subscribe")

	payload := func(qos byte) []byte { return append([]byte{0, byte(qos), 0xff}, fmt.Sprintf("qos %d", qos)...) }
	{ // 3.1.1 to 5.0
		for _, qos := range []byte{0, 1, 2} {
			wait(v3.Publish("mix/to5", qos, false, payload(qos)), "publish")
		}
		for _, qos := range []byte{0, 1, 2} {
			m := v5.next()
			p := m.Properties
			if m.Topic != "mix/to5" || m.QoS != qos || !bytes.Equal(m.Payload, payload(qos)) {
				t.Fatalf("got %s qos %d %q, want mix/to5 qos %d %q", m.Topic, m.QoS, m.Payload, qos, payload(qos))
			}
			if p.SubscriptionIdentifier == nil || *p.SubscriptionIdentifier != subID {
				t.Fatalf("subscription identifier %s, want %d", p5Val(p.SubscriptionIdentifier), subID)
			}
			if p.ContentType != "" || p.ResponseTopic != "" || p.CorrelationData != nil || p.PayloadFormat != nil ||
				p.MessageExpiry != nil || len(p.User) != 0 {
				t.Fatalf("properties %+v on a message from a 3.1.1 client", p)
			}
		}
	}
	{ // 5.0 to 3.1.1
		expiry, utf8 := uint32(60), byte(0)
		props := &paho.PublishProperties{ContentType: "text/plain", ResponseTopic: "mix/reply", CorrelationData: []byte("id"),
			PayloadFormat: &utf8, MessageExpiry: &expiry, User: paho.UserProperties{{Key: "k", Value: "v"}}}
		for _, qos := range []byte{0, 1, 2} {
			v5.publish(&paho.Publish{Topic: "mix/to3", QoS: qos, Payload: payload(qos), Properties: props})
		}
		v5.publish(&paho.Publish{Topic: "mix/kept", QoS: 1, Retain: true, Payload: []byte("kept"), Properties: props})
		wait(v3.Subscribe("mix/kept", 1, nil), "subscribe retained")
		next := func() mqtt.Message {
			t.Helper()
			select {
			case m := <-v3msgs:
				return m
			case <-time.After(mt.Timeout):
				t.Fatalf("3.1.1 client: no message within %s", mt.Timeout)
				return nil
			}
		}
		for _, qos := range []byte{0, 1, 2} {
			m := next()
			if m.Topic() != "mix/to3" || m.Qos() != qos || m.Retained() || !bytes.Equal(m.Payload(), payload(qos)) {
				t.Fatalf("got %s qos %d retained %v %q, want mix/to3 qos %d %q", m.Topic(), m.Qos(), m.Retained(), m.Payload(), qos, payload(qos))
			}
		}
		if m := next(); m.Topic() != "mix/kept" || string(m.Payload()) != "kept" || m.Qos() != 1 || !m.Retained() {
			t.Fatalf("got %s qos %d retained %v %q, want the retained mix/kept", m.Topic(), m.Qos(), m.Retained(), m.Payload())
		}
	}
}

// TestPahoV5ServerDisconnect: the broker tells a v5 client why it ends the
// connection: 0x8E when another connection takes the session over
// [MQTT-3.1.4-3], 0x8B when it shuts down.
// Checks [MQTT-3.14.4-1] [MQTT-3.14.4-2].
func TestPahoV5ServerDisconnect(t *testing.T) {
	t.Run("session taken over", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{})
		expiry := uint32(60)
		first, _ := p5Connect(t, b.Addr, p5Persistent("dup", &expiry))
		first.subscribe(paho.SubscribeOptions{Topic: "tk/#", QoS: 1})
		second, ca := p5Connect(t, b.Addr, p5Persistent("dup", &expiry))
		first.expectServerDisconnect(0x8E)
		if !ca.SessionPresent {
			t.Fatal("the new connection did not get the session")
		}
		// The session, subscription included, now belongs to the second
		// connection.
		second.sentinel("tk/x")
		if s := b.Stats(); s.Connections != 1 || s.Sessions != 1 {
			t.Fatalf("after take-over: %+v, want 1 connection and 1 session", s)
		}
	})
	t.Run("server shutting down", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{})
		c, _ := p5Connect(t, b.Addr, p5Clean("c"))
		if err := b.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		c.expectServerDisconnect(0x8B)
	})
}

// p5Scram is a paho.Auther running the client side of SCRAM-SHA-256: paho
// drives the AUTH exchange, this answers the server's challenge.
type p5Scram struct {
	mu sync.Mutex // paho calls Authenticate from its own goroutines
	sc *scram.Client
}

var _ paho.Auther = (*p5Scram)(nil)

// start begins a new exchange and returns the client-first-message.
func (a *p5Scram) start(user, password string) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sc = scram.NewClient(user, password)
	return a.sc.First()
}

func (a *p5Scram) Authenticate(challenge *paho.Auth) *paho.Auth {
	a.mu.Lock()
	defer a.mu.Unlock()
	// A failure sends no data; the server then refuses, which the test sees.
	final, _ := a.sc.Final(challenge.Properties.AuthData)
	return &paho.Auth{ReasonCode: 0x18, Properties: &paho.AuthProperties{AuthMethod: scram.Method, AuthData: final}}
}

func (a *p5Scram) Authenticated() {}

// verify checks the server-final-message: the server knew the password.
func (a *p5Scram) verify(serverFinal []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sc.Verify(serverFinal)
}

// TestPahoV5EnhancedAuth: paho.golang's AUTH exchange (spec 4.12) against
// the broker's SCRAM-SHA-256: CONNECT with an Authentication Method, AUTH
// 0x18 both ways, CONNACK with the server's final data; re-authentication
// with AUTH 0x19; refusals 0x86 (wrong password) and 0x8C (unknown method).
func TestPahoV5EnhancedAuth(t *testing.T) {
	creds, err := scram.NewCredentials("pencil", scram.MinIterations)
	if err != nil {
		t.Fatal(err)
	}
	srv := scram.NewServer(func(user string) (scram.Credentials, bool) { return creds, user == "user" })
	b := mt.StartBroker(t, broker.Options{Authenticator: auth.NewStatic(false, nil), EnhancedAuth: []auth.EnhancedAuthenticator{srv}})
	connect := func(t *testing.T, method, password string) (*p5Client, *p5Scram, *paho.Connack, error) {
		a := &p5Scram{}
		c := newP5Client(t, b.Addr, func(cfg *paho.ClientConfig) { cfg.AuthHandler = a })
		cp := p5Clean("scram")
		cp.Properties = &paho.ConnectProperties{AuthMethod: method, AuthData: a.start("user", password)}
		ca, err := c.connect(cp)
		return c, a, ca, err
	}

	t.Run("connect and re-authenticate", func(t *testing.T) {
		c, a, ca, err := connect(t, scram.Method, "pencil")
		if err != nil {
			t.Fatalf("connect: %v (CONNACK %v)", err, ca)
		}
		if ca.Properties.AuthMethod != scram.Method {
			t.Fatalf("CONNACK Authentication Method %q, want %q", ca.Properties.AuthMethod, scram.Method)
		}
		if err := a.verify(ca.Properties.AuthData); err != nil {
			t.Fatalf("server-final-message in CONNACK: %v", err)
		}
		c.subscribe(paho.SubscribeOptions{Topic: "scram", QoS: 1})
		c.sentinel("scram")

		// [MQTT-4.12.1-1] re-authentication with the same method.
		r, err := c.cl.Authenticate(t.Context(), &paho.Auth{ReasonCode: 0x19,
			Properties: &paho.AuthProperties{AuthMethod: scram.Method, AuthData: a.start("user", "pencil")}})
		if err != nil || !r.Success || r.ReasonCode != 0 {
			t.Fatalf("re-authentication: response %+v error %v, want AUTH 0x00", r, err)
		}
		c.sentinel("scram") // the connection carries on
	})
	t.Run("re-authentication fails", func(t *testing.T) {
		c, a, _, err := connect(t, scram.Method, "pencil")
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		r, err := c.cl.Authenticate(t.Context(), &paho.Auth{ReasonCode: 0x19,
			Properties: &paho.AuthProperties{AuthMethod: scram.Method, AuthData: a.start("user", "wrong")}})
		// [MQTT-4.12.1-2] DISCONNECT and close.
		if err != nil || r.Success || r.ReasonCode != 0x87 {
			t.Fatalf("re-authentication with a wrong password: response %+v error %v, want DISCONNECT 0x87", r, err)
		}
		c.expectServerDisconnect(0x87)
	})
	for _, tc := range []struct {
		name, method, password string
		code                   byte
	}{
		{"wrong password", scram.Method, "wrong", 0x86},
		{"unknown method", "SCRAM-SHA-0", "pencil", 0x8C}, // [MQTT-4.12.0-1]
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, ca, err := connect(t, tc.method, tc.password)
			if err == nil || ca == nil || ca.ReasonCode != tc.code {
				t.Fatalf("CONNACK %v error %v, want reason %#x", ca, err, tc.code)
			}
		})
	}
}

// TestPahoV5SharedSubscription: each message published to a shared
// subscription's filter goes to exactly one member of the group, while an
// ordinary subscription still gets every one; retained messages are not
// sent to shared subscriptions.
// Checks [MQTT-4.8.2-3].
func TestPahoV5SharedSubscription(t *testing.T) {
	const total = 10
	b := mt.StartBroker(t, broker.Options{})
	pub, _ := p5Connect(t, b.Addr, p5Clean("pub"))
	pub.publish(&paho.Publish{Topic: "sh/kept", QoS: 1, Retain: true, Payload: []byte("kept")})
	var members []*p5Client
	for i := range 2 {
		m, _ := p5Connect(t, b.Addr, p5Clean(fmt.Sprintf("member%d", i)))
		m.subscribe(paho.SubscribeOptions{Topic: "$share/g/sh/#", QoS: 1},
			paho.SubscribeOptions{Topic: fmt.Sprintf("sentinel/%d", i), QoS: 1})
		m.sentinel(fmt.Sprintf("sentinel/%d", i)) // no retained message first
		members = append(members, m)
	}
	all, _ := p5Connect(t, b.Addr, p5Clean("all"))
	all.subscribe(paho.SubscribeOptions{Topic: "sh/#", RetainHandling: 2, QoS: 1})

	for i := range total {
		pub.publish(&paho.Publish{Topic: "sh/t", QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	for i := range total {
		all.expect("sh/t", fmt.Sprint(i), 1)
	}
	seen := map[string]int{} // payload -> times the group got it
	got := make([]int, len(members))
	for range total {
		select {
		case m := <-members[0].msgs:
			seen[string(m.Payload)]++
			got[0]++
		case m := <-members[1].msgs:
			seen[string(m.Payload)]++
			got[1]++
		case <-time.After(mt.Timeout):
			t.Fatalf("group got %d of %d messages within %s", got[0]+got[1], total, mt.Timeout)
		}
	}
	for i := range total {
		if n := seen[fmt.Sprint(i)]; n != 1 {
			t.Fatalf("message %d reached the group %d times, want once: %v", i, n, seen)
		}
	}
	if got[0] == 0 || got[1] == 0 {
		t.Fatalf("members got %v: the default strategy takes turns", got)
	}
}
