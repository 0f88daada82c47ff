package broker_test

import (
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// Checks [MQTT-3.1.4-4] [MQTT-3.1.4-5] [MQTT-3.2.0-1].
func TestConnectAccepted(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{})
		c := mt.Dial(t, b.Addr, v)
		ack := c.Connect("c1", true)
		if ack.ReasonCode != packet.Accepted || ack.SessionPresent {
			t.Fatalf("CONNACK %+v, want accepted without session", ack)
		}
		c.Send(&packet.Pingreq{})
		mt.Expect[*packet.Pingresp](c)
	})
}

func TestFirstPacketMustBeConnect(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{})
		c := mt.Dial(t, b.Addr, v)
		c.Send(&packet.Pingreq{}) // [MQTT-3.1.0-1]
		if got := c.ExpectClosed(mt.Timeout); len(got) != 0 {
			t.Fatalf("got %v before close, want nothing", got)
		}
	})
}

// Checks [MQTT-4.8.0-1] [MQTT-4.13.1-1].
func TestSecondConnectCloses(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{})
		c := mt.Dial(t, b.Addr, v)
		c.Connect("c1", true)
		c.Send(&packet.Connect{ProtocolLevel: v, ClientID: "c1", CleanStart: true}) // [MQTT-3.1.0-2]
		c.ExpectClosed(mt.Timeout)
	})
}

func TestConnectTimeout(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{ConnectTimeout: 200 * time.Millisecond})
	c := mt.Dial(t, b.Addr, packet.V311)
	start := time.Now()
	c.ExpectClosed(mt.Timeout)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("closed after %s, before the connect timeout", d)
	}
}

func TestUnsupportedProtocolLevel(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	c := mt.Dial(t, b.Addr, packet.V311)
	// CONNECT "MQTT" level 6: [MQTT-3.1.2-2] CONNACK 0x01 then close.
	c.SendBytes([]byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 6, 0x02, 0, 30, 0, 0})
	got := c.ExpectClosed(mt.Timeout)
	if len(got) != 1 || got[0].(*packet.Connack).ReasonCode != packet.RefusedProtocolVersion {
		t.Fatalf("got %+v, want CONNACK 1", got)
	}
}

// Checks [MQTT-3.1.4-1] [MQTT-3.2.2-6].
func TestMalformedConnectCloses(t *testing.T) {
	cases := map[string][]byte{
		// [MQTT-3.1.2-3] reserved flag bit set.
		"reserved flag": {0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x03, 0, 30, 0, 0},
		// [MQTT-3.1.2-14] will QoS 3.
		"will qos 3": {0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x1E, 0, 30, 0, 0},
		// [MQTT-3.1.2-22] password without username (3.1.1).
		"password without username": {0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x42, 0, 30, 0, 0, 0, 0},
		// [MQTT-3.1.2-1] unknown protocol name: close without CONNACK.
		"protocol name": {0x10, 12, 0, 4, 'M', 'Q', 'T', 'X', 4, 0x02, 0, 30, 0, 0},
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{})
			c := mt.Dial(t, b.Addr, packet.V311)
			c.SendBytes(raw)
			if got := c.ExpectClosed(mt.Timeout); len(got) != 0 {
				t.Fatalf("got %+v, want close without reply", got)
			}
		})
	}
}

// Checks [MQTT-3.1.3-5] [MQTT-3.1.3-6] [MQTT-3.1.3-8] [MQTT-3.1.3-9].
func TestClientIdentifier(t *testing.T) {
	long := "a-client-identifier-longer-than-23-bytes-ünïcödé"
	cases := []struct {
		name    string
		v       byte
		id      string
		clean   bool
		opts    broker.Options
		want    packet.ReasonCode
		wantNew bool // the broker assigns an id (v5 reports it)
	}{
		{"empty clean 3.1.1", packet.V311, "", true, broker.Options{}, packet.Accepted, true},
		{"empty persistent 3.1.1", packet.V311, "", false, broker.Options{}, packet.RefusedIdentifierRejected, false},
		{"empty 3.1", packet.V31, "", true, broker.Options{}, packet.RefusedIdentifierRejected, false},
		{"long utf8 3.1.1", packet.V311, long, true, broker.Options{}, packet.Accepted, false},
		{"long utf8 3.1", packet.V31, long, true, broker.Options{}, packet.Accepted, false},
		{"over limit", packet.V311, long, true, broker.Options{MaxClientIDLength: 23}, packet.RefusedIdentifierRejected, false},
		{"over limit v5", packet.V5, long, true, broker.Options{MaxClientIDLength: 23}, packet.ClientIDNotValid, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mt.StartBroker(t, tc.opts)
			c := mt.Dial(t, b.Addr, tc.v)
			ack := c.Connect(tc.id, tc.clean)
			if ack.ReasonCode != tc.want {
				t.Fatalf("CONNACK code %#x, want %#x", ack.ReasonCode, tc.want)
			}
			if tc.want != packet.Accepted {
				c.ExpectClosed(mt.Timeout)
				return
			}
			if b.Stats().Connections != 1 {
				t.Fatalf("stats: %d connections", b.Stats().Connections)
			}
		})
	}
}

