package client

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/packet"
)

func TestConnectSendsOptions(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			// Clean start: the server has no session for us
			// (TestSessionPresentAfterCleanStart refuses one).
			s := newFakeServer(t, tv.v, &packet.Connack{})
			c := s.connect(Options{
				ClientID:    "id-1",
				KeepAlive:   90 * time.Second,
				Username:    "user",
				UsernameSet: true,
				Password:    []byte("pw"),
				PasswordSet: true,
				Will:        &packet.Will{Topic: "will/t", Payload: []byte("gone"), QoS: 1, Retain: true},
			})
			cp := s.connectPk
			if cp == nil {
				t.Fatal("no CONNECT")
			}
			if cp.ProtocolLevel != tv.v || cp.ClientID != "id-1" || cp.KeepAlive != 90 || !cp.CleanStart {
				t.Errorf("CONNECT = %+v", cp)
			}
			if !cp.UsernameFlag || cp.Username != "user" || !cp.PasswordFlag || string(cp.Password) != "pw" {
				t.Errorf("CONNECT credentials = %+v", cp)
			}
			if w := cp.Will; w == nil || w.Topic != "will/t" || string(w.Payload) != "gone" || w.QoS != 1 || !w.Retain {
				t.Errorf("CONNECT will = %+v", cp.Will)
			}
			if c.Connack().SessionPresent {
				t.Error("SessionPresent = true")
			}
			if c.Err() != nil {
				t.Errorf("Err = %v", c.Err())
			}
		})
	}
}

func TestConnectKeepAliveDefaults(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want uint16
	}{{0, 60}, {-1, 0}, {1500 * time.Millisecond, 2}, {time.Second, 1}} {
		o := Options{KeepAlive: tc.in, Address: "x"}
		if err := o.normalize(); err != nil {
			t.Fatal(err)
		}
		if got := o.keepAliveSeconds(); got != tc.want {
			t.Errorf("KeepAlive %v: sent %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestConnectRefused(t *testing.T) {
	for _, tc := range []struct {
		version byte
		code    packet.ReasonCode
		is      []packet.ReasonCode
		text    string
	}{
		{packet.V311, packet.RefusedNotAuthorized, []packet.ReasonCode{packet.RefusedNotAuthorized, packet.NotAuthorized}, "connection refused: not authorized"},
		{packet.V31, packet.RefusedBadUsernamePassword, []packet.ReasonCode{packet.BadUsernameOrPassword}, "connection refused: bad user name or password"},
		{packet.V311, packet.RefusedIdentifierRejected, []packet.ReasonCode{packet.ClientIDNotValid}, "connection refused: identifier rejected"},
		{packet.V5, packet.NotAuthorized, []packet.ReasonCode{packet.NotAuthorized}, "connection refused: not authorized"},
		{packet.V5, packet.Banned, []packet.ReasonCode{packet.Banned}, "connection refused: banned"},
	} {
		s := newFakeServer(t, tc.version, &packet.Connack{ReasonCode: tc.code})
		_, err := Connect(context.Background(), Options{Address: s.addr(), Version: tc.version, ClientID: "x", CleanStart: true})
		var ce *ConnectError
		if !errors.As(err, &ce) {
			t.Fatalf("v%d code %d: err = %v, want *ConnectError", tc.version, tc.code, err)
		}
		for _, c := range tc.is {
			if !errors.Is(err, c) {
				t.Errorf("v%d: errors.Is(%v, 0x%02X) = false", tc.version, err, byte(c))
			}
		}
		if err.Error() != tc.text {
			t.Errorf("v%d: error %q, want %q", tc.version, err, tc.text)
		}
		s.expectEOF()
	}
}

func TestConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			defer conn.Close()
			buf := make([]byte, 100)
			for {
				if _, err := conn.Read(buf); err != nil {
					return
				}
			}
		}
	}()
	start := time.Now()
	_, err = Connect(context.Background(), Options{Address: ln.Addr().String(), ConnectTimeout: 200 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = Connect(ctx, Options{Address: ln.Addr().String()})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want canceled", err)
	}
}

