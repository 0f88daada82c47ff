package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// flood writes n QoS 0 messages of size bytes to conn, in batches, from
// its own goroutine; written counts the messages written. The returned
// channel closes when all are written or a write failed.
func flood(conn net.Conn, version byte, n, size int, written *atomic.Int64) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := &packet.Publish{Topic: "flood", Payload: bytes.Repeat([]byte("x"), size)}
		var b []byte
		const batch = 100
		for i := 0; i < n; i += batch {
			b = b[:0]
			for range min(batch, n-i) {
				b, _ = p.Append(b, version)
			}
			if _, err := conn.Write(b); err != nil {
				return
			}
			written.Add(int64(min(batch, n-i)))
		}
	}()
	return done
}

// A handler that does not keep up with a QoS 0 flood: the inbox holds
// InboxSize messages (or InboxBytes), the reader stops reading, TCP
// pushes back on the server, and the heap stays small. With the former
// unbounded inbox (InboxSize and InboxBytes -1) the heap grows by the
// whole flood, 30 MB here. Once the handler catches up every message
// arrives: nothing is dropped.
func TestInboxBoundsMemoryUnderFlood(t *testing.T) {
	const n, size = 30000, 1000
	const limit = 8 << 20 // generous: the bound is about 1.3 MB
	for _, tc := range []struct {
		name       string
		size, byts int
	}{
		{"messages", 0, 0},               // the defaults: 1024 messages
		{"bytes", -1, 1 << 20},           // no message bound: 1 MiB
		{"small", 16, DefaultInboxBytes}, // a small message bound
	} {
		for _, tv := range versions {
			t.Run(tc.name+"/"+tv.name, func(t *testing.T) {
				s := newFakeServer(t, tv.v, nil)
				release := make(chan struct{})
				var once sync.Once
				free := func() { once.Do(func() { close(release) }) }
				defer free()
				var got atomic.Int64
				before := heapInUse()
				c := s.connect(Options{InboxSize: tc.size, InboxBytes: tc.byts, OnMessage: func(*packet.Publish) {
					<-release // a handler far slower than the flood
					got.Add(1)
				}})
				s.mu.Lock()
				conn := s.conn
				s.mu.Unlock()
				var written atomic.Int64
				done := flood(conn, tv.v, n, size, &written)
				// Either the reader stops (bounded) or the flood is
				// all written, having been read (unbounded).
				mt.Eventually(t, "the reader to stop or the flood to end", func() bool {
					select {
					case <-done:
						return true
					default:
						return c.inbox.parked.Load()
					}
				})
				after := heapInUse()
				grew := int64(after) - int64(before)
				c.inbox.mu.Lock()
				queued, qbytes := len(c.inbox.q)-c.inbox.head, c.inbox.bytes
				c.inbox.mu.Unlock()
				t.Logf("heap %d -> %d bytes (%+d) with %d of %d messages written, %d queued (%d bytes counted)",
					before, after, grew, written.Load(), n, queued, qbytes)
				if grew > limit {
					t.Errorf("heap grew by %d bytes under the flood, want at most %d", grew, limit)
				}
				free()
				mt.Eventually(t, "every message", func() bool { return got.Load() == n })
				<-done
			})
		}
	}
}

// A handler that publishes at QoS 1 and waits for the PUBACK while the
// inbox is full: the PUBACK comes behind more messages than the inbox
// holds, and the reader reads on to it because an answer is awaited.
func TestInboxHandlerPublishWhileFull(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			s := newFakeServer(t, tv.v, nil)
			var c *Client
			errc := make(chan error, 1)
			var got atomic.Int64
			first := true
			c = s.connect(Options{InboxSize: 4, OnMessage: func(*packet.Publish) {
				got.Add(1)
				if !first {
					return
				}
				first = false
				// Publish only once the reader has stopped for a full
				// inbox.
				for deadline := time.Now().Add(20 * time.Second); !c.inbox.parked.Load(); time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						errc <- errors.New("the reader never stopped")
						return
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				errc <- c.Publish(ctx, &packet.Publish{Topic: "reply", QoS: 1})
			}})
			var msgs []packet.Packet
			for range 10 {
				msgs = append(msgs, &packet.Publish{Topic: "t", Payload: []byte("before")})
			}
			s.send(msgs...)
			pub := expectType[*packet.Publish](t, s.expect())
			// The answer behind 50 messages, more than the inbox holds.
			msgs = msgs[:0]
			for range 50 {
				msgs = append(msgs, &packet.Publish{Topic: "t", Payload: []byte("after")})
			}
			s.send(append(msgs, &packet.Puback{PacketID: pub.PacketID})...)
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("Publish from the handler: %v (deadlock?)", err)
				}
			case <-wait20():
				t.Fatal("Publish from the handler never returned: deadlock")
			}
			mt.Eventually(t, "every message", func() bool { return got.Load() == 60 })
		})
	}
}