// Checks [MQTT-3.1.3-6] [MQTT-3.2.2-16].
func TestAssignedIDsAreUnique(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	for range 3 {
		c := mt.Dial(t, b.Addr, packet.V311)
		if ack := c.Connect("", true); ack.ReasonCode != packet.Accepted {
			t.Fatalf("CONNACK %#x", ack.ReasonCode)
		}
	}
	// Three connections with assigned ids coexist: none took over another.
	mt.Eventually(t, "3 sessions", func() bool { return b.Stats().Sessions == 3 })
}

// Checks [MQTT-3.1.4-2] [MQTT-3.2.2-4] [MQTT-3.2.2-7].
func TestAuthentication(t *testing.T) {
	users := map[string]string{"alice": "secret"}
	cases := []struct {
		name         string
		anonymous    bool
		user, pass   string
		userSet      bool
		want3, want5 packet.ReasonCode
	}{
		{"good password", false, "alice", "secret", true, packet.Accepted, packet.Success},
		{"bad password", false, "alice", "wrong", true, packet.RefusedBadUsernamePassword, packet.BadUsernameOrPassword},
		{"unknown user", false, "bob", "secret", true, packet.RefusedBadUsernamePassword, packet.BadUsernameOrPassword},
		{"anonymous refused", false, "", "", false, packet.RefusedNotAuthorized, packet.NotAuthorized},
		{"anonymous allowed", true, "", "", false, packet.Accepted, packet.Success},
	}
	for _, tc := range cases {
		mt.Versions(t, func(t *testing.T, v byte) {
			t.Run(tc.name, func(t *testing.T) {
				b := mt.StartBroker(t, broker.Options{Authenticator: auth.NewStatic(tc.anonymous, users)})
				c := mt.Dial(t, b.Addr, v)
				ack := c.ConnectWith(&packet.Connect{ClientID: "c", CleanStart: true,
					UsernameFlag: tc.userSet, Username: tc.user, PasswordFlag: tc.userSet, Password: []byte(tc.pass)})
				want := tc.want3
				if v == packet.V5 {
					want = tc.want5
				}
				if ack.ReasonCode != want || ack.SessionPresent {
					t.Fatalf("CONNACK %+v, want code %#x", ack, want)
				}
				if want != packet.Accepted {
					c.ExpectClosed(mt.Timeout) // [MQTT-3.2.2-5]
				}
			})
		})
	}
}

// Checks [MQTT-3.1.2-4] [MQTT-3.1.2-6] [MQTT-3.1.3-2] [MQTT-3.1.4-3] [MQTT-3.1.4-4] [MQTT-3.2.2-3] [MQTT-4.1.0-2].
func TestSessionPresent(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{})
		connect := func(clean bool) bool {
			c := mt.Dial(t, b.Addr, v)
			ack := c.Connect("sp", clean)
			c.Send(&packet.Disconnect{})
			c.ExpectClosed(mt.Timeout)
			return ack.SessionPresent
		}
		steps := []struct {
			clean, want bool
		}{
			{false, false}, // new persistent session
			{false, true},  // resumed [MQTT-3.2.2-2]
			{true, false},  // [MQTT-3.2.2-1] clean: always 0, and the session is discarded
			{false, false}, // so nothing to resume
		}
		for i, s := range steps {
			// MQTT 3.1 CONNACK has no session present flag.
			if got := connect(s.clean); got != s.want && v != packet.V31 {
				t.Fatalf("step %d clean=%v: session present %v, want %v", i, s.clean, got, s.want)
			}
		}
	})
}

