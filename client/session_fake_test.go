package client

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternmq/tern/packet"
)

// scriptConn is one accepted connection of a scripted server, for tests
// that follow a Session over several connections.
type scriptConn struct {
	t       *testing.T
	conn    net.Conn
	br      *bufio.Reader
	version byte
	connect *packet.Connect
}

// acceptScript accepts the next connection, reads its CONNECT and answers
// with connack.
func acceptScript(t *testing.T, ln net.Listener, version byte, connack *packet.Connack) *scriptConn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	var r res
	select {
	case r = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no connection")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	sc := &scriptConn{t: t, conn: r.c, br: bufio.NewReader(r.c), version: version}
	t.Cleanup(func() { r.c.Close() })
	sc.connect = expectType[*packet.Connect](t, sc.expect())
	sc.send(connack)
	return sc
}

func (sc *scriptConn) expect() packet.Packet {
	sc.t.Helper()
	sc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	pk, err := packet.ReadPacket(sc.br, sc.version, 0)
	if err != nil {
		sc.t.Fatalf("reading from client: %v", err)
	}
	return pk
}

func (sc *scriptConn) send(ps ...packet.Packet) {
	sc.t.Helper()
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = p.Append(b, sc.version); err != nil {
			sc.t.Fatal(err)
		}
	}
	if _, err := sc.conn.Write(b); err != nil {
		sc.t.Fatal(err)
	}
}

// expectPublish reads a PUBLISH and checks its payload, QoS and DUP flag.
func (sc *scriptConn) expectPublish(payload string, qos byte, dup bool) *packet.Publish {
	sc.t.Helper()
	p := expectType[*packet.Publish](sc.t, sc.expect())
	if string(p.Payload) != payload || p.QoS != qos || p.Dup != dup {
		sc.t.Fatalf("got PUBLISH %q QoS %d dup %v, want %q QoS %d dup %v", p.Payload, p.QoS, p.Dup, payload, qos, dup)
	}
	return p
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func fastBackoff() Backoff { return Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond} }

// The wire-level resume rules, against a scripted server: the same packet
// identifiers with DUP, PUBREL continued, in order, and a QoS 2 message the
// server sends again after a reconnect not delivered twice.
// Checks [MQTT-2.3.1-3] [MQTT-4.6.0-1].
func TestSessionResumeOnTheWire(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			ln := listen(t)
			got := make(chan string, 10)
			s, err := NewSession(SessionOptions{
				Options: Options{Address: ln.Addr().String(), Version: tv.v, ClientID: "resume",
					OnMessage: func(p *packet.Publish) { got <- string(p.Payload) }},
				Backoff: fastBackoff(),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()

			c1 := acceptScript(t, ln, tv.v, &packet.Connack{})
			if c1.connect.CleanStart || c1.connect.ClientID != "resume" {
				t.Fatalf("first CONNECT %+v", c1.connect)
			}
			r1 := async(func() error { return s.Publish(ctx, &packet.Publish{Topic: "t", QoS: 1, Payload: []byte("a")}) })
			pa := c1.expectPublish("a", 1, false)
			r2 := async(func() error { return s.Publish(ctx, &packet.Publish{Topic: "t", QoS: 2, Payload: []byte("b")}) })
			pb := c1.expectPublish("b", 2, false)
			c1.send(&packet.Pubrec{PacketID: pb.PacketID})
			expectType[*packet.Pubrel](t, c1.expect())
			c1.conn.Close()

			c2 := acceptScript(t, ln, tv.v, &packet.Connack{SessionPresent: true})
			if c2.connect.CleanStart || c2.connect.ClientID != "resume" {
				t.Fatalf("second CONNECT %+v", c2.connect)
			}
			// [MQTT-4.4.0-1] the same ids, DUP set, in the original order.
			if p := c2.expectPublish("a", 1, true); p.PacketID != pa.PacketID {
				t.Fatalf("resent with id %d, was %d", p.PacketID, pa.PacketID)
			}
			if p := expectType[*packet.Pubrel](t, c2.expect()); p.PacketID != pb.PacketID {
				t.Fatalf("PUBREL id %d, want %d", p.PacketID, pb.PacketID)
			}
			c2.send(&packet.Publish{Topic: "in", QoS: 2, PacketID: 7, Payload: []byte("once")})
			if p := expectType[*packet.Pubrec](t, c2.expect()); p.PacketID != 7 {
				t.Fatalf("PUBREC id %d", p.PacketID)
			}
			c2.conn.Close()

			c3 := acceptScript(t, ln, tv.v, &packet.Connack{SessionPresent: true})
			c3.expectPublish("a", 1, true)
			expectType[*packet.Pubrel](t, c3.expect())
			// The server lost our PUBREC and sends the message again.
			c3.send(&packet.Publish{Topic: "in", QoS: 2, PacketID: 7, Dup: true, Payload: []byte("once")})
			if p := expectType[*packet.Pubrec](t, c3.expect()); p.PacketID != 7 {
				t.Fatalf("PUBREC id %d", p.PacketID)
			}
			c3.send(&packet.Pubrel{PacketID: 7}, &packet.Puback{PacketID: pa.PacketID}, &packet.Pubcomp{PacketID: pb.PacketID})
			expectType[*packet.Pubcomp](t, c3.expect())
			if err := recvErr(t, r1); err != nil {
				t.Fatal(err)
			}
			if err := recvErr(t, r2); err != nil {
				t.Fatal(err)
			}
			if m := <-got; m != "once" {
				t.Fatalf("got %q", m)
			}
			select {
			case m := <-got:
				t.Fatalf("delivered again: %q", m)
			default:
			}
		})
	}
}