// The same against real brokers: every message of a QoS 0 flood makes the
// handler publish at QoS 1 and wait, with a small inbox.
func TestInboxHandlerPublishUnderFloodBrokers(t *testing.T) {
	brokers := []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"tern", func(t *testing.T) string { return mt.StartBroker(t, broker.Options{}).Addr }},
		{"mosquitto", func(t *testing.T) string { return mt.StartMosquitto(t, false).Addr }},
	}
	const n = 1000
	for _, b := range brokers {
		for _, tv := range versions {
			t.Run(b.name+"/"+tv.name, func(t *testing.T) {
				addr := b.addr(t)
				var c *Client
				var handled atomic.Int64
				errc := make(chan error, 1)
				c = connectTest(t, Options{Address: addr, Version: tv.v, ClientID: "inbox-sub", CleanStart: true, InboxSize: 8,
					OnMessage: func(p *packet.Publish) {
						ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
						defer cancel()
						if err := c.Publish(ctx, &packet.Publish{Topic: "inbox/out", QoS: 1, Payload: p.Payload}); err != nil {
							select {
							case errc <- err:
							default:
							}
							return
						}
						handled.Add(1)
					}})
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if _, err := c.Subscribe(ctx, packet.Subscription{Filter: "inbox/in", QoS: 0}); err != nil {
					t.Fatal(err)
				}
				pub := connectTest(t, Options{Address: addr, Version: tv.v, ClientID: "inbox-pub", CleanStart: true})
				payload := bytes.Repeat([]byte("y"), 100)
				for range n {
					if err := pub.Publish(ctx, &packet.Publish{Topic: "inbox/in", Payload: payload}); err != nil {
						t.Fatal(err)
					}
				}
				for handled.Load() < n {
					select {
					case err := <-errc:
						t.Fatalf("Publish from the handler after %d: %v", handled.Load(), err)
					case <-ctx.Done():
						t.Fatalf("%d of %d messages handled: deadlock?", handled.Load(), n)
					case <-time.After(5 * time.Millisecond):
					}
				}
			})
		}
	}
}

// Close while the reader waits for room ends the reader at once.
func TestInboxFullClose(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	release := make(chan struct{})
	defer close(release)
	c := s.connect(Options{InboxSize: 2, OnMessage: func(*packet.Publish) { <-release }})
	var msgs []packet.Packet
	for range 10 {
		msgs = append(msgs, &packet.Publish{Topic: "t"})
	}
	s.send(msgs...)
	mt.Eventually(t, "the reader to stop", c.inbox.parked.Load)
	c.Close()
	wait(t, c.readerDone, "the reader")
}

func TestReceiveMaximumSentV5(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want *uint16
	}{
		{"default", Options{}, ptr[uint16](DefaultInboxSize)},
		{"inbox size", Options{InboxSize: 10}, ptr[uint16](10)},
		{"beyond 65535", Options{InboxSize: 100000}, ptr[uint16](math.MaxUint16)},
		{"unbounded", Options{InboxSize: -1}, nil},
		{"explicit", Options{InboxSize: 10, Properties: packet.Properties{ReceiveMaximum: ptr[uint16](5)}}, ptr[uint16](5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeServer(t, packet.V5, nil)
			s.connect(tc.o)
			got := s.connectPk.Properties.ReceiveMaximum
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Errorf("Receive Maximum = %s, want %s", fmtPtr(got), fmtPtr(tc.want))
			}
		})
	}
}

func fmtPtr(p *uint16) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprint(*p)
}

// Under ManualAck acknowledgements leave in the order the messages came,
// whatever the order of the Ack calls [MQTT-4.6.0-2] [MQTT-4.6.0-3].
func TestManualAckOrder(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			s := newFakeServer(t, tv.v, nil)
			got := make(chan *packet.Publish, 10)
			c := s.connect(Options{ManualAck: true, OnMessage: func(p *packet.Publish) { got <- p }})
			s.send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 1},
				&packet.Publish{Topic: "t", QoS: 2, PacketID: 2},
				&packet.Publish{Topic: "t", QoS: 1, PacketID: 3},
				&packet.Publish{Topic: "t", QoS: 0})
			var m [4]*packet.Publish
			for i := range m {
				select {
				case m[i] = <-got:
				case <-wait20():
					t.Fatal("messages not delivered")
				}
			}
			for _, step := range []struct {
				p    *packet.Publish
				want error
			}{
				{m[3], nil},               // QoS 0: nothing to send
				{m[2], nil},               // waits for 1 and 2
				{m[2], ErrNotAwaitingAck}, // twice
				{m[0], nil},               // PUBACK 1
				{m[1], nil},               // PUBREC 2, then PUBACK 3
			} {
				if err := c.Ack(step.p); !errors.Is(err, step.want) {
					t.Fatalf("Ack(%d) = %v, want %v", step.p.PacketID, err, step.want)
				}
			}
			if p := expectType[*packet.Puback](t, s.expect()); p.PacketID != 1 {
				t.Fatalf("first PUBACK for %d, want 1", p.PacketID)
			}
			if p := expectType[*packet.Pubrec](t, s.expect()); p.PacketID != 2 {
				t.Fatalf("PUBREC for %d, want 2", p.PacketID)
			}
			if p := expectType[*packet.Puback](t, s.expect()); p.PacketID != 3 {
				t.Fatalf("second PUBACK for %d, want 3", p.PacketID)
			}
			s.send(&packet.Pubrel{PacketID: 2})
			expectType[*packet.Pubcomp](t, s.expect())
		})
	}
}