// Checks [MQTT-3.1.3-2] [MQTT-3.1.4-3].
func TestTakeover(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{})
		watcher := mt.Dial(t, b.Addr, v)
		watcher.Connect("watcher", true)
		watcher.Subscribe(1, 0, "will/#")

		old := mt.Dial(t, b.Addr, v)
		never := uint32(0xFFFFFFFF)
		old.ConnectWith(&packet.Connect{ClientID: "dup", CleanStart: false, KeepAlive: 30,
			Properties: packet.Properties{SessionExpiry: &never},
			Will:       &packet.Will{Topic: "will/dup", Payload: []byte("gone")}})
		old.Subscribe(1, 1, "t")

		newer := mt.Dial(t, b.Addr, v)
		ack := newer.Connect("dup", false)
		if !ack.SessionPresent && v != packet.V31 {
			t.Fatal("takeover lost the session")
		}
		got := old.ExpectClosed(mt.Timeout) // [MQTT-3.1.4-2]
		if v == packet.V5 && (len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != packet.SessionTakenOver) {
			t.Fatalf("old v5 connection got %+v, want DISCONNECT 0x8E", got)
		}
		pub := mt.Expect[*packet.Publish](watcher)
		if pub.Topic != "will/dup" || string(pub.Payload) != "gone" {
			t.Fatalf("will %+v", pub)
		}
		// The subscription came along with the session.
		watcher.Send(&packet.Publish{Topic: "t", Payload: []byte("x")})
		if p := mt.Expect[*packet.Publish](newer); p.Topic != "t" {
			t.Fatalf("got %+v", p)
		}
	})
}

// Checks [MQTT-3.1.2-8] [MQTT-3.1.2-12] [MQTT-3.1.2-15] [MQTT-3.1.2-16] [MQTT-3.1.2-22] [MQTT-3.2.2-22].
func TestKeepAliveTimeoutPublishesWill(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{})
		watcher := mt.Dial(t, b.Addr, v)
		watcher.Connect("watcher", true)
		watcher.Subscribe(1, 1, "will/#")

		c := mt.Dial(t, b.Addr, v)
		c.ConnectWith(&packet.Connect{ClientID: "silent", CleanStart: true, KeepAlive: 1,
			Will: &packet.Will{Topic: "will/silent", Payload: []byte("timeout"), QoS: 1, Retain: true}})
		start := time.Now()
		c.ExpectClosed(3 * time.Second) // [MQTT-3.1.2-24]
		if d := time.Since(start); d < time.Second {
			t.Fatalf("closed after %s, before 1.5 x keep alive", d)
		}
		pub := mt.Expect[*packet.Publish](watcher)
		if pub.Topic != "will/silent" || string(pub.Payload) != "timeout" || pub.QoS != 1 || pub.Retain {
			t.Fatalf("will %+v, want QoS 1 on will/silent, retain 0 on a live subscription", pub)
		}
		watcher.Send(&packet.Puback{PacketID: pub.PacketID})
		// The will was retained [MQTT-3.1.2-17].
		late := mt.Dial(t, b.Addr, v)
		late.Connect("late", true)
		late.Subscribe(1, 1, "will/silent")
		if p := mt.Expect[*packet.Publish](late); !p.Retain || string(p.Payload) != "timeout" {
			t.Fatalf("retained will %+v", p)
		}
	})
}

// Checks [MQTT-3.1.2-10] [MQTT-3.14.4-3].
func TestDisconnectDiscardsWill(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{})
		watcher := mt.Dial(t, b.Addr, v)
		watcher.Connect("watcher", true)
		watcher.Subscribe(1, 0, "will/#")

		c := mt.Dial(t, b.Addr, v)
		c.ConnectWith(&packet.Connect{ClientID: "polite", CleanStart: true, KeepAlive: 30,
			Will: &packet.Will{Topic: "will/polite", Payload: []byte("x")}})
		c.Send(&packet.Disconnect{})
		c.ExpectClosed(mt.Timeout)

		rude := mt.Dial(t, b.Addr, v)
		rude.ConnectWith(&packet.Connect{ClientID: "rude", CleanStart: true, KeepAlive: 30,
			Will: &packet.Will{Topic: "will/rude", Payload: []byte("y")}})
		rude.Conn.Close() // no DISCONNECT: the will goes out [MQTT-3.1.2-8]
		if p := mt.Expect[*packet.Publish](watcher); p.Topic != "will/rude" {
			t.Fatalf("got will %q, want only will/rude", p.Topic)
		}
	})
}