// Checks [MQTT-3.1.3-7].
func TestConnectInvalidOptions(t *testing.T) {
	for _, o := range []Options{
		{},
		{Address: "x", Version: 6},
		{Address: "x", PasswordSet: true},
		{Address: "x", KeepAlive: 70000 * time.Second},
	} {
		if _, err := Connect(context.Background(), o); err == nil {
			t.Errorf("Connect(%+v) succeeded", o)
		}
	}
}

func TestDialInjected(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			cc, sc := net.Pipe()
			defer sc.Close()
			s := &pipeServer{t: t, conn: sc, version: tv.v}
			go s.run()
			c, err := Connect(context.Background(), Options{
				Dial:       func(context.Context) (net.Conn, error) { return cc, nil },
				Version:    tv.v,
				ClientID:   "pipe",
				CleanStart: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Publish(context.Background(), &packet.Publish{Topic: "a", QoS: 1, Payload: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			if err := c.Disconnect(); err != nil {
				t.Fatal(err)
			}
			waitDone(t, c)
		})
	}
}

// pipeServer acknowledges CONNECT and QoS 1 PUBLISH over a net.Pipe.
type pipeServer struct {
	t       *testing.T
	conn    net.Conn
	version byte
}

func (s *pipeServer) run() {
	br := bufio.NewReader(s.conn)
	for {
		pk, err := packet.ReadPacket(br, 0, 0)
		if err != nil {
			return
		}
		var out packet.Packet
		switch p := pk.(type) {
		case *packet.Connect:
			out = &packet.Connack{}
		case *packet.Publish:
			out = &packet.Puback{PacketID: p.PacketID}
		case *packet.Disconnect:
			s.conn.Close()
			return
		}
		if out != nil {
			b, _ := out.Append(nil, s.version)
			s.conn.Write(b)
		}
	}
}

func TestPublishQoS0(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			s := newFakeServer(t, tv.v, nil)
			c := s.connect(Options{})
			p := &packet.Publish{Topic: "a/b", Payload: []byte("hello"), Retain: true}
			if err := c.Publish(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			got := expectType[*packet.Publish](t, s.expect())
			if got.Topic != "a/b" || string(got.Payload) != "hello" || !got.Retain || got.QoS != 0 {
				t.Errorf("PUBLISH = %+v", got)
			}
		})
	}
}

