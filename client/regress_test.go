package client

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/packet"
)

// acceptWithin accepts one connection within d, or returns nil.
func acceptWithin(t *testing.T, ln net.Listener, d time.Duration) net.Conn {
	t.Helper()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(d))
	defer ln.(*net.TCPListener).SetDeadline(time.Time{})
	c, err := ln.Accept()
	if err != nil {
		return nil
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A handler that publishes through the Session, when the connection is
// lost before its PUBACK, must not keep the Session from reconnecting.
func TestSessionHandlerPublishDuringReconnect(t *testing.T) {
	ln := listen(t)
	entered := make(chan struct{}, 1)
	hctx, hcancel := context.WithTimeout(context.Background(), 8*time.Second)
	sess := make(chan *Session, 1)
	s, err := NewSession(SessionOptions{
		Options: Options{Address: ln.Addr().String(), ClientID: "h", OnMessage: func(p *packet.Publish) {
			s := <-sess
			sess <- s
			entered <- struct{}{}
			s.Publish(hctx, &packet.Publish{Topic: "reply", QoS: 1, Payload: []byte("r")})
		}},
		Backoff: fastBackoff(),
	})
	if err != nil {
		t.Fatal(err)
	}
	sess <- s
	defer s.Close()
	defer hcancel() // runs first: unblocks the handler so that Close returns
	c1 := acceptScript(t, ln, packet.V311, &packet.Connack{})
	c1.send(&packet.Publish{Topic: "req", Payload: []byte("q")})
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}
	c1.expectPublish("r", 1, false)
	c1.conn.Close() // lost before the PUBACK
	if acceptWithin(t, ln, 3*time.Second) == nil {
		t.Fatal("no reconnection within 3s: the Session is stuck behind its own handler")
	}
}

// A Publish from OnConnect completes: the queue is sent while OnConnect
// runs.
func TestSessionPublishFromOnConnect(t *testing.T) {
	r := startRestartBroker(t)
	errc := make(chan error, 1)
	sess := make(chan *Session, 1)
	var once sync.Once
	s := newTestSession(t, SessionOptions{
		Options: Options{Address: r.addr, ClientID: "oc"},
		OnConnect: func(*packet.Connack) {
			once.Do(func() {
				s := <-sess
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				errc <- s.Publish(ctx, &packet.Publish{Topic: "status", Payload: []byte("online")})
			})
		},
	})
	sess <- s
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Publish from OnConnect: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnConnect not called")
	}
}

