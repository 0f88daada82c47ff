package broker_test

// Interoperability with a client we did not write: Eclipse Paho for Go
// (github.com/eclipse/paho.mqtt.golang, MQTT 3.1.1 and 3.1). Every test
// speaks over real sockets on loopback; every wait is bounded by
// mt.Timeout.

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// pahoVersions are the protocol versions paho.mqtt.golang speaks, as its
// SetProtocolVersion takes them.
var pahoVersions = []struct {
	name string
	pv   uint
}{
	{"3.1.1", 4},
	{"3.1", 3},
}

// pahoOpts returns options for a paho client of protocol version pv with
// client id: no automatic reconnection or retry (a lost connection must
// show), bounded timeouts, in-order delivery to handlers.
func pahoOpts(addr, id string, pv uint) *paho.ClientOptions {
	return paho.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(id).
		SetProtocolVersion(pv).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(mt.Timeout).
		SetWriteTimeout(mt.Timeout).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(true)
}

// pahoWait waits for tok, failing the test if it does not complete within
// mt.Timeout or completes with an error.
func pahoWait(t testing.TB, tok paho.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(mt.Timeout) {
		t.Fatalf("%s: no answer within %s", what, mt.Timeout)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// pahoConnect connects a client with opts; it is disconnected when the test
// ends.
func pahoConnect(t testing.TB, opts *paho.ClientOptions) (paho.Client, *paho.ConnectToken) {
	t.Helper()
	c := paho.NewClient(opts)
	tok := c.Connect().(*paho.ConnectToken)
	pahoWait(t, tok, "connect "+opts.ClientID)
	t.Cleanup(func() {
		if c.IsConnectionOpen() {
			c.Disconnect(100)
		}
	})
	return c, tok
}

// pahoSubscribe subscribes c to filters (filter -> requested QoS) without a
// per-filter callback, so that every message reaches the default publish
// handler exactly once however many filters match it, and checks the
// granted QoS.
func pahoSubscribe(t testing.TB, c paho.Client, filters map[string]byte) {
	t.Helper()
	tok := c.SubscribeMultiple(filters, nil).(*paho.SubscribeToken)
	pahoWait(t, tok, fmt.Sprintf("subscribe %v", filters))
	for f, granted := range tok.Result() {
		if granted != filters[f] {
			t.Fatalf("subscribe %q: granted %#x, want %d", f, granted, filters[f])
		}
	}
}

// pahoPublish publishes and waits for the flow to complete.
func pahoPublish(t testing.TB, c paho.Client, topic string, qos byte, retain bool, payload []byte) {
	t.Helper()
	pahoWait(t, c.Publish(topic, qos, retain, payload), "publish "+topic)
}

// pahoInbox collects what a paho client's default publish handler receives.
type pahoInbox struct {
	ch chan paho.Message
}

func newPahoInbox(size int) *pahoInbox { return &pahoInbox{ch: make(chan paho.Message, size)} }

// handler is a paho.MessageHandler. The channel is sized for the test, so
// a full channel is a test bug; it blocks rather than dropping a message.
func (in *pahoInbox) handler(_ paho.Client, m paho.Message) { in.ch <- m }

// next returns the next message, failing the test after mt.Timeout.
func (in *pahoInbox) next(t testing.TB) paho.Message {
	t.Helper()
	select {
	case m := <-in.ch:
		return m
	case <-time.After(mt.Timeout):
		t.Fatalf("no message within %s", mt.Timeout)
		return nil
	}
}

// expect reads the next message and checks it.
func (in *pahoInbox) expect(t testing.TB, topic, payload string, qos byte, retained bool) paho.Message {
	t.Helper()
	m := in.next(t)
	if m.Topic() != topic || string(m.Payload()) != payload || m.Qos() != qos || m.Retained() != retained {
		t.Fatalf("got %s %q qos %d retained %v, want %s %q qos %d retained %v",
			m.Topic(), m.Payload(), m.Qos(), m.Retained(), topic, payload, qos, retained)
	}
	return m
}

// until collects messages up to and including one on topic end.
func (in *pahoInbox) until(t testing.TB, end string) []string {
	t.Helper()
	var got []string
	for {
		m := in.next(t)
		if m.Topic() == end {
			return got
		}
		got = append(got, m.Topic())
	}
}

func TestPahoConnectRefused(t *testing.T) {
	users := broker.Options{Authenticator: auth.NewStatic(false, map[string]string{"u": "p"})}
	cases := []struct {
		name       string
		pv         uint
		opts       broker.Options
		id         string
		clean      bool
		user, pass string // user "" sends no username
		code       byte
	}{
		{"bad password", 4, users, "c1", true, "u", "wrong", packets.ErrRefusedBadUsernameOrPassword},
		{"unknown user", 4, users, "c1", true, "x", "p", packets.ErrRefusedBadUsernameOrPassword},
		{"anonymous", 4, users, "c1", true, "", "", packets.ErrRefusedNotAuthorised},
		{"empty id persistent", 4, broker.Options{}, "", false, "", "", packets.ErrRefusedIDRejected},
		{"good credentials", 4, users, "c1", true, "u", "p", packets.Accepted},
		{"empty id clean", 4, broker.Options{}, "", true, "", "", packets.Accepted},
		{"bad password 3.1", 3, users, "c1", true, "u", "wrong", packets.ErrRefusedBadUsernameOrPassword},
		{"anonymous 3.1", 3, users, "c1", true, "", "", packets.ErrRefusedNotAuthorised},
		{"empty id 3.1", 3, broker.Options{}, "", true, "", "", packets.ErrRefusedIDRejected},
		{"good credentials 3.1", 3, users, "c1", true, "u", "p", packets.Accepted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mt.StartBroker(t, tc.opts)
			opts := pahoOpts(b.Addr, tc.id, tc.pv).SetCleanSession(tc.clean)
			if tc.user != "" {
				opts.SetUsername(tc.user).SetPassword(tc.pass)
			}
			c := paho.NewClient(opts)
			tok := c.Connect().(*paho.ConnectToken)
			if !tok.WaitTimeout(mt.Timeout) {
				t.Fatalf("connect: no answer within %s", mt.Timeout)
			}
			if tc.code == packets.Accepted {
				if err := tok.Error(); err != nil {
					t.Fatalf("connect: %v, want accepted", err)
				}
				c.Disconnect(100)
				return
			}
			if rc := tok.ReturnCode(); rc != tc.code {
				t.Fatalf("CONNACK return code %d (%s), want %d (%s)", rc,
					packets.ConnackReturnCodes[rc], tc.code, packets.ConnackReturnCodes[tc.code])
			}
			if err, want := tok.Error(), packets.ConnErrors[tc.code]; !errors.Is(err, want) {
				t.Fatalf("connect error %v, want %v", err, want)
			}
			if c.IsConnected() {
				t.Fatal("paho reports connected after a refusal")
			}
			if s := b.Stats(); s.ConnectionsTotal != 0 || s.Sessions != 0 {
				t.Fatalf("refused client counted: %+v", s)
			}
		})
	}
}

func TestPahoSessionTakeover(t *testing.T) {
	for _, v := range pahoVersions {
		t.Run(v.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			watch := newPahoInbox(10)
			watcher, _ := pahoConnect(t, pahoOpts(b.Addr, "watcher", v.pv).SetDefaultPublishHandler(watch.handler))
			pahoSubscribe(t, watcher, map[string]byte{"will/#": 1})

			lost := make(chan error, 1)
			first, _ := pahoConnect(t, pahoOpts(b.Addr, "same", v.pv).
				SetWill("will/same", "first gone", 1, false).
				SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err }))

			second, tok := pahoConnect(t, pahoOpts(b.Addr, "same", v.pv))
			if tok.SessionPresent() {
				t.Fatal("session present after a clean-session take-over")
			}
			select {
			case err := <-lost:
				t.Logf("first client lost its connection: %v", err)
			case <-time.After(mt.Timeout):
				t.Fatalf("first client still connected %s after the take-over", mt.Timeout)
			}
			if first.IsConnected() {
				t.Fatal("first client reports connected")
			}
			// [MQTT-3.1.4-2] the old connection is closed without DISCONNECT,
			// so its will is published.
			watch.expect(t, "will/same", "first gone", 1, false)

			// The new connection owns the session and works.
			mine := newPahoInbox(1)
			pahoWait(t, second.Subscribe("mine", 1, mine.handler), "subscribe")
			pahoPublish(t, watcher, "mine", 1, false, []byte("hello"))
			mine.expect(t, "mine", "hello", 1, false)
			mt.Eventually(t, "2 connections", func() bool { return b.Stats().Connections == 2 })
		})
	}
}