// When the server has lost the session, the Session subscribes again and
// sends unfinished messages as new; a QoS 2 message past PUBREC counts as
// delivered.
// Checks [MQTT-3.2.2-5].
func TestSessionServerLostSession(t *testing.T) {
	for _, tv := range versions[1:] { // 3.1 has no Session Present
		t.Run(tv.name, func(t *testing.T) {
			ln := listen(t)
			s, err := NewSession(SessionOptions{
				Options: Options{Address: ln.Addr().String(), Version: tv.v, ClientID: "lost"},
				Backoff: fastBackoff(),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			c1 := acceptScript(t, ln, tv.v, &packet.Connack{SessionPresent: true})
			rs := async(func() error {
				_, err := s.Subscribe(ctx, packet.Subscription{Filter: "x/#", QoS: 1})
				return err
			})
			sub := expectType[*packet.Subscribe](t, c1.expect())
			c1.send(&packet.Suback{PacketID: sub.PacketID, ReasonCodes: []packet.ReasonCode{1}})
			if err := recvErr(t, rs); err != nil {
				t.Fatal(err)
			}
			r1 := async(func() error {
				return s.Publish(ctx, &packet.Publish{Topic: "t", QoS: 2, Payload: []byte("past-pubrec")})
			})
			p1 := c1.expectPublish("past-pubrec", 2, false)
			c1.send(&packet.Pubrec{PacketID: p1.PacketID})
			expectType[*packet.Pubrel](t, c1.expect())
			r2 := async(func() error { return s.Publish(ctx, &packet.Publish{Topic: "t", QoS: 1, Payload: []byte("unacked")}) })
			c1.expectPublish("unacked", 1, false)
			c1.conn.Close()

			c2 := acceptScript(t, ln, tv.v, &packet.Connack{SessionPresent: false})
			sub = expectType[*packet.Subscribe](t, c2.expect())
			if len(sub.Subscriptions) != 1 || sub.Subscriptions[0].Filter != "x/#" {
				t.Fatalf("resubscribed %+v", sub.Subscriptions)
			}
			c2.send(&packet.Suback{PacketID: sub.PacketID, ReasonCodes: []packet.ReasonCode{1}})
			if err := recvErr(t, r1); err != nil {
				t.Fatalf("QoS 2 past PUBREC: %v", err)
			}
			p := c2.expectPublish("unacked", 1, false)
			c2.send(&packet.Puback{PacketID: p.PacketID})
			if err := recvErr(t, r2); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSessionQueueFull(t *testing.T) {
	ln := listen(t)
	ln.Close() // nothing listens: the Session stays offline
	s, err := NewSession(SessionOptions{Options: Options{Address: ln.Addr().String()}, MaxQueued: 2, Backoff: fastBackoff()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 3 {
		err := s.Publish(done, &packet.Publish{Topic: "t", QoS: 1})
		want := context.Canceled
		if i == 2 {
			want = ErrQueueFull
		}
		if !errors.Is(err, want) {
			t.Fatalf("publish %d: %v, want %v", i, err, want)
		}
	}
}

func TestSessionPermanentRefusal(t *testing.T) {
	ln := listen(t)
	s, err := NewSession(SessionOptions{Options: Options{Address: ln.Addr().String(), Version: packet.V5}, Backoff: fastBackoff()})
	if err != nil {
		t.Fatal(err)
	}
	acceptScript(t, ln, packet.V5, &packet.Connack{ReasonCode: packet.NotAuthorized})
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("session still running")
	}
	if !errors.Is(s.Err(), packet.NotAuthorized) {
		t.Fatalf("Err = %v", s.Err())
	}
	if err := s.Publish(context.Background(), &packet.Publish{Topic: "t"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after end: %v", err)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for _, tc := range []struct {
		attempt  int
		lo, high time.Duration
	}{{0, 50 * time.Millisecond, 100 * time.Millisecond}, {1, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 400 * time.Millisecond, 800 * time.Millisecond}, {10, 500 * time.Millisecond, time.Second}, {1000, 500 * time.Millisecond, time.Second}} {
		for range 50 {
			if d := b.Delay(tc.attempt); d < tc.lo || d > tc.high {
				t.Fatalf("Delay(%d) = %v, want %v..%v", tc.attempt, d, tc.lo, tc.high)
			}
		}
	}
}

// A server that accepts the client and drops it at once gets growing
// waits, as for failed attempts, not a reconnection every Backoff.Min.
func TestSessionBackoffGrowsWhenDroppedAtOnce(t *testing.T) {
	ln := listen(t)
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				if _, err := packet.ReadPacket(bufio.NewReader(c), 0, 0); err == nil {
					b, _ := (&packet.Connack{}).Append(nil, packet.V311)
					c.Write(b)
				}
			}()
		}
	}()
	s, err := NewSession(SessionOptions{Options: Options{Address: ln.Addr().String(), ClientID: "flap"},
		Backoff: Backoff{Min: 10 * time.Millisecond, Max: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	s.Close()
	// Waits of 5-10, 10-20, 20-40, ... ms: at most 8 connections in a
	// second; a constant 10 ms would allow about a hundred.
	if n := conns.Load(); n > 12 {
		t.Fatalf("%d connections in 1 s", n)
	}
}
