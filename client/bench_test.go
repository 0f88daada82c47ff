package client

import (
	"bufio"
	"context"
	"net"
	"testing"

	"github.com/ternmq/tern/packet"
)

// sinkServer accepts one client on 127.0.0.1:0, answers CONNECT, and
// acknowledges every QoS 1 PUBLISH, coalescing its writes.
func sinkServer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReaderSize(conn, 64<<10)
		bw := bufio.NewWriterSize(conn, 64<<10)
		for {
			pk, err := packet.ReadPacket(br, 0, 0)
			if err != nil {
				return
			}
			var out []byte
			switch p := pk.(type) {
			case *packet.Connect:
				out, _ = (&packet.Connack{}).Append(nil, packet.V311)
			case *packet.Publish:
				if p.QoS == 1 {
					out, _ = (&packet.Puback{PacketID: p.PacketID}).Append(nil, packet.V311)
				}
			}
			bw.Write(out)
			if br.Buffered() == 0 {
				bw.Flush()
			}
		}
	}()
	return ln.Addr().String()
}

func benchPublish(b *testing.B, qos byte, parallel bool) {
	c, err := Connect(context.Background(), Options{Address: sinkServer(b), ClientID: "bench", CleanStart: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, 64)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			p := &packet.Publish{Topic: "bench/topic", QoS: qos, Payload: payload}
			for pb.Next() {
				if err := c.Publish(context.Background(), p); err != nil {
					b.Error(err)
					return
				}
			}
		})
		return
	}
	p := &packet.Publish{Topic: "bench/topic", QoS: qos, Payload: payload}
	for range b.N {
		if err := c.Publish(context.Background(), p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublishQoS0(b *testing.B)         { benchPublish(b, 0, false) }
func BenchmarkPublishQoS0Parallel(b *testing.B) { benchPublish(b, 0, true) }
func BenchmarkPublishQoS1(b *testing.B)         { benchPublish(b, 1, false) }
func BenchmarkPublishQoS1Parallel(b *testing.B) { benchPublish(b, 1, true) }
