package broker_test

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// Regression tests for the paths that end in an acknowledgement: what a
// publisher is told when queues are full, what may hold up a commit, what
// commits together, and what happens once the store fails.

// connectCleanAs connects as user with a session that ends with the
// connection, and fails unless the CONNACK accepts.
func connectCleanAs(t *testing.T, b *mt.Broker, v byte, id, user string) *mt.Raw {
	t.Helper()
	c := mt.Dial(t, b.Addr, v)
	ack := c.ConnectWith(&packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 30, UsernameFlag: user != "", Username: user})
	if ack.ReasonCode != 0 {
		t.Fatalf("%s: CONNACK %#x", id, byte(ack.ReasonCode))
	}
	return c
}

// disconnectAndWait ends c cleanly (a persistent session lives on) and
// waits until the broker counts want connections.
func disconnectAndWait(t *testing.T, b *mt.Broker, c *mt.Raw, want int64) {
	t.Helper()
	c.Send(&packet.Disconnect{})
	c.ExpectClosed(mt.Timeout)
	mt.Eventually(t, "client offline", func() bool { return b.Stats().Connections == want })
}

// TestRefusePublisherPartialDelivery: with RefusePublisher, a message
// that some session's queue took is acknowledged with success, though
// another full queue refused it, so that a retry makes no duplicate;
// only a message every session refused gets Quota exceeded (0x97). Each
// refusing queue is counted.
func TestRefusePublisherPartialDelivery(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{QueuePolicy: broker.RefusePublisher, MaxQueued: 1})
		for _, id := range []string{"a", "b"} {
			c, ack := dialAs(t, b, v, id, "", false) // session expiry 3600
			if ack.ReasonCode != 0 {
				t.Fatalf("%s: CONNACK %#x", id, byte(ack.ReasonCode))
			}
			c.Subscribe(1, 1, "t")
			disconnectAndWait(t, b, c, 0)
		}
		pub := connectCleanAs(t, b, v, "pub", "")
		// drainB empties b's queue: b comes back, takes and acknowledges
		// what waited, and leaves again.
		drainB := func() {
			t.Helper()
			c, ack := dialAs(t, b, v, "b", "", false)
			if !ack.SessionPresent {
				t.Fatal("b: session lost")
			}
			p := mt.Expect[*packet.Publish](c)
			c.Send(&packet.Puback{PacketID: p.PacketID})
			disconnectAndWait(t, b, c, 1)
		}
		for i, step := range []struct {
			name         string
			qos          byte
			drainB       bool // b's queue has room, a's is full
			want         packet.ReasonCode
			refusedSoFar int64 // Stats().Dropped.QueueRefused after the step
		}{
			{"both queues take it", 1, false, packet.Success, 0},
			{"b takes it, a refuses", 1, true, packet.Success, 1},
			{"both refuse", 1, false, packet.QuotaExceeded, 3},
			{"QoS 2: b takes it, a refuses", 2, true, packet.Success, 4},
			{"QoS 2: both refuse", 2, false, packet.QuotaExceeded, 6},
		} {
			if step.drainB {
				drainB()
			}
			id := uint16(i + 1)
			pub.Send(&packet.Publish{Topic: "t", QoS: step.qos, PacketID: id, Payload: []byte(step.name)})
			var got packet.ReasonCode
			if step.qos == 1 {
				got = mt.Expect[*packet.Puback](pub).ReasonCode
			} else {
				got = mt.Expect[*packet.Pubrec](pub).ReasonCode
				if !got.IsFailure() {
					pub.Send(&packet.Pubrel{PacketID: id})
					mt.Expect[*packet.Pubcomp](pub)
				}
			}
			if got != step.want {
				t.Fatalf("%s: acknowledged %#x, want %#x", step.name, byte(got), byte(step.want))
			}
			if n := b.Stats().Dropped.QueueRefused; n != step.refusedSoFar {
				t.Fatalf("%s: RefusedQueueFull %d, want %d", step.name, n, step.refusedSoFar)
			}
		}
	}, packet.V5)
}

// slowReader allows everything, but deciding whether user "slow" may
// read takes a while (an HTTP ACL on a bad day). started is closed when
// the first such decision begins.
type slowReader struct {
	started chan struct{}
	once    sync.Once
}

func (a *slowReader) Authorize(c *auth.Client, action auth.Action, _ string) bool {
	if action == auth.Read && c != nil && c.Username == "slow" {
		a.once.Do(func() { close(a.started) })
		time.Sleep(300 * time.Millisecond)
	}
	return true
}