func TestPublishQoS1(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			s := newFakeServer(t, tv.v, nil)
			c := s.connect(Options{})
			p := &packet.Publish{Topic: "a", Payload: []byte("one"), QoS: 1}
			errc := async(func() error { return c.Publish(context.Background(), p) })
			got := expectType[*packet.Publish](t, s.expect())
			if got.QoS != 1 || got.PacketID == 0 || got.Dup {
				t.Fatalf("PUBLISH = %+v", got)
			}
			if p.PacketID != 0 {
				t.Error("Publish modified its argument")
			}
			select {
			case err := <-errc:
				t.Fatalf("Publish returned %v before PUBACK", err)
			case <-time.After(50 * time.Millisecond):
			}
			s.send(&packet.Puback{PacketID: got.PacketID})
			if err := recvErr(t, errc); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPublishQoS2(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			s := newFakeServer(t, tv.v, nil)
			c := s.connect(Options{})
			errc := async(func() error {
				return c.Publish(context.Background(), &packet.Publish{Topic: "a", Payload: []byte("two"), QoS: 2})
			})
			got := expectType[*packet.Publish](t, s.expect())
			if got.QoS != 2 || got.PacketID == 0 {
				t.Fatalf("PUBLISH = %+v", got)
			}
			s.send(&packet.Pubrec{PacketID: got.PacketID})
			rel := expectType[*packet.Pubrel](t, s.expect())
			if rel.PacketID != got.PacketID {
				t.Fatalf("PUBREL id %d, want %d", rel.PacketID, got.PacketID)
			}
			select {
			case err := <-errc:
				t.Fatalf("Publish returned %v before PUBCOMP", err)
			case <-time.After(50 * time.Millisecond):
			}
			s.send(&packet.Pubcomp{PacketID: got.PacketID})
			if err := recvErr(t, errc); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Checks [MQTT-3.4.2-1].
func TestPublishFailureCodesV5(t *testing.T) {
	for _, tc := range []struct {
		qos  byte
		ack  func(id uint16) packet.Packet
		code packet.ReasonCode
	}{
		{1, func(id uint16) packet.Packet {
			return &packet.Puback{PacketID: id, ReasonCode: packet.NotAuthorized, Properties: packet.Properties{ReasonString: "acl"}}
		}, packet.NotAuthorized},
		{2, func(id uint16) packet.Packet { return &packet.Pubrec{PacketID: id, ReasonCode: packet.QuotaExceeded} }, packet.QuotaExceeded},
		{1, func(id uint16) packet.Packet {
			return &packet.Puback{PacketID: id, ReasonCode: packet.NoMatchingSubscribers}
		}, 0},
	} {
		s := newFakeServer(t, packet.V5, nil)
		c := s.connect(Options{})
		errc := async(func() error { return c.Publish(context.Background(), &packet.Publish{Topic: "a", QoS: tc.qos}) })
		got := expectType[*packet.Publish](t, s.expect())
		s.send(tc.ack(got.PacketID))
		err := recvErr(t, errc)
		if tc.code == 0 {
			if err != nil {
				t.Errorf("non-failure code: err = %v", err)
			}
			continue
		}
		var re *ReasonError
		if !errors.As(err, &re) || !errors.Is(err, tc.code) {
			t.Errorf("err = %v, want ReasonError %v", err, tc.code)
		}
		// No PUBREL after a failed PUBREC; the identifier is free again.
		s.expectNone(50 * time.Millisecond)
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n != 0 || len(c.quota) != 0 {
			t.Errorf("after failure: %d pending, %d quota", n, len(c.quota))
		}
	}
}

// Checks [MQTT-3.2.2-11] [MQTT-3.2.2-14] [MQTT-3.2.2-15].
func TestPublishChecksServerLimitsV5(t *testing.T) {
	s := newFakeServer(t, packet.V5, &packet.Connack{Properties: packet.Properties{
		MaximumQoS: ptr[byte](1), RetainAvailable: ptr[byte](0), MaximumPacketSize: ptr[uint32](100),
	}})
	c := s.connect(Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		p    *packet.Publish
		want error
	}{
		{&packet.Publish{Topic: "a", QoS: 2}, packet.QoSNotSupported},
		{&packet.Publish{Topic: "a", Retain: true}, packet.RetainNotSupported},
		{&packet.Publish{Topic: "a", Payload: make([]byte, 100)}, packet.PacketTooLarge},
		{&packet.Publish{Topic: "a/#"}, nil},
		{&packet.Publish{Topic: ""}, nil},
		{&packet.Publish{Topic: "a", QoS: 3}, packet.MalformedPacket},
	} {
		err := c.Publish(ctx, tc.p)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("Publish(%+v) = %v, want %v", tc.p, err, tc.want)
		}
	}
	s.expectNone(50 * time.Millisecond)
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
}

func TestPublishReceiveMaximumV5(t *testing.T) {
	s := newFakeServer(t, packet.V5, &packet.Connack{Properties: packet.Properties{ReceiveMaximum: ptr[uint16](1)}})
	c := s.connect(Options{})
	e1 := async(func() error { return c.Publish(context.Background(), &packet.Publish{Topic: "a", QoS: 1}) })
	p1 := expectType[*packet.Publish](t, s.expect())
	e2 := async(func() error { return c.Publish(context.Background(), &packet.Publish{Topic: "b", QoS: 2}) })
	// [MQTT-3.3.4-7] the second waits for the first to be acknowledged.
	s.expectNone(100 * time.Millisecond)
	s.send(&packet.Puback{PacketID: p1.PacketID})
	if err := recvErr(t, e1); err != nil {
		t.Fatal(err)
	}
	p2 := expectType[*packet.Publish](t, s.expect())
	if p2.Topic != "b" {
		t.Fatalf("got %+v", p2)
	}
	s.send(&packet.Pubrec{PacketID: p2.PacketID})
	expectType[*packet.Pubrel](t, s.expect())
	s.send(&packet.Pubcomp{PacketID: p2.PacketID})
	if err := recvErr(t, e2); err != nil {
		t.Fatal(err)
	}
}

func TestPublishContextCancelled(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	c := s.connect(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := async(func() error { return c.Publish(ctx, &packet.Publish{Topic: "a", QoS: 2}) })
	p := expectType[*packet.Publish](t, s.expect())
	cancel()
	if err := recvErr(t, errc); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// The flow still completes: PUBREC is answered by the reader.
	s.send(&packet.Pubrec{PacketID: p.PacketID})
	expectType[*packet.Pubrel](t, s.expect())
	s.send(&packet.Pubcomp{PacketID: p.PacketID})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("flow never completed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Checks [MQTT-2.2.1-3] [MQTT-2.3.1-2].
func TestPacketIDsSkipInUse(t *testing.T) {
	c := newClient(nil, Options{Version: packet.V311})
	c.nextID = 65533
	for _, id := range []uint16{65535, 1, 3} {
		c.pending[id] = &flow{}
	}
	var got []uint16
	for range 4 {
		id, err := c.register(&flow{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	want := []uint16{65534, 2, 4, 5}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ids %v, want %v", got, want)
		}
	}
	for id := 1; id <= 65535; id++ {
		c.pending[uint16(id)] = &flow{}
	}
	if _, err := c.register(&flow{}, 0); !errors.Is(err, ErrNoPacketID) {
		t.Errorf("all in use: err = %v", err)
	}
}

func TestSubscribeUnsubscribe(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			s := newFakeServer(t, tv.v, nil)
			c := s.connect(Options{})
			type subResult struct {
				sa  *packet.Suback
				err error
			}
			ch := make(chan subResult, 1)
			go func() {
				sa, err := c.Subscribe(context.Background(),
					packet.Subscription{Filter: "a/+", QoS: 1}, packet.Subscription{Filter: "b/#", QoS: 2})
				ch <- subResult{sa, err}
			}()
			sub := expectType[*packet.Subscribe](t, s.expect())
			if sub.PacketID == 0 || len(sub.Subscriptions) != 2 || sub.Subscriptions[0].Filter != "a/+" ||
				sub.Subscriptions[1].QoS != 2 {
				t.Fatalf("SUBSCRIBE = %+v", sub)
			}
			fail := packet.SubackFailure
			if tv.v == packet.V5 {
				fail = packet.NotAuthorized
			}
			s.send(&packet.Suback{PacketID: sub.PacketID, ReasonCodes: []packet.ReasonCode{packet.GrantedQoS1, fail}})
			r := <-ch
			var se *SubscribeError
			if !errors.As(r.err, &se) || len(se.Filters) != 1 || se.Filters[0] != "b/#" ||
				len(r.sa.ReasonCodes) != 2 || r.sa.ReasonCodes[1] != fail {
				t.Fatalf("Subscribe = %+v, %v", r.sa, r.err)
			}

			errc := make(chan error, 1)
			var ua *packet.Unsuback
			go func() {
				var err error
				ua, err = c.Unsubscribe(context.Background(), "a/+")
				errc <- err
			}()
			uns := expectType[*packet.Unsubscribe](t, s.expect())
			if len(uns.Filters) != 1 || uns.Filters[0] != "a/+" {
				t.Fatalf("UNSUBSCRIBE = %+v", uns)
			}
			resp := &packet.Unsuback{PacketID: uns.PacketID}
			if tv.v == packet.V5 {
				resp.ReasonCodes = []packet.ReasonCode{packet.NoSubscriptionExisted}
			}
			s.send(resp)
			if err := recvErr(t, errc); err != nil {
				t.Fatal(err)
			}
			if ua.PacketID != uns.PacketID {
				t.Errorf("UNSUBACK = %+v", ua)
			}
		})
	}
}

func TestSubscribeInvalid(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	c := s.connect(Options{})
	ctx := context.Background()
	if _, err := c.Subscribe(ctx); err == nil {
		t.Error("no filters accepted")
	}
	if _, err := c.Subscribe(ctx, packet.Subscription{Filter: "a/#/b"}); err == nil {
		t.Error("invalid filter accepted")
	}
	if _, err := c.Unsubscribe(ctx, ""); err == nil {
		t.Error("empty filter accepted")
	}
	s.expectNone(50 * time.Millisecond)
}

func TestSubackCountMismatch(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	c := s.connect(Options{})
	errc := async(func() error {
		_, err := c.Subscribe(context.Background(), packet.Subscription{Filter: "a"}, packet.Subscription{Filter: "b"})
		return err
	})
	sub := expectType[*packet.Subscribe](t, s.expect())
	s.send(&packet.Suback{PacketID: sub.PacketID, ReasonCodes: []packet.ReasonCode{0}})
	if err := recvErr(t, errc); !errors.Is(err, packet.ProtocolError) {
		t.Errorf("err = %v", err)
	}
}

func TestInboundQoS0And1(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			s := newFakeServer(t, tv.v, nil)
			got := make(chan *packet.Publish, 10)
			release := make(chan struct{})
			c := s.connect(Options{OnMessage: func(p *packet.Publish) {
				got <- p
				if p.QoS == 1 {
					<-release
				}
			}})
			_ = c
			s.send(&packet.Publish{Topic: "t/0", Payload: []byte("zero")})
			s.send(&packet.Publish{Topic: "t/1", Payload: []byte("one"), QoS: 1, PacketID: 7})
			for _, want := range []string{"zero", "one"} {
				select {
				case p := <-got:
					if string(p.Payload) != want {
						t.Fatalf("got %q, want %q", p.Payload, want)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("no message")
				}
			}
			// [MQTT-4.3.2-2] PUBACK only once the handler returned.
			s.expectNone(50 * time.Millisecond)
			close(release)
			ack := expectType[*packet.Puback](t, s.expect())
			if ack.PacketID != 7 {
				t.Errorf("PUBACK id %d", ack.PacketID)
			}
		})
	}
}

