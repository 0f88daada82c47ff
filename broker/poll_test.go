package broker_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/internal/testpki"
	"github.com/ternmq/tern/listener"
	"github.com/ternmq/tern/packet"
)

// heldWrites holds what is written to it until flush, which writes it all
// in one go: TLS records that reach the broker in one segment.
type heldWrites struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	buf  bytes.Buffer
}

func (h *heldWrites) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hold {
		return h.buf.Write(p)
	}
	return h.Conn.Write(p)
}

func (h *heldWrites) flush() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold = false
	_, err := h.Conn.Write(h.buf.Bytes())
	h.buf.Reset()
	return err
}

// TestParkedTLSReadsEveryRecord: a parked TLS connection is handled until
// TLS has nothing buffered, not only until the socket is drained. Two
// records arriving in one segment are read from the socket together; the
// second must not wait in TLS for input that is not coming.
func TestParkedTLSReadsEveryRecord(t *testing.T) {
	pki := testpki.New(t, "park")
	srv := pki.Server("server", "localhost")
	ln, err := listener.Listen(listener.Config{Type: "tls", Address: "127.0.0.1:0",
		TLS: listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve(ln)
	t.Cleanup(func() { b.Close() })

	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	held := &heldWrites{Conn: raw}
	tc := tls.Client(held, pki.ClientConfig())
	c := mt.Wrap(t, tc, packet.V311)
	c.ConnectWith(&packet.Connect{ClientID: "records", CleanStart: true, KeepAlive: 60})
	for range 3 {
		time.Sleep(50 * time.Millisecond) // parked by now
		held.mu.Lock()
		held.hold = true
		held.mu.Unlock()
		c.Send(&packet.Pingreq{})
		c.Send(&packet.Subscribe{PacketID: 7, Subscriptions: []packet.Subscription{{Filter: "a/b", QoS: 1}}})
		if err := held.flush(); err != nil {
			t.Fatal(err)
		}
		tc.SetReadDeadline(time.Now().Add(3 * time.Second))
		mt.Expect[*packet.Pingresp](c)
		if a := mt.Expect[*packet.Suback](c); a.PacketID != 7 {
			t.Fatalf("SUBACK %+v", a)
		}
	}
}

// TestTakeOverHandlesWhatArrived: a connection taken over first handles
// what it has received. A client that acknowledges a message and
// reconnects at once does not get it again (before, the PUBACK could be
// left unread in the old connection's socket when the new one closed it;
// at least once allows the duplicate, but nothing calls for it).
// Checks [MQTT-3.1.4-2] (the old connection is closed all the same).
func TestTakeOverHandlesWhatArrived(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		b := mt.StartBroker(t, broker.Options{})
		pub := mt.Dial(t, b.Addr, v)
		pub.Connect("pub", true)
		old := mt.Dial(t, b.Addr, v)
		old.Connect("taken", false)
		old.Subscribe(1, 1, "take/#")
		for i := range 10 {
			pub.Send(&packet.Publish{Topic: "take/x", QoS: 1, PacketID: uint16(i + 1), Payload: []byte{byte(i)}})
			mt.Expect[*packet.Puback](pub)
			p := mt.Expect[*packet.Publish](old)
			if p.QoS != 1 {
				t.Fatalf("QoS %d", p.QoS)
			}
			time.Sleep(5 * time.Millisecond) // parked, most times
			old.Send(&packet.Puback{PacketID: p.PacketID})
			next := mt.Dial(t, b.Addr, v)
			if ack := next.Connect("taken", false); !ack.SessionPresent && v != packet.V31 {
				t.Fatal("session not present")
			}
			old.ExpectClosed(mt.Timeout) // [MQTT-3.1.4-2]
			pub.Send(&packet.Publish{Topic: "take/marker", QoS: 0, Payload: []byte{byte(i)}})
			if p := mt.Expect[*packet.Publish](next); p.Topic != "take/marker" {
				t.Fatalf("round %d: got %s again (dup %v) after acknowledging it", i, p.Topic, p.Dup)
			}
			old = next
		}
	})
}