// Checks [MQTT-3.12.4-1].
func TestPahoKeepAliveWill(t *testing.T) {
	for _, v := range []byte{packet.V311, packet.V31} {
		t.Run(mt.VersionName(v), func(t *testing.T) {
			t.Parallel() // each waits out a keep-alive period
			b := mt.StartBroker(t, broker.Options{})
			watch := newPahoInbox(10)
			watcher, _ := pahoConnect(t, pahoOpts(b.Addr, "watcher", 4).SetDefaultPublishHandler(watch.handler))
			pahoSubscribe(t, watcher, map[string]byte{"will/+": 1})

			raw := mt.Dial(t, b.Addr, v)
			ack := raw.ConnectWith(&packet.Connect{
				ClientID: "silent", CleanStart: true, KeepAlive: 1,
				Will: &packet.Will{Topic: "will/silent", Payload: []byte("timed out"), QoS: 1},
			})
			if ack.ReasonCode != packet.Accepted {
				t.Fatalf("CONNACK %#x", ack.ReasonCode)
			}
			start := time.Now()
			// Silence: [MQTT-3.1.2-24] the server closes after 1.5 x keep alive
			// and publishes the will.
			m := watch.expect(t, "will/silent", "timed out", 1, false)
			if d := time.Since(start); d < time.Second {
				t.Fatalf("will after %s, before the keep-alive period ended", d)
			}
			if m.Duplicate() {
				t.Fatal("will delivered with DUP")
			}
			raw.ExpectClosed(mt.Timeout)
		})
	}
}

