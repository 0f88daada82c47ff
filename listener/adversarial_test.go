package listener_test

// Adversarial tests for the listeners: a broker serves on the listener
// under test while many connections attack what comes before MQTT (the
// WebSocket upgrade and frames, the TLS handshake, the PROXY header).
// Each test measures the heap with the attack's connections open and
// bounds it per connection, checks that the broker or the listener closes
// them, and that a bystander on the same listener keeps its round trips
// (latencies logged, never asserted) and a new client still connects.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/internal/testpki"
	"github.com/ternmq/tern/listener"
	"github.com/ternmq/tern/packet"
)

// advConnectTimeout is the broker's ConnectTimeout in these tests:
// shorter than the default 10 s, so that waiting for it is quick.
const advConnectTimeout = 2 * time.Second

// attack opens n TCP connections to addr and writes first(i) on the
// i-th (nothing when it returns nil); they are closed when the test ends.
func attack(t *testing.T, addr string, n int, first func(i int) []byte) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			t.Fatalf("dial after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
		if b := first(i); b != nil {
			c.SetWriteDeadline(time.Now().Add(timeout))
			c.Write(b) // the server may have closed already
		}
	}
	return conns
}

// perConnection logs the heap growth since before over n connections and
// fails if it is more than bound bytes each.
func perConnection(t *testing.T, what string, n int, before, bound int64) {
	t.Helper()
	grown := mt.HeapAlloc() - before
	t.Logf("%d %s: heap grew by %d bytes (%.2f MiB), %d per connection (both ends), bound %d",
		n, what, grown, float64(grown)/(1<<20), grown/int64(n), bound)
	if grown > int64(n)*bound {
		t.Errorf("%s: %d bytes per connection, want at most %d", what, grown/int64(n), bound)
	}
}

// allClosed fails unless the server closes every one of conns within d
// (a read ends in EOF or a reset rather than the deadline); whatever
// arrives first is discarded.
func allClosed(t *testing.T, conns []net.Conn, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	buf := make([]byte, 4096)
	for i, c := range conns {
		c.SetReadDeadline(deadline)
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection %d of %d still open after %s", i, len(conns), d)
			}
			break
		}
	}
}

// wsUpgrade is a WebSocket upgrade request for /mqtt offering "mqtt".
const wsUpgrade = "GET /mqtt HTTP/1.1\r\nHost: tern\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
	"Sec-WebSocket-Protocol: mqtt\r\n\r\n"

// wsFrameHead is the header of a masked binary frame (a client's) that
// declares a payload of n bytes; its mask key is zero, so the payload goes
// as is.
func wsFrameHead(n uint64) []byte {
	b := []byte{0x82, 0x80 | 127}
	b = binary.BigEndian.AppendUint64(b, n)
	return append(b, 0, 0, 0, 0)
}

// TestAdversarialWSUpgradeStall: connections to a ws listener that send
// part of an upgrade request and stall, and ones that send nearly 64 KiB
// of header lines (wsMaxHeaderBytes) and stall, are held only until the
// HTTP server's header timeout (wsHeaderTimeout, 10 s) and cost at most
// what they sent; a bystander over WebSocket keeps its round trips and a
// new WebSocket client still connects.
func TestAdversarialWSUpgradeStall(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 100
	}
	b := serveWith(t, listener.Config{Type: "ws"}, broker.Options{ConnectTimeout: advConnectTimeout})
	ws := dialWS(nil, nil, "mqtt")
	c, err := ws(t, b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	by := mt.NewBystander(t, c, "ws-upgrade")
	by.RoundTrips(10)

	partial := []byte("GET /mqtt HTTP/1.1\r\nHost: tern\r\nUpgrade: websocket\r\n")
	var bomb []byte
	bomb = append(bomb, partial...)
	pad := strings.Repeat("x", 1000)
	for i := 0; len(bomb) < 63<<10; i++ {
		bomb = fmt.Appendf(bomb, "X-Pad-%d: %s\r\n", i, pad)
	}

	before := mt.HeapAlloc()
	half := attack(t, b.Addr, n, func(int) []byte { return partial })
	by.RoundTrips(10)
	perConnection(t, "half-sent upgrade requests", n, before, 16<<10)

	before = mt.HeapAlloc()
	bombs := attack(t, b.Addr, n, func(int) []byte { return bomb })
	by.RoundTrips(10)
	// net/http keeps the header lines it has parsed: each connection
	// holds about what it sent, up to MaxHeaderBytes (64 KiB) and its
	// 4 KiB read buffer, until the header timeout. Bounded per
	// connection, not in total: n such connections hold n times that.
	perConnection(t, fmt.Sprintf("stalled upgrade requests of %d header bytes", len(bomb)), n, before, 2*64<<10)

	allClosed(t, append(half, bombs...), 10*time.Second+mt.BystanderDeadline)
	by.RoundTrips(10)
	late, err := ws(t, b.Addr)
	if err != nil {
		t.Fatalf("a WebSocket client after the attack: %v", err)
	}
	mt.NewBystander(t, late, "ws-late").RoundTrips(1)
	by.Report()
}

