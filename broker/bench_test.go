package broker

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

// discardConn is a net.Conn whose writes vanish, to measure the delivery
// path without a network.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) Close() error                     { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
func (discardConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

func benchBroker(b *testing.B, subscribers int, qos byte, version byte) *Broker {
	return benchBrokerWith(b, Options{MaxInflight: 65535}, subscribers, qos, version)
}

// benchBrokerWith is benchBroker with the limits of o.
func benchBrokerWith(b *testing.B, o Options, subscribers int, qos byte, version byte) *Broker {
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	br, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	for i := range subscribers {
		c := newConn(br, discardConn{})
		c.version = version
		c.client = &auth.Client{ClientID: fmt.Sprint("sub", i)}
		if err := br.attach(c, c.client.ClientID, true, 0, br.opts().MaxInflight, &packet.Connack{}, false); err != nil {
			b.Fatal(err)
		}
		sub := store.Subscription{Subscription: packet.Subscription{Filter: "bench/+/data", QoS: qos}}
		c.sess.subs.put(sub)
		br.subs.Add(sub.Filter, c.sess, optsOf(sub))
	}
	return br
}

// BenchmarkRoute measures routing one PUBLISH to N subscribers: trie
// match, encode once, copy to each subscriber's buffer.
func BenchmarkRoute(b *testing.B) {
	for _, v := range []byte{packet.V311, packet.V5} {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("v%d/qos0/subs=%d", v, n), func(b *testing.B) {
				br := benchBroker(b, n, 0, v)
				m := &Message{Topic: "bench/42/data", Payload: make([]byte, 64)}
				var r router
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					r.route(br, m, "pub")
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
			})
		}
	}
}

// BenchmarkRouterMatch measures finding the sessions a message goes to
// (the trie, merging overlapping subscriptions, authorization), without
// handing it over.
func BenchmarkRouterMatch(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			br := benchBroker(b, n, 0, packet.V311)
			m := &Message{Topic: "bench/42/data", Payload: make([]byte, 64)}
			var r router
			b.ReportAllocs()
			for b.Loop() {
				r.match(br, m, "pub")
				if len(r.targets) != n {
					b.Fatalf("%d targets, want %d", len(r.targets), n)
				}
				clear(r.targets)
				r.targets = r.targets[:0]
			}
		})
	}
}

// BenchmarkRouteQoS1 includes the in-flight bookkeeping and the
// acknowledgement that frees the slot.
func BenchmarkRouteQoS1(b *testing.B) {
	br := benchBroker(b, 1, 1, packet.V311)
	var s *session
	for _, x := range br.sessions {
		s = x
	}
	m := &Message{Topic: "bench/42/data", Payload: make([]byte, 64), QoS: 1}
	var r router
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r.route(br, m, "pub")
		s.ack(s.nextID, 1)
	}
}

// BenchmarkRouteQoS1Queued is fan-in's steady state at QoS 1: the
// subscriber's window is full and messages wait in its queue, so each
// one routed is queued, and each acknowledgement moves the oldest queued
// message into flight. Its cost must not grow with the queue's depth.
func BenchmarkRouteQoS1Queued(b *testing.B) {
	const window = 100
	for _, depth := range []int{100, 10_000, 100_000} {
		b.Run(fmt.Sprintf("queued=%d", depth), func(b *testing.B) {
			// A write buffer that never counts as full: the writer
			// goroutine lagging must not hold a message back from flight.
			o := Options{MaxInflight: window, MaxQueued: depth + 1, MaxWriteBuffer: 1 << 40}
			br := benchBrokerWith(b, o, 1, 1, packet.V311)
			var s *session
			for _, x := range br.sessions {
				s = x
			}
			m := &Message{Topic: "bench/42/data", Payload: make([]byte, 64), QoS: 1}
			var r router
			for range window + depth {
				r.route(br, m, "pub")
			}
			// Packet ids are given in order and acknowledged in order:
			// the oldest in flight is always the next after the last.
			id := uint16(0)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r.route(br, m, "pub")
				if id++; id == 0 {
					id = 1
				}
				if !s.ack(id, 1) {
					b.Fatalf("packet id %d not in flight", id)
				}
			}
			b.StopTimer()
			s.mu.Lock()
			queued := len(s.queue)
			s.mu.Unlock()
			if queued != depth {
				b.Fatalf("%d queued, want %d", queued, depth)
			}
		})
	}
}

