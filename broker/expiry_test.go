package broker_test

import (
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store/memory"
)

// connectV5 connects with a session expiry interval and optional will.
func connectV5(t *testing.T, b *mt.Broker, id string, expiry uint32, will *packet.Will) *mt.Raw {
	t.Helper()
	c := mt.Dial(t, b.Addr, packet.V5)
	ack := c.ConnectWith(&packet.Connect{ClientID: id, KeepAlive: 30, Will: will,
		Properties: packet.Properties{SessionExpiry: u32(expiry)}})
	if ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %+v", ack)
	}
	return c
}

// Checks [MQTT-3.1.2-23] [MQTT-4.1.0-1] [MQTT-4.1.0-2].
func TestV5SessionExpires(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	c := connectV5(t, b, "brief", 1, nil)
	c.Subscribe(1, 1, "x")
	c.Send(&packet.Disconnect{})
	c.ExpectClosed(mt.Timeout)
	if b.Stats().Sessions != 1 {
		t.Fatal("session ended at disconnect despite its expiry interval")
	}
	mt.Eventually(t, "session expired", func() bool { return b.Stats().Sessions == 0 && b.Stats().Subscriptions == 0 })
	again := mt.Dial(t, b.Addr, packet.V5)
	if again.Connect("brief", false).SessionPresent {
		t.Fatal("expired session resumed")
	}
}

// Checks [MQTT-3.1.2-7] [MQTT-3.1.2-8] [MQTT-3.1.2-14].
func TestV5WillDelay(t *testing.T) {
	watch := func(t *testing.T, b *mt.Broker) *mt.Raw {
		w := mt.Dial(t, b.Addr, packet.V5)
		w.Connect("watcher", true)
		w.Subscribe(1, 0, "will/#")
		return w
	}
	will := func(delay uint32) *packet.Will {
		return &packet.Will{Topic: "will/x", Payload: []byte("late"), Properties: packet.Properties{WillDelay: u32(delay)}}
	}
	t.Run("sent after the delay", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{})
		w := watch(t, b)
		c := connectV5(t, b, "d", 60, will(1))
		start := time.Now()
		c.Conn.Close()
		if p := mt.Expect[*packet.Publish](w); string(p.Payload) != "late" {
			t.Fatalf("got %+v", p)
		}
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Fatalf("will after %s, before its 1 s delay", d)
		}
	})
	t.Run("cancelled by reconnect", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{})
		w := watch(t, b)
		c := connectV5(t, b, "d", 60, will(1))
		c.Conn.Close()
		mt.Eventually(t, "offline", func() bool { return b.Stats().Connections == 1 })
		connectV5(t, b, "d", 60, nil) // [MQTT-3.1.3-9] back in time: no will
		w.ExpectNothing(1500 * time.Millisecond)
	})
	t.Run("at session end when sooner", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{})
		w := watch(t, b)
		c := connectV5(t, b, "d", 1, will(3600))
		c.Conn.Close()
		if p := mt.Expect[*packet.Publish](w); string(p.Payload) != "late" {
			t.Fatalf("got %+v", p)
		}
	})
	t.Run("clean start ends the old session and sends its will", func(t *testing.T) {
		b := mt.StartBroker(t, broker.Options{})
		w := watch(t, b)
		c := connectV5(t, b, "d", 60, will(3600))
		c.Conn.Close()
		mt.Eventually(t, "offline", func() bool { return b.Stats().Connections == 1 })
		n := mt.Dial(t, b.Addr, packet.V5)
		n.Connect("d", true)
		if p := mt.Expect[*packet.Publish](w); string(p.Payload) != "late" {
			t.Fatalf("got %+v", p)
		}
	})
}

// TestSessionExpiryAcrossRestart: time the broker was down counts.
// Checks [MQTT-4.1.0-2].
func TestSessionExpiryAcrossRestart(t *testing.T) {
	st := memory.New()
	b1 := mt.StartBroker(t, broker.Options{Store: st})
	c := connectV5(t, b1, "short", 1, nil)
	c.Subscribe(1, 1, "x")
	c.Send(&packet.Disconnect{})
	c.ExpectClosed(mt.Timeout)
	keep := connectV5(t, b1, "long", 3600, nil)
	keep.Send(&packet.Disconnect{})
	keep.ExpectClosed(mt.Timeout)
	mt.Eventually(t, "both offline", func() bool { return b1.Stats().Connections == 0 })
	b1.Close()
	time.Sleep(1100 * time.Millisecond)
	b2 := mt.StartBroker(t, broker.Options{Store: st})
	if n := b2.Stats().Sessions; n != 1 {
		t.Fatalf("%d sessions after restart, want only the unexpired one", n)
	}
}