// pahoPayloads are bodies that must arrive byte for byte.
func pahoPayloads() map[string][]byte {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := bytes.Repeat([]byte("0123456789abcdef\x00\xff"), 200<<10/18) // ~200 KB, multi-byte length
	return map[string][]byte{
		"empty": {},
		"text":  []byte("hello, wörld"),
		"bytes": all,
		"big":   big,
	}
}

// Checks [MQTT-2.3.1-7] [MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-7.0.0-2].
func TestPahoQoSDelivery(t *testing.T) {
	for _, v := range pahoVersions {
		t.Run(v.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			in := newPahoInbox(100)
			sub, _ := pahoConnect(t, pahoOpts(b.Addr, "sub", v.pv).SetDefaultPublishHandler(in.handler))
			pahoSubscribe(t, sub, map[string]byte{"q/#": 2})
			pub, _ := pahoConnect(t, pahoOpts(b.Addr, "pub", v.pv))

			for qos := byte(0); qos <= 2; qos++ {
				for name, payload := range pahoPayloads() {
					topic := fmt.Sprintf("q/%d/%s", qos, name)
					pahoPublish(t, pub, topic, qos, false, payload)
					m := in.next(t)
					if m.Topic() != topic || m.Qos() != qos || m.Retained() || m.Duplicate() {
						t.Fatalf("got %s qos %d retained %v dup %v, want %s qos %d",
							m.Topic(), m.Qos(), m.Retained(), m.Duplicate(), topic, qos)
					}
					if !bytes.Equal(m.Payload(), payload) {
						t.Fatalf("%s: payload of %d bytes differs from the %d bytes sent", topic, len(m.Payload()), len(payload))
					}
				}
			}
		})
	}
}

// Checks [MQTT-3.3.1-3] [MQTT-4.3.3-10].
func TestPahoQoS2ExactlyOnceWithDup(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	in := newPahoInbox(10)
	sub, _ := pahoConnect(t, pahoOpts(b.Addr, "sub", 4).SetDefaultPublishHandler(in.handler))
	pahoSubscribe(t, sub, map[string]byte{"x2": 2})

	pub := mt.Dial(t, b.Addr, packet.V311)
	pub.Connect("rawpub", true)
	pub.Send(&packet.Publish{Topic: "x2", QoS: 2, PacketID: 9, Payload: []byte("once")})
	mt.Expect[*packet.Pubrec](pub)
	// The PUBREC was "lost": the publisher retransmits with DUP before
	// PUBREL, twice.
	for range 2 {
		pub.Send(&packet.Publish{Topic: "x2", QoS: 2, PacketID: 9, Dup: true, Payload: []byte("once")})
		if r := mt.Expect[*packet.Pubrec](pub); r.PacketID != 9 {
			t.Fatalf("PUBREC for %d, want 9", r.PacketID)
		}
	}
	pub.Send(&packet.Pubrel{PacketID: 9})
	mt.Expect[*packet.Pubcomp](pub)
	// A marker behind it on the same topic: a second copy would arrive
	// before it.
	pub.Send(&packet.Publish{Topic: "x2", Payload: []byte("end")})

	m := in.expect(t, "x2", "once", 2, false)
	if m.Duplicate() {
		t.Fatal("first delivery carries DUP")
	}
	in.expect(t, "x2", "end", 0, false) // [MQTT-4.3.3-2] exactly once
}