func TestAckWithoutManualAck(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	got := make(chan *packet.Publish, 1)
	c := s.connect(Options{OnMessage: func(p *packet.Publish) { got <- p }})
	s.send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 7})
	expectType[*packet.Puback](t, s.expect()) // when the handler returned
	if err := c.Ack(<-got); err == nil {
		t.Error("Ack without ManualAck: no error")
	}
}

// Under ManualAck a message nobody takes is acknowledged at once, so that
// it does not hold up the acknowledgements behind it.
func TestManualAckUnhandled(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	s.connect(Options{ManualAck: true})
	s.send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 7})
	if p := expectType[*packet.Puback](t, s.expect()); p.PacketID != 7 {
		t.Fatalf("PUBACK for %d", p.PacketID)
	}
}

// A QoS 1 message not acknowledged when the connection ends comes again
// on the next connection to the persistent session; an acknowledged one
// does not.
func TestManualAckRedelivery(t *testing.T) {
	brokers := []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"tern", func(t *testing.T) string { return mt.StartBroker(t, broker.Options{}).Addr }},
		{"mosquitto", func(t *testing.T) string { return mt.StartMosquitto(t, false).Addr }},
	}
	for _, b := range brokers {
		for _, tv := range versions {
			t.Run(b.name+"/"+tv.name, func(t *testing.T) {
				addr := b.addr(t)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				got := make(chan *packet.Publish, 10)
				o := Options{Address: addr, Version: tv.v, ClientID: "manual", ManualAck: true,
					OnMessage: func(p *packet.Publish) { got <- p }}
				if tv.v == packet.V5 {
					o.Properties.SessionExpiry = ptr[uint32](600)
				}
				// A persistent session from the start (a clean session
				// before v5 ends with its connection).
				sub := connectTest(t, o)
				if _, err := sub.Subscribe(ctx, packet.Subscription{Filter: "manual/t", QoS: 1}); err != nil {
					t.Fatal(err)
				}
				pub := connectTest(t, Options{Address: addr, Version: tv.v, ClientID: "manual-pub", CleanStart: true})
				for _, s := range []string{"one", "two"} {
					if err := pub.Publish(ctx, &packet.Publish{Topic: "manual/t", QoS: 1, Payload: []byte(s)}); err != nil {
						t.Fatal(err)
					}
				}
				recv := func() *packet.Publish {
					t.Helper()
					select {
					case p := <-got:
						return p
					case <-ctx.Done():
						t.Fatal("message not received")
						return nil
					}
				}
				one, two := recv(), recv()
				if string(one.Payload) != "one" || string(two.Payload) != "two" {
					t.Fatalf("got %q, %q", one.Payload, two.Payload)
				}
				if err := sub.Ack(one); err != nil {
					t.Fatal(err)
				}
				sub.Close()
				waitDone(t, sub)
				if err := sub.Ack(two); err == nil {
					t.Error("Ack after the connection ended: no error")
				}

				sub2 := connectTest(t, o)
				if !sub2.Connack().SessionPresent && tv.v != packet.V31 {
					t.Fatal("session not resumed")
				}
				again := recv()
				if string(again.Payload) != "two" || !again.Dup {
					t.Fatalf("got %q (dup %v), want two again", again.Payload, again.Dup)
				}
				if err := sub2.Ack(again); err != nil {
					t.Fatal(err)
				}
				// "one" was acknowledged: a marker published now is the
				// next message.
				if err := pub.Publish(ctx, &packet.Publish{Topic: "manual/t", QoS: 1, Payload: []byte("three")}); err != nil {
					t.Fatal(err)
				}
				if p := recv(); string(p.Payload) != "three" {
					t.Fatalf("got %q, want three", p.Payload)
				}
			})
		}
	}
}