func TestInboundQoS2ExactlyOnce(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			s := newFakeServer(t, tv.v, nil)
			var mu sync.Mutex
			var n int
			c := s.connect(Options{OnMessage: func(p *packet.Publish) {
				mu.Lock()
				n++
				mu.Unlock()
			}})
			p := &packet.Publish{Topic: "t", Payload: []byte("x"), QoS: 2, PacketID: 9}
			s.send(p)
			rec := expectType[*packet.Pubrec](t, s.expect())
			if rec.PacketID != 9 {
				t.Fatalf("PUBREC id %d", rec.PacketID)
			}
			// A retransmission before PUBREL: PUBREC again, no second delivery.
			dup := *p
			dup.Dup = true
			s.send(&dup)
			expectType[*packet.Pubrec](t, s.expect())
			s.send(&packet.Pubrel{PacketID: 9})
			comp := expectType[*packet.Pubcomp](t, s.expect())
			if comp.PacketID != 9 || comp.ReasonCode != packet.Success {
				t.Errorf("PUBCOMP = %+v", comp)
			}
			// PUBREL for an unknown identifier still gets PUBCOMP.
			s.send(&packet.Pubrel{PacketID: 10})
			comp = expectType[*packet.Pubcomp](t, s.expect())
			want := packet.Success
			if tv.v == packet.V5 {
				want = packet.PacketIDNotFound
			}
			if comp.PacketID != 10 || comp.ReasonCode != want {
				t.Errorf("PUBCOMP = %+v", comp)
			}
			// After PUBCOMP the identifier is new again.
			s.send(p)
			expectType[*packet.Pubrec](t, s.expect())
			mu.Lock()
			got := n
			mu.Unlock()
			if got != 2 {
				t.Errorf("delivered %d times, want 2", got)
			}
			if c.Err() != nil {
				t.Error(c.Err())
			}
		})
	}
}

