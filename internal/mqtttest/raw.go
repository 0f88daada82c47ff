package mqtttest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ternmq/tern/packet"
)

// Timeout bounds every wait in the harness.
const Timeout = 5 * time.Second

// Raw is a scripted client speaking packets, not a library: it sends
// exactly what the test says and reports exactly what arrives.
type Raw struct {
	t       testing.TB
	Conn    net.Conn
	br      *bufio.Reader
	Version byte
}

// Dial opens a raw connection to addr for protocol level version.
func Dial(t testing.TB, addr string, version byte) *Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, Timeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return Wrap(t, c, version)
}

// Wrap makes a raw client of an open connection; it is closed when the
// test ends.
func Wrap(t testing.TB, c net.Conn, version byte) *Raw {
	t.Cleanup(func() { c.Close() })
	return &Raw{t: t, Conn: c, br: bufio.NewReader(c), Version: version}
}

// Send writes p.
func (r *Raw) Send(p packet.Packet) {
	r.t.Helper()
	b, err := p.Append(nil, r.Version)
	if err != nil {
		r.t.Fatalf("encode %s: %v", p.Type(), err)
	}
	r.SendBytes(b)
}

// SendBytes writes b as is.
func (r *Raw) SendBytes(b []byte) {
	r.t.Helper()
	r.Conn.SetWriteDeadline(time.Now().Add(Timeout))
	if _, err := r.Conn.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// Read returns the next packet, failing the test after Timeout.
func (r *Raw) Read() packet.Packet {
	r.t.Helper()
	p, err := r.ReadWithin(Timeout)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	return p
}

// ReadWithin returns the next packet or the read error.
func (r *Raw) ReadWithin(d time.Duration) (packet.Packet, error) {
	r.Conn.SetReadDeadline(time.Now().Add(d))
	return packet.ReadPacket(r.br, r.Version, 0)
}

// Expect reads the next packet and fails unless it has type T.
func Expect[T packet.Packet](r *Raw) T {
	r.t.Helper()
	return ExpectWithin[T](r, Timeout)
}

// ExpectWithin is Expect waiting up to d.
func ExpectWithin[T packet.Packet](r *Raw, d time.Duration) T {
	r.t.Helper()
	p, err := r.ReadWithin(d)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	v, ok := p.(T)
	if !ok {
		var want T
		r.t.Fatalf("got %s %+v, want %T", p.Type(), p, want)
	}
	return v
}

// ExpectNothing fails if a packet arrives within d.
func (r *Raw) ExpectNothing(d time.Duration) {
	r.t.Helper()
	if p, err := r.ReadWithin(d); err == nil {
		r.t.Fatalf("unexpected %s %+v", p.Type(), p)
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		r.t.Fatalf("connection ended: %v", err)
	}
}

// ExpectClosed fails unless the server closes the connection within d;
// packets arriving first (such as a v5 DISCONNECT) are returned.
func (r *Raw) ExpectClosed(d time.Duration) []packet.Packet {
	r.t.Helper()
	var got []packet.Packet
	deadline := time.Now().Add(d)
	for {
		p, err := r.ReadWithin(time.Until(deadline))
		if err == nil {
			got = append(got, p)
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			r.t.Fatalf("connection still open after %s (got %v)", d, got)
		}
		return got
	}
}

// Connect sends CONNECT for client id and returns the CONNACK.
// For v5, clean false also asks for a session that never expires, so
// that one test reads the same for every version.
func (r *Raw) Connect(id string, clean bool) *packet.Connack {
	r.t.Helper()
	c := &packet.Connect{ClientID: id, CleanStart: clean, KeepAlive: 30}
	if r.Version == packet.V5 && !clean {
		never := uint32(0xFFFFFFFF)
		c.Properties.SessionExpiry = &never
	}
	return r.ConnectWith(c)
}

// ConnectWith sends c (its protocol level set from r) and returns the
// CONNACK.
func (r *Raw) ConnectWith(c *packet.Connect) *packet.Connack {
	r.t.Helper()
	c.ProtocolLevel = r.Version
	r.Send(c)
	return Expect[*packet.Connack](r)
}

// Subscribe subscribes to filters at qos and returns the SUBACK.
func (r *Raw) Subscribe(id uint16, qos byte, filters ...string) *packet.Suback {
	r.t.Helper()
	s := &packet.Subscribe{PacketID: id}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, packet.Subscription{Filter: f, QoS: qos})
	}
	r.Send(s)
	ack := Expect[*packet.Suback](r)
	if ack.PacketID != id {
		r.t.Fatalf("SUBACK for id %d, want %d", ack.PacketID, id)
	}
	return ack
}

// Versions runs fn as a subtest for each protocol level in vs (all three
// when vs is empty).
func Versions(t *testing.T, fn func(t *testing.T, v byte), vs ...byte) {
	if len(vs) == 0 {
		vs = []byte{packet.V31, packet.V311, packet.V5}
	}
	for _, v := range vs {
		t.Run(VersionName(v), func(t *testing.T) { fn(t, v) })
	}
}

// VersionName names a protocol level.
func VersionName(v byte) string {
	switch v {
	case packet.V31:
		return "3.1"
	case packet.V311:
		return "3.1.1"
	case packet.V5:
		return "5.0"
	}
	return fmt.Sprintf("level%d", v)
}

// Eventually polls cond until it holds, failing the test after Timeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