// TestDelayedWillSurvivesRestart: a will waiting for its delay is stored
// with the session and still goes out after a restart.
func TestDelayedWillSurvivesRestart(t *testing.T) {
	st := memory.New()
	b1 := mt.StartBroker(t, broker.Options{Store: st})
	// Retained, so the watcher sees it however late it subscribes.
	c := connectV5(t, b1, "dying", 3600, &packet.Will{Topic: "will/dying", QoS: 1, Retain: true, Payload: []byte("gone"),
		Properties: packet.Properties{WillDelay: u32(1)}})
	c.Conn.Close()
	mt.Eventually(t, "offline", func() bool { return b1.Stats().Connections == 0 })
	b1.Close()
	if b1.Stats().Retained != 0 {
		t.Fatal("the will went out before its delay")
	}

	b2 := mt.StartBroker(t, broker.Options{Store: st})
	w := mt.Dial(t, b2.Addr, packet.V5)
	w.Connect("watcher", true)
	w.Subscribe(1, 1, "will/#")
	if p := mt.Expect[*packet.Publish](w); string(p.Payload) != "gone" {
		t.Fatalf("got %+v, want the delayed will", p)
	}
}

// TestExpiredMessagesSwept: expired messages leave offline queues, the
// retained set and the store without anyone asking for them.
// Checks [MQTT-3.3.2-5].
func TestExpiredMessagesSwept(t *testing.T) {
	st := memory.New()
	b := mt.StartBroker(t, broker.Options{Store: st, ExpirySweep: 50 * time.Millisecond})
	sub := connectV5(t, b, "away", 3600, nil)
	sub.Subscribe(1, 1, "e/#")
	sub.Send(&packet.Disconnect{})
	sub.ExpectClosed(mt.Timeout)
	mt.Eventually(t, "offline", func() bool { return b.Stats().Connections == 0 })
	pub := mt.Dial(t, b.Addr, packet.V5)
	pub.Connect("pub", true)
	for i, retain := range []bool{false, true} {
		pub.Send(&packet.Publish{Topic: "e/x", QoS: 1, PacketID: uint16(i + 1), Retain: retain, Payload: []byte("soon gone"),
			Properties: packet.Properties{MessageExpiry: u32(1)}})
		mt.Expect[*packet.Puback](pub)
	}
	if s := b.Stats(); s.QueuedBytes == 0 || s.Retained != 1 {
		t.Fatalf("before expiry: %+v", s)
	}
	mt.Eventually(t, "swept", func() bool {
		s := b.Stats()
		return s.QueuedBytes == 0 && s.Retained == 0 && s.Dropped.Expired == 3
	})
	states, retained, _ := st.Load()
	for _, s := range states {
		if len(s.Outbound) != 0 {
			t.Errorf("%s still stores %d messages", s.Session.ClientID, len(s.Outbound))
		}
	}
	if len(retained) != 0 {
		t.Errorf("store keeps %d retained", len(retained))
	}
}

// A DISCONNECT's Session Expiry Interval is capped as CONNECT's is: under
// a MaxSessionExpiry below a second, both are 0 and the session ends with
// its connection rather than expiring later.
func TestV5DisconnectExpiryCapped(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{MaxSessionExpiry: 500 * time.Millisecond})
	c := connectV5(t, b, "capped", 60, nil)
	c.Send(&packet.Disconnect{Properties: packet.Properties{SessionExpiry: u32(60)}})
	c.ExpectClosed(mt.Timeout)
	mt.Eventually(t, "session ended", func() bool { return b.Stats().Sessions == 0 })
	time.Sleep(50 * time.Millisecond) // an expiry would count just after
	if n := b.Stats().SessionsExpired; n != 0 {
		t.Fatalf("%d sessions expired; want the session ended at disconnect", n)
	}
}