// Checks [MQTT-4.5.0-2].
func TestInboundWithoutHandler(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	s.connect(Options{})
	s.send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 3})
	if ack := expectType[*packet.Puback](t, s.expect()); ack.PacketID != 3 {
		t.Errorf("PUBACK = %+v", ack)
	}
	s.send(&packet.Publish{Topic: "t", QoS: 2, PacketID: 4})
	if rec := expectType[*packet.Pubrec](t, s.expect()); rec.PacketID != 4 {
		t.Errorf("PUBREC = %+v", rec)
	}
}

func TestInboundOrder(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	const n = 200
	got := make(chan string, n)
	s.connect(Options{OnMessage: func(p *packet.Publish) { got <- string(p.Payload) }})
	for i := range n {
		s.send(&packet.Publish{Topic: "t", QoS: byte(i % 3), PacketID: uint16(i + 1), Payload: []byte{byte(i)}})
	}
	for i := range n {
		if p := <-got; p != string([]byte{byte(i)}) {
			t.Fatalf("message %d: got %v", i, []byte(p))
		}
	}
	// Acknowledgements in order [MQTT-4.6.0-2].
	var last uint16
	for i := range n {
		if i%3 == 0 {
			continue
		}
		pk := s.expect()
		var id uint16
		switch p := pk.(type) {
		case *packet.Puback:
			id = p.PacketID
		case *packet.Pubrec:
			id = p.PacketID
		default:
			t.Fatalf("got %s", pk.Type())
		}
		if id <= last {
			t.Fatalf("ack %d after %d", id, last)
		}
		last = id
	}
}