// Checks [MQTT-3.1.2-5].
func TestPahoOfflineQueueResume(t *testing.T) {
	const n = 50
	for _, v := range pahoVersions {
		t.Run(v.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			opts := func(in *pahoInbox) *paho.ClientOptions {
				return pahoOpts(b.Addr, "offline", v.pv).
					SetCleanSession(false).
					SetResumeSubs(true).
					SetDefaultPublishHandler(in.handler)
			}
			first := newPahoInbox(n)
			sub, tok := pahoConnect(t, opts(first))
			if tok.SessionPresent() {
				t.Fatal("session present on first connect")
			}
			pahoSubscribe(t, sub, map[string]byte{"oq/#": 1})
			sub.Disconnect(250)
			mt.Eventually(t, "subscriber offline", func() bool { return b.Stats().Connections == 0 })

			pub, _ := pahoConnect(t, pahoOpts(b.Addr, "pub", v.pv))
			for i := range n {
				pahoPublish(t, pub, "oq/m", 1, false, fmt.Appendf(nil, "m%02d", i))
			}

			// Messages arrive right after CONNACK, before any Subscribe call:
			// the default handler catches them.
			again := newPahoInbox(n + 1)
			_, tok = pahoConnect(t, opts(again))
			// 3.1 has no session present flag: its CONNACK byte is reserved.
			if v.pv == 4 && !tok.SessionPresent() {
				t.Fatal("session not present on reconnect")
			}
			for i := range n {
				again.expect(t, "oq/m", fmt.Sprintf("m%02d", i), 1, false)
			}
			// The subscription survived too: live messages still arrive, and
			// nothing else was queued before them.
			pahoPublish(t, pub, "oq/live", 1, false, []byte("live"))
			again.expect(t, "oq/live", "live", 1, false)
			if len(first.ch) != 0 {
				t.Fatalf("first connection received %d messages", len(first.ch))
			}
		})
	}
}

// Checks [MQTT-2.3.1-4] [MQTT-3.3.1-1] [MQTT-4.3.3-6].
func TestPahoResumeWithDup(t *testing.T) {
	const n = 5
	b := mt.StartBroker(t, broker.Options{})
	raw := mt.Dial(t, b.Addr, packet.V311)
	if ack := raw.Connect("resume", false); ack.SessionPresent {
		t.Fatal("session present on first connect")
	}
	raw.Subscribe(1, 1, "dr/#")
	pub, _ := pahoConnect(t, pahoOpts(b.Addr, "pub", 4))
	for i := range n {
		pahoPublish(t, pub, "dr/m", 1, false, fmt.Appendf(nil, "m%d", i))
	}
	// The raw subscriber receives them but never acknowledges.
	for i := range n {
		p := mt.Expect[*packet.Publish](raw)
		if p.Dup || p.QoS != 1 || string(p.Payload) != fmt.Sprintf("m%d", i) {
			t.Fatalf("raw got %+v, want m%d QoS 1 without DUP", p, i)
		}
	}

	// Paho takes the session over while the raw connection is still open.
	// It acknowledges on the test's word, so that the test knows when the
	// acknowledgements are on their way.
	in := newPahoInbox(n + 1)
	opts := pahoOpts(b.Addr, "resume", 4).SetCleanSession(false).SetAutoAckDisabled(true).SetDefaultPublishHandler(in.handler)
	second, tok := pahoConnect(t, opts)
	if !tok.SessionPresent() {
		t.Fatal("session not present on take-over")
	}
	raw.ExpectClosed(mt.Timeout)
	// [MQTT-4.4.0-1] unacknowledged PUBLISH packets are resent, in order,
	// with DUP set.
	for i := range n {
		m := in.expect(t, "dr/m", fmt.Sprintf("m%d", i), 1, false)
		if !m.Duplicate() {
			t.Fatalf("redelivery of m%d without DUP", i)
		}
		m.Ack()
	}
	pahoPublish(t, pub, "dr/live", 1, false, []byte("live"))
	m := in.expect(t, "dr/live", "live", 1, false)
	if m.Duplicate() {
		t.Fatal("new message carries DUP")
	}
	m.Ack()
	// Ack hands the PUBACK to paho's writer, which sends packets in order:
	// once this SUBACK is back, the broker has read every PUBACK.
	pahoSubscribe(t, second, map[string]byte{"dr/sync": 0})

	// Everything was acknowledged: a third connection is owed nothing.
	in3 := newPahoInbox(n + 1)
	_, tok = pahoConnect(t, pahoOpts(b.Addr, "resume", 4).SetCleanSession(false).SetDefaultPublishHandler(in3.handler))
	if !tok.SessionPresent() {
		t.Fatal("session not present on the third connection")
	}
	pahoPublish(t, pub, "dr/end", 1, false, []byte("end"))
	in3.expect(t, "dr/end", "end", 1, false)
}

