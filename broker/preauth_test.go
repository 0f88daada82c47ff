package broker_test

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/auth/scram"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// halfConnect is a CONNECT fixed header declaring a body of 1048560 bytes
// (the whole packet just under the default 1 MiB maximum packet size),
// followed by the body's first byte and nothing more.
var halfConnect = []byte{0x10, 0xF0, 0xFF, 0x3F, 0x00}

const halfConnectBody = 1048560

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHalfOpenConnectMemory: connections that declare a CONNECT of about
// 1 MiB and send one byte of it cost the broker no more than connections
// that declare 16 bytes and send one: what was declared but not sent costs
// nothing. The size and memory limits are raised out of the way so that
// every connection sits in the packet reader. (A half-open connection
// itself, both ends of it counted, is a few KB of heap: the conn, its
// read buffer, two goroutines, the sockets.)
func TestHalfOpenConnectMemory(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 1000
	}
	b := mt.StartBroker(t, broker.Options{MaxConnectSize: 1 << 20, MaxPreAuthMemory: 1 << 50, ConnectTimeout: 5 * time.Minute})
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	// perConn opens n connections that send head, waits until the broker
	// has read it, and returns the heap growth per connection, measured
	// with the connections open; then it closes them and waits until the
	// broker has let go of them.
	perConn := func(head []byte) float64 {
		goroutines := runtime.NumGoroutine()
		conns := make([]net.Conn, 0, n)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
			waitFor(t, time.Minute, "the connections to end", func() bool {
				return b.Stats().PreAuthMemory == 0 && runtime.NumGoroutine() <= goroutines
			})
		}()
		body, k := packet.ConsumeVarint(head[1:])
		want := int64(n) * int64(int(body)-(len(head)-1-k))
		before := heap()
		for range n {
			c, err := net.DialTimeout("tcp", b.Addr, mt.Timeout)
			if err != nil {
				t.Fatalf("dial after %d connections: %v", len(conns), err)
			}
			conns = append(conns, c)
			if _, err := c.Write(head); err != nil {
				t.Fatal(err)
			}
		}
		// Each connection reserves its declared body but the bytes sent.
		waitFor(t, time.Minute, "every connection to be in its CONNECT", func() bool { return b.Stats().PreAuthMemory == want })
		return (float64(heap()) - float64(before)) / float64(n)
	}
	// The first round leaves the goroutines it ends pooled for the next:
	// it only warms up.
	perConn([]byte{0x10, 0x10, 0x00})
	small := perConn([]byte{0x10, 0x10, 0x00}) // declares 16 bytes
	large := perConn(halfConnect)
	t.Logf("%d half-sent CONNECTs, heap per connection (both ends): declaring 16 bytes %.0f, declaring %d bytes %.0f",
		n, small, halfConnectBody, large)
	if large-small > 2048 {
		t.Errorf("a declared but unsent 1 MiB body costs %.0f bytes per connection, want under 2 KB", large-small)
	}
}

// TestMaxConnectSize: a CONNECT larger than MaxConnectSize (default
// 64 KiB) closes the connection without CONNACK; one with a 10 KiB will
// (and a 5 KiB token for password) is accepted.
func TestMaxConnectSize(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		token := strings.Repeat("t", 5<<10)
		b := mt.StartBroker(t, broker.Options{Authenticator: auth.NewStatic(false, map[string]string{"u": token})})
		connect := func(will int) *packet.Connect {
			return &packet.Connect{ProtocolLevel: v, ClientID: fmt.Sprint("will-", will), CleanStart: true,
				Will:         &packet.Will{Topic: "w", Payload: bytes.Repeat([]byte("w"), will)},
				UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte(token)}
		}
		ok := mt.Dial(t, b.Addr, v)
		if ack := ok.ConnectWith(connect(10 << 10)); ack.ReasonCode != packet.Success {
			t.Fatalf("10 KiB will: CONNACK %#x", ack.ReasonCode)
		}

		big := mt.Dial(t, b.Addr, v)
		wire, err := connect(60<<10).Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		big.Conn.Write(wire) // the broker may close before it is all read
		if got := big.ExpectClosed(mt.Timeout); len(got) != 0 {
			t.Fatalf("CONNECT of %d bytes answered with %v", len(wire), got)
		}
		if s := b.Stats(); s.RefusedConnects.ConnectSize != 1 || s.PreAuthMemory != 0 {
			t.Fatalf("RefusedConnectSize %d, PreAuthMemory %d; want 1, 0", s.RefusedConnects.ConnectSize, s.PreAuthMemory)
		}
		ok.Send(&packet.Pingreq{})
		mt.Expect[*packet.Pingresp](ok)
	}, packet.V311, packet.V5)
}