// TestSlowAuthorizerDoesNotStallAcks: asking the Authorizer whether the
// subscribers of one publish may read it (here 5 x 300 ms) happens outside
// the store's atomic section, so another publisher's commit, and with it
// its PUBACK, does not wait for those answers.
func TestSlowAuthorizerDoesNotStallAcks(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		authz := &slowReader{started: make(chan struct{})}
		b := pebbleBrokerWith(t, t.TempDir(), broker.Options{Authenticator: anyone{}, Authorizer: authz})
		for i := range 5 {
			s := connectCleanAs(t, b, v, "slow-"+string(rune('0'+i)), "slow")
			s.Subscribe(1, 2, "slow/t")
		}
		fast, ack := dialAs(t, b, v, "fast", "fast", false) // persistent: its message is stored
		if ack.ReasonCode != 0 {
			t.Fatalf("fast: CONNACK %#x", byte(ack.ReasonCode))
		}
		fast.Subscribe(1, 1, "fast/t")
		pa := connectCleanAs(t, b, v, "pa", "p")
		pb := connectCleanAs(t, b, v, "pb", "p2")

		type ackAt struct {
			p   packet.Packet
			err error
			at  time.Time
		}
		aGot := make(chan ackAt, 1)
		sentA := time.Now()
		pa.Send(&packet.Publish{Topic: "slow/t", QoS: 2, PacketID: 1, Payload: []byte("a")})
		go func() {
			p, err := pa.ReadWithin(mt.Timeout)
			aGot <- ackAt{p, err, time.Now()}
		}()
		select {
		case <-authz.started: // A's publish is being authorized for its readers
		case <-time.After(mt.Timeout):
			t.Fatal("the Authorizer was never asked about the slow readers")
		}
		sentB := time.Now()
		pb.Send(&packet.Publish{Topic: "fast/t", QoS: 1, PacketID: 1, Payload: []byte("b")})
		if a := mt.Expect[*packet.Puback](pb); a.ReasonCode != 0 {
			t.Fatalf("B: PUBACK %#x", byte(a.ReasonCode))
		}
		bAt := time.Now()
		a := <-aGot
		if a.err != nil {
			t.Fatalf("A: %v", a.err)
		}
		if _, ok := a.p.(*packet.Pubrec); !ok {
			t.Fatalf("A: got %s, want PUBREC", a.p.Type())
		}
		t.Logf("B's PUBACK after %v; A's PUBREC after %v", bAt.Sub(sentB), a.at.Sub(sentA))
		if !bAt.Before(a.at) {
			t.Fatalf("B's PUBACK (%v) came after A's PUBREC (%v): B's commit waited for A's authorization",
				bAt.Sub(sentA), a.at.Sub(sentA))
		}
		pa.Send(&packet.Pubrel{PacketID: 1})
		mt.Expect[*packet.Pubcomp](pa)
		if p := mt.Expect[*packet.Publish](fast); string(p.Payload) != "b" {
			t.Fatalf("fast got %q", p.Payload)
		}
	})
}

// TestSharedHandOverIsAtomic: when a member of a shared group goes away,
// its unacknowledged QoS 1 message is taken from it and given to another
// member in one commit: after a crash it is in exactly one of the two.
func TestSharedHandOverIsAtomic(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		g := newGatedStore()
		b := mt.StartBroker(t, broker.Options{Store: g})
		ma, _ := dialAs(t, b, v, "ma", "", false)
		ma.Subscribe(1, 1, "$share/g/t")
		pub := connectCleanAs(t, b, v, "pub", "")
		pub.Send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 1, Payload: []byte("job")})
		mt.Expect[*packet.Puback](pub)
		if p := mt.Expect[*packet.Publish](ma); string(p.Payload) != "job" {
			t.Fatalf("ma got %q", p.Payload) // and does not acknowledge it
		}
		mb, _ := dialAs(t, b, v, "mb", "", false)
		mb.Subscribe(1, 1, "$share/g/t")
		ma.Conn.Close()
		if p := mt.Expect[*packet.Publish](mb); string(p.Payload) != "job" {
			t.Fatalf("mb got %q", p.Payload)
		}
		// The Atomic call each write was made in, by the write.
		calls := map[string][]string{}
		for _, w := range g.writes() {
			f := strings.Fields(w)
			if len(f) == 3 {
				calls[f[0]+" "+f[1]] = append(calls[f[0]+" "+f[1]], f[2])
			}
		}
		del, put := calls["DeleteOutbound ma"], calls["PutOutbound mb"]
		if len(del) != 1 || len(put) != 1 {
			t.Fatalf("want one DeleteOutbound for ma and one PutOutbound for mb, got %q", g.writes())
		}
		if del[0] == "0" || del[0] != put[0] {
			t.Fatalf("hand-over: DeleteOutbound ma in Atomic call %q, PutOutbound mb in %q; want the same call (writes %q)",
				del[0], put[0], g.writes())
		}
	}, packet.V311, packet.V5)
}