func TestHandlerMayPublish(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	var c *Client
	errc := make(chan error, 1)
	ready := make(chan struct{})
	c = s.connect(Options{OnMessage: func(p *packet.Publish) {
		<-ready
		errc <- c.Publish(context.Background(), &packet.Publish{Topic: "reply", QoS: 1})
	}})
	close(ready)
	s.send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 1})
	pub := expectType[*packet.Publish](t, s.expect())
	s.send(&packet.Puback{PacketID: pub.PacketID})
	if err := recvErr(t, errc); err != nil {
		t.Fatal(err)
	}
	expectType[*packet.Puback](t, s.expect())
}

// Checks [MQTT-3.3.2-10].
func TestTopicAliasV5(t *testing.T) {
	s := newFakeServer(t, packet.V5, nil)
	got := make(chan string, 2)
	s.connect(Options{
		Properties: packet.Properties{TopicAliasMaximum: ptr[uint16](5)},
		OnMessage:  func(p *packet.Publish) { got <- p.Topic },
	})
	s.send(&packet.Publish{Topic: "long/topic", Properties: packet.Properties{TopicAlias: ptr[uint16](2)}})
	s.send(&packet.Publish{Topic: "", Properties: packet.Properties{TopicAlias: ptr[uint16](2)}})
	for range 2 {
		if tp := <-got; tp != "long/topic" {
			t.Errorf("topic %q", tp)
		}
	}
	// An alias above our maximum ends the connection with DISCONNECT 0x94.
	s.send(&packet.Publish{Topic: "x", Properties: packet.Properties{TopicAlias: ptr[uint16](6)}})
	d := expectType[*packet.Disconnect](t, s.expect())
	if d.ReasonCode != packet.TopicAliasInvalid {
		t.Errorf("DISCONNECT %v", d.ReasonCode)
	}
	s.expectEOF()
}

// Checks [MQTT-3.1.2-20] [MQTT-3.1.2-23].
func TestKeepAlive(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			t.Parallel()
			s := newFakeServer(t, tv.v, nil)
			c := s.connect(Options{KeepAlive: time.Second})
			start := time.Now()
			expectType[*packet.Pingreq](t, s.expect())
			if d := time.Since(start); d < 800*time.Millisecond {
				t.Errorf("PINGREQ after %v", d)
			}
			s.send(&packet.Pingresp{})
			expectType[*packet.Pingreq](t, s.expect())
			// No PINGRESP: the client gives up one interval later.
			s.expectEOF()
			waitDone(t, c)
			if !errors.Is(c.Err(), ErrKeepAliveTimeout) {
				t.Errorf("Err = %v", c.Err())
			}
		})
	}
}