// Checks [MQTT-3.3.1-5].
func TestPahoRetained(t *testing.T) {
	for _, v := range pahoVersions {
		t.Run(v.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			pub, _ := pahoConnect(t, pahoOpts(b.Addr, "pub", v.pv))

			// Set: a later subscriber gets it with the retained flag.
			pahoPublish(t, pub, "r/a", 1, true, []byte("v1"))
			in1 := newPahoInbox(10)
			sub1, _ := pahoConnect(t, pahoOpts(b.Addr, "sub1", v.pv).SetDefaultPublishHandler(in1.handler))
			pahoSubscribe(t, sub1, map[string]byte{"r/#": 1})
			in1.expect(t, "r/a", "v1", 1, true) // [MQTT-3.3.1-8]

			// Replace: forwarded live to the existing subscriber without the
			// retained flag [MQTT-3.3.1-9]; a new subscriber sees only v2, at
			// the QoS it was granted.
			pahoPublish(t, pub, "r/a", 1, true, []byte("v2"))
			in1.expect(t, "r/a", "v2", 1, false)
			in2 := newPahoInbox(10)
			sub2, _ := pahoConnect(t, pahoOpts(b.Addr, "sub2", v.pv).SetDefaultPublishHandler(in2.handler))
			pahoSubscribe(t, sub2, map[string]byte{"r/+": 0})
			in2.expect(t, "r/a", "v2", 0, true)
			if n := b.Stats().Retained; n != 1 {
				t.Fatalf("%d retained messages, want 1", n)
			}

			// Clear with an empty payload: forwarded as a normal message
			// [MQTT-3.3.1-10], and no longer retained [MQTT-3.3.1-11].
			pahoPublish(t, pub, "r/a", 1, true, nil)
			in1.expect(t, "r/a", "", 1, false)
			in2.expect(t, "r/a", "", 0, false)
			mt.Eventually(t, "retained cleared", func() bool { return b.Stats().Retained == 0 })
			in3 := newPahoInbox(10)
			sub3, _ := pahoConnect(t, pahoOpts(b.Addr, "sub3", v.pv).SetDefaultPublishHandler(in3.handler))
			pahoSubscribe(t, sub3, map[string]byte{"r/a": 1})
			// Retained messages are sent right after SUBACK, so a live
			// message published now arrives behind any of them.
			pahoPublish(t, pub, "r/a", 1, false, []byte("live"))
			in3.expect(t, "r/a", "live", 1, false)
		})
	}
}

func TestPahoWildcards(t *testing.T) {
	topics := []string{"w", "w/b/c", "w/b/d", "w/b/c/d", "w/c", "x/b/c", "/w", "$SYS/x", "$SYS/b/c", "$SYS/w/b/c"}
	cases := []struct {
		filter string
		want   []string // in publish order
	}{
		{"w/+/c", []string{"w/b/c"}},
		{"w/#", []string{"w", "w/b/c", "w/b/d", "w/b/c/d", "w/c"}},
		{"+/b/c", []string{"w/b/c", "x/b/c"}}, // [MQTT-4.7.2-1] not $SYS/b/c
		{"+/+", []string{"w/c", "/w"}},        // "/w" has an empty first level
		{"+/w", []string{"/w"}},
		{"#", []string{"w", "w/b/c", "w/b/d", "w/b/c/d", "w/c", "x/b/c", "/w"}}, // [MQTT-4.7.2-1] no $ topics
		{"$SYS/#", []string{"$SYS/x", "$SYS/b/c", "$SYS/w/b/c"}},
		{"$SYS/+/c", []string{"$SYS/b/c"}},
	}
	for _, v := range pahoVersions {
		t.Run(v.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			inboxes := make([]*pahoInbox, len(cases))
			for i, tc := range cases {
				inboxes[i] = newPahoInbox(len(topics) + 1)
				c, _ := pahoConnect(t, pahoOpts(b.Addr, fmt.Sprintf("sub%d", i), v.pv).SetDefaultPublishHandler(inboxes[i].handler))
				// "end" marks the end of the run for every subscriber.
				pahoSubscribe(t, c, map[string]byte{tc.filter: 1, "end": 1})
			}
			pub, _ := pahoConnect(t, pahoOpts(b.Addr, "pub", v.pv))
			for _, tp := range topics {
				pahoPublish(t, pub, tp, 1, false, []byte(tp))
			}
			pahoPublish(t, pub, "end", 1, false, nil)
			for i, tc := range cases {
				got := inboxes[i].until(t, "end")
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("%q received %q, want %q", tc.filter, got, tc.want)
				}
			}
		})
	}
}

