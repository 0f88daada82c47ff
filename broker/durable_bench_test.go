package broker_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store/pebble"
)

// BenchmarkPersistentQoS1 measures QoS 1 messages per second into offline
// persistent sessions with Sync durability: every PUBACK waits for an
// fsync that covers its message. 8 publishers keep 128 messages each in
// flight, to 64 offline sessions (one topic each); the fsyncs it took are
// reported per second and per message.
func BenchmarkPersistentQoS1(b *testing.B) {
	for _, d := range []pebble.Durability{pebble.Sync, pebble.Batch, pebble.None} {
		b.Run(d.String(), func(b *testing.B) { benchPersistent(b, d) })
	}
}

func benchPersistent(b *testing.B, d pebble.Durability) {
	const publishers, window, sessions = 8, 128, 64
	st, err := pebble.Open(b.TempDir(), pebble.Options{Durability: d})
	if err != nil {
		b.Fatal(err)
	}
	br, err := broker.New(broker.Options{Store: st, MaxQueued: 1 << 30,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go br.Serve(ln)
	addr := ln.Addr().String()
	for i := range sessions {
		c, r := benchDial(b, addr, fmt.Sprintf("sub-%d", i), false)
		w, _ := (&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: fmt.Sprintf("p/%d", i), QoS: 1}}}).Append(nil, 4)
		c.Write(w)
		if _, err := packet.ReadPacket(r, 4, 0); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	// Encoded messages, one per topic; the packet id is patched per send.
	msgs := make([][]byte, sessions)
	for i := range msgs {
		msgs[i], _ = (&packet.Publish{Topic: fmt.Sprintf("p/%d", i), QoS: 1, PacketID: 1, Payload: make([]byte, 64)}).Append(nil, 4)
	}
	before := st.Stats()
	b.ResetTimer()
	var wg sync.WaitGroup
	for p := range publishers {
		n := b.N / publishers
		if p == 0 {
			n += b.N % publishers
		}
		wg.Go(func() { benchPublisher(b, addr, fmt.Sprintf("pub-%d", p), msgs, n, window) })
	}
	wg.Wait()
	b.StopTimer()
	after := st.Stats()
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/secs, "msgs/s")
	b.ReportMetric(float64(after.Syncs-before.Syncs)/secs, "fsyncs/s")
	b.ReportMetric(float64(b.N)/float64(max(1, after.Commits-before.Commits)), "msgs/commit")
}

func benchDial(b *testing.B, addr, id string, clean bool) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	w, _ := (&packet.Connect{ProtocolLevel: 4, ClientID: id, CleanStart: clean, KeepAlive: 0}).Append(nil, 4)
	c.Write(w)
	r := bufio.NewReaderSize(c, 64<<10)
	if p, err := packet.ReadPacket(r, 4, 0); err != nil || p.(*packet.Connack).ReasonCode != 0 {
		b.Fatalf("connect: %v %+v", err, p)
	}
	return c, r
}

// benchPublisher sends n QoS 1 messages keeping window in flight and
// returns when all are acknowledged.
func benchPublisher(b *testing.B, addr, id string, msgs [][]byte, n, window int) {
	c, r := benchDial(b, addr, id, true)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	credit := make(chan struct{}, window)
	for range window {
		credit <- struct{}{}
	}
	acked := make(chan error, 1)
	go func() {
		for range n {
			if _, err := packet.ReadPacket(r, 4, 0); err != nil {
				acked <- err
				return
			}
			credit <- struct{}{}
		}
		acked <- nil
	}()
	w := bufio.NewWriterSize(c, 32<<10)
	buf := make([]byte, 0, 128)
	for i := range n {
		select {
		case <-credit:
		default:
			w.Flush() // waiting for acknowledgements: send what is buffered
			<-credit
		}
		buf = append(buf[:0], msgs[i%len(msgs)]...)
		id := uint16(i%65535) + 1
		_, l := packet.ConsumeVarint(buf[1:])
		at := 1 + l + 2 + (int(buf[1+l])<<8 | int(buf[2+l])) // after the topic
		buf[at], buf[at+1] = byte(id>>8), byte(id)
		w.Write(buf)
	}
	w.Flush()
	if err := <-acked; err != nil {
		b.Error(err)
	}
}