func TestKeepAliveIdleOnly(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t, packet.V311, nil)
	c := s.connect(Options{KeepAlive: time.Second})
	// Traffic both ways every 300ms: no PINGREQ needed.
	for range 6 {
		time.Sleep(300 * time.Millisecond)
		errc := async(func() error { return c.Publish(context.Background(), &packet.Publish{Topic: "t", QoS: 1}) })
		p := expectType[*packet.Publish](t, s.expect())
		s.send(&packet.Puback{PacketID: p.PacketID})
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// A client that publishes QoS 0 and hears nothing back pings anyway, so
// that a dead server is noticed.
// Checks [MQTT-3.1.2-20] [MQTT-3.1.2-23].
func TestKeepAlivePingsWhenNothingArrives(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t, packet.V311, nil)
	c := s.connect(Options{KeepAlive: time.Second})
	for range 10 {
		time.Sleep(300 * time.Millisecond)
		if err := c.Publish(context.Background(), &packet.Publish{Topic: "t"}); err != nil {
			t.Fatal(err)
		}
		switch p := s.expect().(type) {
		case *packet.Pingreq:
			return
		case *packet.Publish:
		default:
			t.Fatalf("unexpected %v", p)
		}
	}
	t.Fatal("no PINGREQ in 3 s of publishing with nothing received")
}

// Checks [MQTT-3.1.2-21] [MQTT-3.2.2-21].
func TestServerKeepAliveV5(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t, packet.V5, &packet.Connack{Properties: packet.Properties{ServerKeepAlive: ptr[uint16](1)}})
	s.connect(Options{KeepAlive: time.Hour})
	start := time.Now()
	expectType[*packet.Pingreq](t, s.expect())
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("PINGREQ after %v", d)
	}
}

// Checks [MQTT-3.14.4-1] [MQTT-3.14.4-2].
func TestDisconnect(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			s := newFakeServer(t, tv.v, nil)
			c := s.connect(Options{})
			if err := c.Disconnect(); err != nil {
				t.Fatal(err)
			}
			d := expectType[*packet.Disconnect](t, s.expect())
			if d.ReasonCode != packet.Success {
				t.Errorf("DISCONNECT %v", d.ReasonCode)
			}
			s.expectEOF()
			waitDone(t, c)
			if c.Err() != nil {
				t.Errorf("Err = %v", c.Err())
			}
			if err := c.Publish(context.Background(), &packet.Publish{Topic: "a"}); !errors.Is(err, ErrClosed) {
				t.Errorf("Publish after Disconnect: %v", err)
			}
			if err := c.Disconnect(); !errors.Is(err, ErrClosed) {
				t.Errorf("second Disconnect: %v", err)
			}
		})
	}
}

func TestDisconnectFailsPending(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	c := s.connect(Options{})
	errc := async(func() error { return c.Publish(context.Background(), &packet.Publish{Topic: "a", QoS: 1}) })
	expectType[*packet.Publish](t, s.expect())
	if err := c.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if err := recvErr(t, errc); !errors.Is(err, ErrClosed) {
		t.Errorf("pending Publish: %v", err)
	}
	expectType[*packet.Disconnect](t, s.expect())
}

func TestDisconnectFromHandler(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	var c *Client
	ready := make(chan struct{})
	c = s.connect(Options{OnMessage: func(p *packet.Publish) {
		<-ready
		if err := c.Disconnect(); err != nil {
			t.Error(err)
		}
	}})
	close(ready)
	s.send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 5}, &packet.Publish{Topic: "t", QoS: 1, PacketID: 6})
	// The handled message is acknowledged before DISCONNECT; the second
	// is never handed to the handler.
	if ack := expectType[*packet.Puback](t, s.expect()); ack.PacketID != 5 {
		t.Errorf("PUBACK %d", ack.PacketID)
	}
	expectType[*packet.Disconnect](t, s.expect())
	s.expectEOF()
	waitDone(t, c)
	if c.Err() != nil {
		t.Errorf("Err = %v", c.Err())
	}
}

