package bench

import (
	"bufio"
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/ternmq/tern/packet"
)

// The hot paths allocate nothing per message: a publisher's write, a
// subscriber's parse, record and ack.
func TestBenchHotPathsDoNotAllocate(t *testing.T) {
	for _, v := range []byte{packet.V311, packet.V5} {
		for _, qos := range []int{0, 1, 2} {
			cfg := &config{qos: qos, size: 64, window: 100, level: v, runID: 7}
			c := &benchConn{version: v, r: bufio.NewReader(bytes.NewReader(nil)), w: bufio.NewWriterSize(io.Discard, 4096)}
			p, err := newBenchPub(c, cfg, 3, "bench/3")
			if err != nil {
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(50, func() {
				if err := p.write(10, time.Time{}); err != nil {
					t.Fatal(err)
				}
				for id := uint16(1); id <= 510 && qos > 0; id++ {
					p.onAck(packet.PUBACK, p.nextID-id+1, 0) // free the ids again, so they never run out
				}
			}); n != 0 {
				t.Errorf("v%d QoS %d: publisher write: %.1f allocations per 10 messages", v, qos, n)
			}

			// The message as the broker would forward it to a subscriber.
			msg := append([]byte(nil), p.tmpl...)
			h, body := msg[0], msg[1:]
			_, n := packet.ConsumeVarint(body)
			body = body[n:]
			sub := &benchSub{runID: 7, recv: newBenchRecv(benchRecvPlan{pubFirst: 3, pubN: 1})}
			sc := &benchConn{version: v, r: bufio.NewReader(bytes.NewReader(nil)), w: bufio.NewWriterSize(io.Discard, 4096), sub: sub}
			sub.record(body[len(body)-cfg.size:], time.Now().UnixNano()) // allocates the tracker's window once
			if n := testing.AllocsPerRun(100, func() {
				if err := sc.handle(h, body); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("v%d QoS %d: subscriber handle: %.1f allocations per message", v, qos, n)
			}
			if sub.received.Load() != 102 || sub.dups.Load() != 101 {
				t.Errorf("v%d QoS %d: received %d dups %d, want 102 and 101 (the same message again)", v, qos, sub.received.Load(), sub.dups.Load())
			}
		}
	}
}
