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