func TestPahoOverlappingSubscriptions(t *testing.T) {
	cases := []struct {
		name    string
		filters map[string]byte
		pubQoS  byte
		want    byte
	}{
		{"max 1 caps 2", map[string]byte{"o/#": 1, "o/+": 0, "o/x": 0}, 2, 1},
		{"max 2", map[string]byte{"o/#": 0, "o/+": 2, "o/x": 1}, 2, 2},
		{"publish qos caps", map[string]byte{"o/#": 2, "o/x": 1}, 0, 0},
		{"max 1 from qos 1", map[string]byte{"#": 0, "o/x": 1, "+/x": 0}, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			in := newPahoInbox(10)
			sub, _ := pahoConnect(t, pahoOpts(b.Addr, "sub", 4).SetDefaultPublishHandler(in.handler))
			pahoSubscribe(t, sub, tc.filters)
			pub, _ := pahoConnect(t, pahoOpts(b.Addr, "pub", 4))
			pahoPublish(t, pub, "o/x", tc.pubQoS, false, []byte("m"))
			pahoPublish(t, pub, "o/x", 0, false, []byte("end"))
			// [MQTT-3.3.5-1] one copy, at the highest granted QoS, capped
			// by the QoS it was published with.
			in.expect(t, "o/x", "m", tc.want, false)
			in.expect(t, "o/x", "end", 0, false)
		})
	}
}

func TestPahoManyClients(t *testing.T) {
	const pubs, each = 50, 20
	b := mt.StartBroker(t, broker.Options{})
	in := newPahoInbox(pubs*each + 1)
	sub, _ := pahoConnect(t, pahoOpts(b.Addr, "sub", 4).SetDefaultPublishHandler(in.handler))
	pahoSubscribe(t, sub, map[string]byte{"#": 1})

	var wg sync.WaitGroup
	errs := make(chan error, pubs)
	for i := range pubs {
		c := paho.NewClient(pahoOpts(b.Addr, fmt.Sprintf("p%02d", i), 4))
		t.Cleanup(func() {
			if c.IsConnectionOpen() {
				c.Disconnect(100)
			}
		})
		wg.Go(func() {
			if tok := c.Connect(); !tok.WaitTimeout(mt.Timeout) || tok.Error() != nil {
				errs <- fmt.Errorf("p%02d connect: %v", i, tok.Error())
				return
			}
			// Pipelined: all 20 are sent before waiting for any PUBACK.
			toks := make([]paho.Token, each)
			for j := range each {
				toks[j] = c.Publish(fmt.Sprintf("many/p%02d", i), 1, false, fmt.Appendf(nil, "%d", j))
			}
			for j, tok := range toks {
				if !tok.WaitTimeout(mt.Timeout) || tok.Error() != nil {
					errs <- fmt.Errorf("p%02d publish %d: %v", i, j, tok.Error())
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	next := make(map[string]int, pubs)
	for range pubs * each {
		m := in.next(t)
		if m.Qos() != 1 {
			t.Fatalf("%s: QoS %d, want 1", m.Topic(), m.Qos())
		}
		// [MQTT-4.6.0-6] per publisher, in the order sent.
		if want := fmt.Sprint(next[m.Topic()]); string(m.Payload()) != want {
			t.Fatalf("%s: got %q, want %q", m.Topic(), m.Payload(), want)
		}
		next[m.Topic()]++
	}
	if len(next) != pubs {
		t.Fatalf("messages from %d publishers, want %d", len(next), pubs)
	}
	select {
	case m := <-in.ch:
		t.Fatalf("extra message %s %q", m.Topic(), m.Payload())
	default:
	}
	if s := b.Stats(); s.MessagesIn != pubs*each {
		t.Fatalf("broker counted %d messages in, want %d", s.MessagesIn, pubs*each)
	}
}