// Session.Close from OnConnectError returns, though the connection loop
// that would close s.done is the caller.
func TestSessionCloseFromOnConnectError(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close() // nothing listens
	sess := make(chan *Session, 1)
	closed := make(chan struct{})
	var once sync.Once
	s, err := NewSession(SessionOptions{
		Options: Options{Address: addr},
		Backoff: fastBackoff(),
		OnConnectError: func(error) {
			once.Do(func() {
				s := <-sess
				s.Close()
				close(closed)
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sess <- s
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Session.Close from OnConnectError did not return")
	}
}

// Subscribe after Disconnect fails cleanly.
func TestSessionSubscribeAfterDisconnect(t *testing.T) {
	r := startRestartBroker(t)
	s := newTestSession(t, SessionOptions{Options: Options{Address: r.addr, ClientID: "ad"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("Subscribe after Disconnect panicked: %v", v)
		}
	}()
	if _, err := s.Subscribe(ctx, packet.Subscription{Filter: "a"}); err == nil {
		t.Fatal("Subscribe after Disconnect succeeded")
	}
}

// Close releases a Request waiting for its response.
func TestRequestReleasedByClose(t *testing.T) {
	r := startRestartBroker(t)
	sent := make(chan struct{}, 1)
	c := connectTest(t, Options{Address: r.addr, Version: packet.V5, Trace: func(out bool, p packet.Packet) {
		if _, ok := p.(*packet.Puback); ok && !out { // the request's PUBACK: Publish returned
			select {
			case sent <- struct{}{}:
			default:
			}
		}
	}})
	errc := async(func() error {
		_, err := c.Request(context.Background(), "nobody", nil)
		return err
	})
	select {
	case <-sent:
	case <-time.After(5 * time.Second):
		t.Fatal("request not sent")
	}
	time.Sleep(100 * time.Millisecond) // let the reader hand the PUBACK to Publish
	c.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Request returned nil after Close")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Request still waiting 2s after Close")
	}
}

// A caller's own Topic Alias is refused while the client assigns aliases
// (it would share their numbers and send a later message to the wrong
// topic), and beyond the server's maximum [MQTT-3.3.2-9]; with
// NoTopicAliases one within the maximum goes out as given.
// Checks [MQTT-3.2.2-15].
func TestUserTopicAliases(t *testing.T) {
	cases := []struct {
		name   string
		opts   Options
		alias  uint16
		refuse bool
	}{
		{"with automatic aliases", Options{}, 1, true},
		{"above the server's maximum", Options{NoTopicAliases: true}, 3, true},
		{"within the maximum", Options{NoTopicAliases: true}, 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, packet.V5, &packet.Connack{Properties: packet.Properties{TopicAliasMaximum: ptr[uint16](2)}})
			c := srv.connect(tc.opts)
			err := c.Publish(context.Background(), &packet.Publish{Topic: "a/b", Properties: packet.Properties{TopicAlias: ptr(tc.alias)}})
			if tc.refuse {
				if err == nil {
					t.Fatalf("alias %d accepted", tc.alias)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p := expectType[*packet.Publish](t, srv.expect()); p.Properties.TopicAlias == nil || *p.Properties.TopicAlias != tc.alias {
				t.Fatalf("sent alias %v, want %d", p.Properties.TopicAlias, tc.alias)
			}
		})
	}
}

// [MQTT-3.2.2-15] the Topic Alias the writer adds (3 bytes) never takes
// a packet past the server's Maximum Packet Size.
func TestAliasWithinMaxPacketSize(t *testing.T) {
	const max = 64
	srv := newFakeServer(t, packet.V5, &packet.Connack{Properties: packet.Properties{
		TopicAliasMaximum: ptr[uint16](5), MaximumPacketSize: ptr[uint32](max)}})
	c := srv.connect(Options{})
	p := &packet.Publish{Topic: "abcd/efgh"}
	p.Payload = make([]byte, max-p.Size(packet.V5))
	if p.Size(packet.V5) != max {
		t.Fatalf("size %d", p.Size(packet.V5))
	}
	for range 2 {
		if err := c.Publish(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		got := expectType[*packet.Publish](t, srv.expect())
		if n := got.Size(packet.V5); n > max {
			t.Fatalf("PUBLISH %d is %d bytes, server maximum %d", i, n, max)
		}
	}
}

// A caller that reuses p after Session.Publish returned (as the doc
// allows) does not change the queued message.
func TestSessionPublishCopiesProperties(t *testing.T) {
	ln := listen(t)
	s, err := NewSession(SessionOptions{
		Options: Options{Address: ln.Addr().String(), Version: packet.V5, ClientID: "pa"},
		Backoff: fastBackoff(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Publish returns at once; the message stays queued
	p := &packet.Publish{Topic: "t", QoS: 1, Payload: []byte("x")}
	p.Properties.CorrelationData = []byte("corr")
	p.Properties.User = []packet.UserProperty{{Key: "k", Value: "v"}}
	s.Publish(ctx, p)
	p.Properties.CorrelationData[0] = 'X'
	p.Properties.User[0].Value = "changed"
	c1 := acceptScript(t, ln, packet.V5, &packet.Connack{})
	got := c1.expectPublish("x", 1, false)
	if !bytes.Equal(got.Properties.CorrelationData, []byte("corr")) || got.Properties.User[0].Value != "v" {
		t.Fatalf("sent correlation %q, user %+v: the caller's later changes", got.Properties.CorrelationData, got.Properties.User)
	}
}

// [MQTT-3.2.2-4] a client that started clean has no session state and
// must close the connection when the CONNACK says Session Present.
func TestSessionPresentAfterCleanStart(t *testing.T) {
	for _, v := range []byte{packet.V311, packet.V5} {
		srv := newFakeServer(t, v, &packet.Connack{SessionPresent: true})
		o := Options{Address: srv.addr(), Version: v, ClientID: "sp", CleanStart: true}
		c, err := Connect(context.Background(), o)
		if err == nil {
			c.Close()
			t.Fatalf("version %d: Connect accepted Session Present 1 after Clean Start 1", v)
		}
	}
}

// Session.Close from a handler returns.
func TestSessionCloseFromHandler(t *testing.T) {
	r := startRestartBroker(t)
	sess := make(chan *Session, 1)
	closed := make(chan struct{})
	s, err := NewSession(SessionOptions{Options: Options{Address: r.addr, ClientID: "ch"}, Backoff: fastBackoff()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	sess <- s
	_, err = s.SubscribeFunc(ctx, func(*packet.Publish) {
		(<-sess).Close()
		close(closed)
	}, packet.Subscription{Filter: "x"})
	if err != nil {
		t.Fatal(err)
	}
	// The handler may close the Session before the PUBACK arrives.
	if err := s.Publish(context.Background(), &packet.Publish{Topic: "x", QoS: 1}); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Session.Close from a handler did not return")
	}
}