// TestAdversarialWSHugeFrame: upgraded WebSocket connections each send a
// binary frame declaring a payload of 2^63-1 bytes, then 4 KB of it, and
// stall. The frame reader streams the payload, so what was declared costs
// nothing: when the payload starts a CONNECT declaring the largest
// remaining length, the broker refuses it at once (MaxConnectSize) and
// closing it takes at most wsCloseTimeout (the close handshake would
// otherwise wait, forever, to skip the rest of the frame); when it is
// half a valid CONNECT, ConnectTimeout ends it.
func TestAdversarialWSHugeFrame(t *testing.T) {
	n := 200
	b := serveWith(t, listener.Config{Type: "ws"}, broker.Options{ConnectTimeout: advConnectTimeout})
	ws := dialWS(nil, nil, "mqtt")
	c, err := ws(t, b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	by := mt.NewBystander(t, c, "ws-frame")
	by.RoundTrips(10)

	huge := []byte{0x10}
	huge = packet.AppendVarint(huge, packet.MaxVarint)
	half, _ := (&packet.Connect{ProtocolLevel: packet.V311, ClientID: "half", CleanStart: true,
		Will: &packet.Will{Topic: "w", Payload: make([]byte, 8<<10)}}).Append(nil, packet.V311)
	half = half[:4<<10]

	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"CONNECT declaring 268435455 bytes", append(huge, make([]byte, 4<<10-len(huge))...)},
		{"half a CONNECT", half},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := append(wsFrameHead(1<<63-1), tc.payload...)
			before := mt.HeapAlloc()
			conns := attack(t, b.Addr, n, func(int) []byte { return []byte(wsUpgrade) })
			for i, c := range conns {
				c.SetReadDeadline(time.Now().Add(timeout))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
					t.Fatalf("upgrade %d: %v %v", i, resp, err)
				}
				c.SetWriteDeadline(time.Now().Add(timeout))
				c.Write(frame)
			}
			by.RoundTrips(10)
			// An upgraded connection costs the HTTP server's buffers, the
			// WebSocket reader and writer and the broker's connection;
			// the frame's declared length adds nothing, its 4 KB payload
			// at most a few times itself.
			perConnection(t, "WebSocket frames declaring 2^63-1 bytes", n, before, 64<<10)
			allClosed(t, conns, 5*time.Second+advConnectTimeout+mt.BystanderDeadline)
			by.RoundTrips(10)
		})
	}
	late, err := ws(t, b.Addr)
	if err != nil {
		t.Fatalf("a WebSocket client after the attack: %v", err)
	}
	mt.NewBystander(t, late, "ws-late").RoundTrips(1)
	by.Report()
}