// TestV5SessionExpiryZero: in v5 a session without a Session Expiry
// Interval ends with its connection, Clean Start or not [MQTT-3.1.2-23].
func TestV5SessionExpiryZero(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	c := mt.Dial(t, b.Addr, packet.V5)
	c.ConnectWith(&packet.Connect{ClientID: "exp0", CleanStart: false, KeepAlive: 30})
	c.Subscribe(1, 1, "se/#")
	c.Send(&packet.Disconnect{})
	c.ExpectClosed(mt.Timeout)
	mt.Eventually(t, "session gone", func() bool { return b.Stats().Sessions == 0 && b.Stats().Subscriptions == 0 })
	again := mt.Dial(t, b.Addr, packet.V5)
	if again.Connect("exp0", false).SessionPresent {
		t.Fatal("session present after a session with expiry 0 ended")
	}
}

// Checks [MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.2.2-16].
func TestV5AssignedClientID(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	c := mt.Dial(t, b.Addr, packet.V5)
	ack := c.Connect("", true)
	if ack.ReasonCode != packet.Success || ack.Properties.AssignedClientID == "" {
		t.Fatalf("CONNACK %+v, want an Assigned Client Identifier", ack)
	}
}

// TestV5DisconnectReason: a v5 client that breaks the protocol is told
// why before the connection closes.
func TestV5DisconnectReason(t *testing.T) {
	cases := []struct {
		name string
		send func(c *mt.Raw)
		want packet.ReasonCode
	}{
		{"second connect", func(c *mt.Raw) { c.Send(&packet.Connect{ProtocolLevel: 5, ClientID: "x"}) }, packet.ProtocolError},
		{"wildcard topic", func(c *mt.Raw) { c.Send(&packet.Publish{Topic: "a/#"}) }, packet.TopicNameInvalid},
		{"malformed", func(c *mt.Raw) { c.SendBytes([]byte{0x60, 0x02, 0x00, 0x01}) }, packet.MalformedPacket}, // PUBREL flags 0000 [MQTT-3.6.1-1]
		{"too large", func(c *mt.Raw) { c.Send(&packet.Publish{Topic: "big", Payload: make([]byte, 2048)}) }, packet.PacketTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := mt.StartBroker(t, broker.Options{MaxPacketSize: 1024})
			c := mt.Dial(t, b.Addr, packet.V5)
			c.Connect("c", true)
			tc.send(c)
			got := c.ExpectClosed(mt.Timeout)
			if len(got) != 1 || got[0].(*packet.Disconnect).ReasonCode != tc.want {
				t.Fatalf("got %+v, want DISCONNECT %#x", got, tc.want)
			}
		})
	}
}

// TestPipelinedDisconnect: a client that sends CONNECT, a QoS 1 PUBLISH
// and DISCONNECT in one write, without waiting, still gets the CONNACK and
// the PUBACK before the server closes the connection.
func TestPipelinedDisconnect(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{})
		c := mt.Dial(t, b.Addr, v)
		var out []byte
		for _, p := range []packet.Packet{
			&packet.Connect{ProtocolLevel: v, ClientID: "pipelined", CleanStart: true},
			&packet.Publish{Topic: "p", QoS: 1, PacketID: 7, Payload: []byte("x")},
			&packet.Disconnect{},
		} {
			var err error
			if out, err = p.Append(out, v); err != nil {
				t.Fatal(err)
			}
		}
		c.SendBytes(out)
		got := c.ExpectClosed(mt.Timeout)
		if len(got) != 2 || got[0].Type() != packet.CONNACK || got[1].Type() != packet.PUBACK {
			t.Fatalf("got %v before the close, want CONNACK and PUBACK", got)
		}
	})
}
