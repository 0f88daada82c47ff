package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// A subscriber's PUBACK must reach the broker even when the last packet in
// the read buffer (here a PINGRESP, or a QoS 0 PUBLISH) writes no ack:
// otherwise the broker's in-flight window stays full and delivery stalls
// until the next PINGREQ flushes (keep alive / 2; never with -k 0).
func TestBenchAckFlushedBehindPingresp(t *testing.T) {
	for _, tail := range []struct {
		name string
		pkt  packet.Packet
	}{
		{"PINGRESP", &packet.Pingresp{}},
		{"QoS 0 PUBLISH", &packet.Publish{Topic: "bench/0", Payload: make([]byte, 20)}},
	} {
		t.Run(tail.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			srv, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			c := &benchConn{nc: nc, version: packet.V311, r: bufio.NewReaderSize(nc, benchBufBig),
				w: bufio.NewWriterSize(nc, benchBufSmall), done: make(chan struct{}),
				sub: &benchSub{}}
			c.start()
			defer c.close()
			pub, _ := (&packet.Publish{Topic: "bench/0", QoS: 1, PacketID: 7, Payload: make([]byte, 20)}).Append(nil, packet.V311)
			tl, _ := tail.pkt.Append(nil, packet.V311)
			if _, err := srv.Write(append(pub, tl...)); err != nil { // one segment, as a broker's batched write
				t.Fatal(err)
			}
			_ = srv.SetReadDeadline(time.Now().Add(2 * time.Second))
			ack := make([]byte, 4)
			if _, err := io.ReadFull(srv, ack); err != nil {
				t.Fatalf("no PUBACK within 2 s: %v", err)
			}
		})
	}
}

type refuseSub1 struct{}

func (refuseSub1) Authenticate(_ context.Context, c *auth.Client) error {
	if strings.HasSuffix(c.ClientID, "-sub-1") {
		return auth.ErrNotAuthorized
	}
	return nil
}

// A subscriber that never connected cannot lose messages: the broker
// delivered everything to every subscriber that existed.
func TestBenchFailedSubscriberIsNotLoss(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{Authenticator: refuseSub1{}})
	res := run(t, conf("fanout", b.Addr, func(c *Config) { c.Clients, c.Count, c.QoS, c.Drain = 3, 100, 1, 300*time.Millisecond }))
	t.Logf("connections %+v sent %d received %d expected %v loss %v receivers %d with loss %d",
		res.Connections, res.Sent, res.Received, ptrText(res.Expected), ptrText(res.Loss), res.Receivers, res.ReceiversWithLoss)
	if res.Loss == nil || *res.Loss != 0 {
		t.Errorf("loss %v: the broker lost nothing; one subscriber was refused at CONNECT (counted as failed)", ptrText(res.Loss))
	}
}

// A broker that accepts the connection and then stops reading must not
// hold a -d run forever.
func TestBenchStuckBrokerDoesNotHang(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 512)
			_, _ = c.Read(buf)                    // CONNECT
			_, _ = c.Write([]byte{0x20, 2, 0, 0}) // CONNACK
			defer c.Close()                       // and never read again
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = Run(context.Background(), conf("pub", ln.Addr().String(), func(c *Config) {
			c.Clients, c.Size, c.Duration, c.Drain = 1, 60000, 200*time.Millisecond, 200*time.Millisecond
		}))
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run still running 5 s after its end")
	}
}