// BenchmarkRouteQoS1QueueFull routes QoS 1 messages to a subscriber whose
// window is full and whose queue is at its bound: each is dropped
// (DropNewest), as most are behind a flooded fan-in subscriber.
func BenchmarkRouteQoS1QueueFull(b *testing.B) {
	const window, depth = 100, 1000
	br := benchBrokerWith(b, Options{MaxInflight: window, MaxQueued: depth}, 1, 1, packet.V311)
	m := &Message{Topic: "bench/42/data", Payload: make([]byte, 64), QoS: 1}
	var r router
	for range window + depth {
		r.route(br, m, "pub")
	}
	full := br.Stats().Dropped.QueueFull
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r.route(br, m, "pub")
	}
	b.StopTimer()
	if n := br.Stats().Dropped.QueueFull - full; n != int64(b.N) {
		b.Fatalf("%d dropped, want %d", n, b.N)
	}
}

// BenchmarkEndToEnd publishes QoS 0 over loopback TCP from one client to
// one subscriber through a real listener.
// TERN_BENCH_ADDR=host:port runs it against another broker instead, for a
// side-by-side ratio on the same machine.
func BenchmarkEndToEnd(b *testing.B) {
	addr := os.Getenv("TERN_BENCH_ADDR")
	if addr == "" {
		addr = serveBench(b)
	}
	dial := func(id string) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		w, _ := (&packet.Connect{ProtocolLevel: 4, ClientID: id, CleanStart: true}).Append(nil, 4)
		c.Write(w)
		r := bufio.NewReaderSize(c, 64<<10)
		if _, err := packet.ReadPacket(r, 4, 0); err != nil {
			b.Fatal(err)
		}
		return c, r
	}
	sub, sr := dial("sub")
	w, _ := (&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "e2e"}}}).Append(nil, 4)
	sub.Write(w)
	packet.ReadPacket(sr, 4, 0)
	pub, _ := dial("pub")
	one, _ := (&packet.Publish{Topic: "e2e", Payload: make([]byte, 64)}).Append(nil, 4)
	batch := make([]byte, 0, 100*len(one))
	for range 100 {
		batch = append(batch, one...)
	}
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := packet.ReadPacket(sr, 4, 0); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for sent := 0; sent < b.N; sent += 100 {
		n := min(100, b.N-sent)
		if _, err := pub.Write(batch[:n*len(one)]); err != nil {
			b.Fatal(err)
		}
		if sent%10000 == 0 {
			// Pace a little so the subscriber's buffer limit does not drop
			// QoS 0 messages on a loaded machine.
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		b.Fatalf("subscriber did not receive all %d messages", b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkConnect measures one connection's life over loopback TCP:
// dial, CONNECT, CONNACK, DISCONNECT, close, one after another.
func BenchmarkConnect(b *testing.B) {
	addr := serveBench(b)
	connect, _ := (&packet.Connect{ProtocolLevel: 4, ClientID: "c", CleanStart: true}).Append(nil, 4)
	disconnect, _ := (&packet.Disconnect{}).Append(nil, 4)
	msg := append(connect, disconnect...)
	ack := make([]byte, 4)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Write(msg)
		if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
			b.Fatalf("CONNACK %x: %v", ack, err)
		}
		c.Close()
	}
}

// serveBench runs a broker with default options on a loopback port until
// the benchmark ends.
func serveBench(b *testing.B) (addr string) {
	br, err := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go br.Serve(ln)
	b.Cleanup(func() { br.Close() })
	return ln.Addr().String()
}