// TestMaxConnectSizeAuth: an AUTH packet during enhanced authentication
// is held to MaxConnectSize too; v5 CONNACK 0x95 says why.
func TestMaxConnectSizeAuth(t *testing.T) {
	creds, err := scram.NewCredentials("pencil", 4096)
	if err != nil {
		t.Fatal(err)
	}
	srv := scram.NewServer(func(user string) (scram.Credentials, bool) { return creds, user == "user" })
	b := mt.StartBroker(t, broker.Options{MaxConnectSize: 4096, EnhancedAuth: []auth.EnhancedAuthenticator{srv}})
	c := mt.Dial(t, b.Addr, packet.V5)
	sc := scram.NewClient("user", "pencil")
	c.Send(&packet.Connect{ProtocolLevel: packet.V5, ClientID: "sc", CleanStart: true,
		Properties: packet.Properties{AuthMethod: scram.Method, AuthData: sc.First()}})
	mt.Expect[*packet.Auth](c)
	c.Send(&packet.Auth{ReasonCode: packet.ContinueAuthentication,
		Properties: packet.Properties{AuthMethod: scram.Method, AuthData: make([]byte, 8<<10)}})
	if ack := mt.Expect[*packet.Connack](c); ack.ReasonCode != packet.PacketTooLarge {
		t.Fatalf("CONNACK %#x, want 0x95", ack.ReasonCode)
	}
	c.ExpectClosed(mt.Timeout)
	if s := b.Stats(); s.RefusedConnects.ConnectSize != 1 || s.PreAuthMemory != 0 {
		t.Fatalf("RefusedConnectSize %d, PreAuthMemory %d; want 1, 0", s.RefusedConnects.ConnectSize, s.PreAuthMemory)
	}
}

// TestPreAuthMemory: half-sent CONNECTs hold MaxPreAuthMemory between
// them; one that does not fit is closed, a small CONNECT still gets in,
// and finishing or abandoning a CONNECT gives its share back.
func TestPreAuthMemory(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{MaxPreAuthMemory: 200 << 10})
		wire, err := (&packet.Connect{ProtocolLevel: v, ClientID: "big", CleanStart: true,
			Will: &packet.Will{Topic: "w", Payload: make([]byte, 60<<10)}}).Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		half := wire[:len(wire)/2]
		// Three fit in 200 KiB, each holding about 60 KiB.
		var held []*mt.Raw
		for i := range 3 {
			c := mt.Dial(t, b.Addr, v)
			prev := b.Stats().PreAuthMemory
			c.SendBytes(half)
			waitFor(t, mt.Timeout, fmt.Sprint("CONNECT ", i, " to reserve"), func() bool { return b.Stats().PreAuthMemory > prev })
			held = append(held, c)
		}
		over := mt.Dial(t, b.Addr, v)
		over.Conn.Write(half)
		if got := over.ExpectClosed(mt.Timeout); len(got) != 0 {
			t.Fatalf("CONNECT beyond the budget answered with %v", got)
		}
		if n := b.Stats().RefusedConnects.PreAuthMemory; n != 1 {
			t.Fatalf("RefusedPreAuthMemory %d, want 1", n)
		}

		small := mt.Dial(t, b.Addr, v)
		if ack := small.Connect("small", true); ack.ReasonCode != packet.Success {
			t.Fatalf("small CONNECT: %#x", ack.ReasonCode)
		}

		// The first finishes its CONNECT, the second gives up.
		full := b.Stats().PreAuthMemory
		held[0].SendBytes(wire[len(half):])
		if ack := mt.Expect[*packet.Connack](held[0]); ack.ReasonCode != packet.Success {
			t.Fatalf("completed CONNECT: %#x", ack.ReasonCode)
		}
		held[1].Conn.Close()
		waitFor(t, mt.Timeout, "two reservations to be released", func() bool { return b.Stats().PreAuthMemory < full/3+1 })
		again := mt.Dial(t, b.Addr, v)
		again.SendBytes(half)
		waitFor(t, mt.Timeout, "a new CONNECT to reserve", func() bool { return b.Stats().PreAuthMemory > full/3+1 })
		held[2].Conn.Close()
		again.Conn.Close()
		waitFor(t, mt.Timeout, "every reservation to be released", func() bool { return b.Stats().PreAuthMemory == 0 })
	}, packet.V311, packet.V5)
}