// TestAdversarialTLSHandshakeStall: connections to a tls listener that
// open TCP and send nothing, or a record header declaring a 16 KiB
// handshake record and 100 bytes of it, or the start of a ClientHello
// declaring a 64 KiB message, then stall: the broker's ConnectTimeout
// bounds the handshake (the read deadline is set before it starts), each
// costs a bounded few KB to tens of KB, and a bystander over TLS keeps its
// round trips.
func TestAdversarialTLSHandshakeStall(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 100
	}
	ca := testpki.New(t, "adversarial")
	srv := ca.Server("server", "server")
	b := serveWith(t, listener.Config{Type: "tls", TLS: listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}},
		broker.Options{ConnectTimeout: advConnectTimeout})
	dial := dialTLS(ca.ClientConfig())
	c, err := dial(t, b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	by := mt.NewBystander(t, c, "tls")
	by.RoundTrips(10)

	// A handshake record of 16384 bytes (the most a plaintext record may
	// carry) and the first 100 of them.
	record := append([]byte{0x16, 0x03, 0x01, 0x40, 0x00}, make([]byte, 100)...)
	// A record whose body starts a ClientHello declaring 65,535 bytes,
	// more than one record holds: the handshake waits for more records.
	hello := append([]byte{0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0xFF, 0xFF}, make([]byte, 16384-4)...)
	for _, tc := range []struct {
		name  string
		first []byte
		bound int64
	}{
		{"silent", nil, 16 << 10},
		{"16 KiB record, 100 bytes sent", record, 40 << 10},
		{"64 KiB ClientHello, one record sent", hello, 120 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := mt.HeapAlloc()
			conns := attack(t, b.Addr, n, func(int) []byte { return tc.first })
			by.RoundTrips(10)
			perConnection(t, "stalled TLS handshakes ("+tc.name+")", n, before, tc.bound)
			allClosed(t, conns, advConnectTimeout+mt.BystanderDeadline)
			by.RoundTrips(10)
		})
	}
	late, err := dial(t, b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	mt.NewBystander(t, late, "tls-late").RoundTrips(1)
	by.Report()
}

// TestAdversarialProxyGarbage: connections to a tcp listener with PROXY
// protocol that send a v1 signature followed by a line that never ends, a
// v2 signature declaring a long address block and stall, a partial v1
// header and stall, or binary garbage, are closed and cost a bounded few
// KB each; clients with and without a PROXY header still connect. The
// broker asks for RemoteAddr before it sets its CONNECT deadline, so a
// stalled header is bounded by the listener's header timeout (5 s), then
// ConnectTimeout; a malformed or partial one fails at once.
func TestAdversarialProxyGarbage(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 100
	}
	b := serveWith(t, listener.Config{Type: "tcp", ProxyProtocol: true}, broker.Options{ConnectTimeout: advConnectTimeout})
	direct := func(t testing.TB, addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, timeout) }
	c, err := direct(t, b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	by := mt.NewBystander(t, c, "proxy")
	by.RoundTrips(10)

	v2sig := []byte("\r\n\r\n\x00\r\nQUIT\n")
	for _, tc := range []struct {
		name  string
		first []byte
	}{
		{"v1 line without end", []byte("PROXY TCP4 " + strings.Repeat("9", 300))},
		{"v1 partial", []byte("PROXY TCP4 192.0.2.7 ")},
		{"v2 declaring 4 KiB, stalled", append(append(v2sig, 0x21, 0x11, 0x10, 0x00), make([]byte, 12)...)},
		{"v2 declaring 64 KiB", append(append(v2sig, 0x21, 0x11, 0xFF, 0xFF), make([]byte, 12)...)},
		{"garbage", []byte("\x00\xff\x13\x37 not a header, not MQTT either")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := mt.HeapAlloc()
			conns := attack(t, b.Addr, n, func(int) []byte { return tc.first })
			by.RoundTrips(10)
			perConnection(t, "PROXY garbage ("+tc.name+")", n, before, 16<<10)
			allClosed(t, conns, 5*time.Second+advConnectTimeout+mt.BystanderDeadline)
			by.RoundTrips(10)
		})
	}
	for _, d := range []struct {
		name string
		dial dialer
	}{{"no header", direct}, {"v1", dialProxied(proxyHeader(t, 1), nil)}, {"v2", dialProxied(proxyHeader(t, 2), nil)}} {
		c, err := d.dial(t, b.Addr)
		if err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		mt.NewBystander(t, c, "proxy-late-"+strings.ReplaceAll(d.name, " ", "-")).RoundTrips(1)
	}
	by.Report()
}