func TestClose(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	c := s.connect(Options{})
	errc := async(func() error { return c.Publish(context.Background(), &packet.Publish{Topic: "a", QoS: 1}) })
	expectType[*packet.Publish](t, s.expect())
	c.Close()
	s.expectEOF() // no DISCONNECT
	waitDone(t, c)
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err = %v", c.Err())
	}
	if err := recvErr(t, errc); !errors.Is(err, ErrClosed) {
		t.Errorf("pending Publish: %v", err)
	}
}

func TestServerDisconnectV5(t *testing.T) {
	s := newFakeServer(t, packet.V5, nil)
	c := s.connect(Options{})
	errc := async(func() error { return c.Publish(context.Background(), &packet.Publish{Topic: "a", QoS: 1}) })
	expectType[*packet.Publish](t, s.expect())
	s.send(&packet.Disconnect{ReasonCode: packet.SessionTakenOver, Properties: packet.Properties{ReasonString: "bye"}})
	waitDone(t, c)
	var re *ReasonError
	if !errors.As(c.Err(), &re) || re.Code != packet.SessionTakenOver || re.Reason != "bye" {
		t.Errorf("Err = %v", c.Err())
	}
	if !strings.Contains(c.Err().Error(), "session taken over") {
		t.Errorf("Err text %q", c.Err())
	}
	if err := recvErr(t, errc); !errors.Is(err, packet.SessionTakenOver) {
		t.Errorf("pending Publish: %v", err)
	}
}

func TestConnectionLost(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			s := newFakeServer(t, tv.v, nil)
			c := s.connect(Options{})
			s.mu.Lock()
			s.conn.Close()
			s.mu.Unlock()
			waitDone(t, c)
			if c.Err() == nil || errors.Is(c.Err(), ErrClosed) {
				t.Errorf("Err = %v", c.Err())
			}
			if err := c.Publish(context.Background(), &packet.Publish{Topic: "a", QoS: 1}); err == nil {
				t.Error("Publish on a lost connection succeeded")
			}
		})
	}
}

func TestMalformedFromServerV5(t *testing.T) {
	s := newFakeServer(t, packet.V5, nil)
	c := s.connect(Options{})
	s.mu.Lock()
	s.conn.Write([]byte{0x30, 0x02, 0x00, 0x05}) // PUBLISH whose topic runs past the end
	s.mu.Unlock()
	d := expectType[*packet.Disconnect](t, s.expect())
	if d.ReasonCode != packet.MalformedPacket {
		t.Errorf("DISCONNECT %v", d.ReasonCode)
	}
	waitDone(t, c)
	if !errors.Is(c.Err(), packet.MalformedPacket) {
		t.Errorf("Err = %v", c.Err())
	}
}

func TestTrace(t *testing.T) {
	s := newFakeServer(t, packet.V311, nil)
	var mu sync.Mutex
	var log []string
	c := s.connect(Options{Trace: func(out bool, p packet.Packet) {
		mu.Lock()
		defer mu.Unlock()
		dir := "<"
		if out {
			dir = ">"
		}
		log = append(log, dir+p.Type().String())
	}})
	c.Disconnect()
	waitDone(t, c)
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(log, " "); got != ">CONNECT <CONNACK >DISCONNECT" {
		t.Errorf("trace %q", got)
	}
}

func TestConcurrentPublish(t *testing.T) {
	s := newFakeServer(t, packet.V5, nil)
	c := s.connect(Options{})
	go func() {
		for pk := range s.in {
			switch p := pk.(type) {
			case *packet.Publish:
				if p.QoS == 1 {
					s.send(&packet.Puback{PacketID: p.PacketID})
				} else if p.QoS == 2 {
					s.send(&packet.Pubrec{PacketID: p.PacketID})
				}
			case *packet.Pubrel:
				s.send(&packet.Pubcomp{PacketID: p.PacketID})
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if err := c.Publish(context.Background(), &packet.Publish{Topic: "t", QoS: byte((g + i) % 3), Payload: []byte("x")}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