// TestWillOfSessionExpiredWhileDown: a will waiting for its session to
// end is published at startup when the session ended while the broker
// was down [MQTT-3.1.3-9]. 3.1.1 has no Will Delay Interval: its will
// goes out when the connection drops and waits, stored, in the watcher's
// queue; it too must be there after the restart, once.
func TestWillOfSessionExpiredWhileDown(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		dir := t.TempDir()
		opts := broker.Options{PersistentSessionExpiry: time.Second}
		b := pebbleBrokerWith(t, dir, opts)
		// The watcher is v5 with a long expiry whatever v is: a 3.1.1
		// session here would end with the dying client's.
		watch := func(b *mt.Broker) (*mt.Raw, *packet.Connack) {
			w := mt.Dial(t, b.Addr, packet.V5)
			return w, w.ConnectWith(&packet.Connect{ClientID: "watcher", KeepAlive: 30,
				Properties: packet.Properties{SessionExpiry: u32(3600)}})
		}
		w, _ := watch(b)
		w.Subscribe(1, 1, "will/#")
		disconnectAndWait(t, b, w, 0)

		c := mt.Dial(t, b.Addr, v)
		connect := &packet.Connect{ClientID: "dying", KeepAlive: 30,
			Will: &packet.Will{QoS: 1, Topic: "will/x", Payload: []byte("gone")}}
		if v == packet.V5 {
			// The will waits for the session to end, 1 s after the drop.
			connect.Properties.SessionExpiry = u32(1)
			connect.Will.Properties.WillDelay = u32(3600)
		}
		if ack := c.ConnectWith(connect); ack.ReasonCode != 0 {
			t.Fatalf("CONNACK %#x", byte(ack.ReasonCode))
		}
		c.Conn.Close() // no DISCONNECT: the will stands
		mt.Eventually(t, "dying client detached", func() bool { return b.Stats().Connections == 0 })
		b.Close() // before the session expires
		time.Sleep(1500 * time.Millisecond)

		b = pebbleBrokerWith(t, dir, opts)
		w, ack := watch(b)
		if !ack.SessionPresent {
			t.Fatal("watcher: session lost")
		}
		p := mt.Expect[*packet.Publish](w)
		if p.Topic != "will/x" || string(p.Payload) != "gone" {
			t.Fatalf("got %q %q, want the will", p.Topic, p.Payload)
		}
		w.Send(&packet.Puback{PacketID: p.PacketID})
		w.ExpectNothing(200 * time.Millisecond) // once
	}, packet.V311, packet.V5)
}

// countLines counts the lines of s containing sub.
func countLines(s, sub string) int {
	n := 0
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

// TestStoreFailureStopsAcknowledging: once a store write fails, no QoS 1
// message is acknowledged as received: the publisher whose message it was
// gets no PUBACK, later v5 publishers get Unspecified error (0x80), later
// 3.1.1 publishers (who cannot be told) are disconnected; Health says why
// and the log says it once.
// Checks [MQTT-4.8.0-2].
func TestStoreFailureStopsAcknowledging(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		g := newGatedStore()
		var logs mt.SyncBuffer
		b := mt.StartBroker(t, broker.Options{Store: g, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		sub, _ := dialAs(t, b, v, "sub", "", false) // persistent: its messages are stored
		sub.Subscribe(1, 1, "t")
		pub := connectCleanAs(t, b, v, "pub", "")
		g.fail.Store(true)
		pub.Send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 1, Payload: []byte("lost?")})
		for _, p := range pub.ExpectClosed(mt.Timeout) {
			if _, ok := p.(*packet.Puback); ok {
				t.Fatalf("PUBACK %+v for a message the store failed to keep", p)
			}
		}
		mt.Eventually(t, "Health reports the store", func() bool { return b.Health() != nil })
		if err := b.Health(); !errors.Is(err, errDisk) {
			t.Fatalf("Health: %v, want it to wrap %v", err, errDisk)
		}
		for _, later := range []struct {
			v    byte
			want packet.ReasonCode // PUBACK code; 0: disconnected instead
		}{
			{packet.V5, packet.UnspecifiedError},
			{packet.V311, 0},
		} {
			p := connectCleanAs(t, b, later.v, "later-"+mt.VersionName(later.v), "")
			p.Send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 2, Payload: []byte("later")})
			if later.want != 0 {
				if a := mt.Expect[*packet.Puback](p); a.ReasonCode != later.want {
					t.Fatalf("%s publisher: PUBACK %#x, want %#x", mt.VersionName(later.v), byte(a.ReasonCode), byte(later.want))
				}
				continue
			}
			for _, got := range p.ExpectClosed(mt.Timeout) {
				if _, ok := got.(*packet.Puback); ok {
					t.Fatalf("%s publisher: PUBACK %+v after the store failed", mt.VersionName(later.v), got)
				}
			}
		}
		// The goroutine that saw the failure logs it right after making
		// Health report it.
		mt.Eventually(t, "the store failure logged", func() bool { return countLines(logs.String(), "no longer acknowledged") > 0 })
		if n := countLines(logs.String(), "no longer acknowledged"); n != 1 {
			t.Fatalf("store failure logged %d times, want once:\n%s", n, logs.String())
		}
	}, packet.V311, packet.V5)
}
