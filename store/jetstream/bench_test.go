package jsstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ternmq/tern/store"
	jsstore "github.com/ternmq/tern/store/jetstream"
	"github.com/ternmq/tern/store/pebble"
)

// BenchmarkFanout: durable QoS 1 fan-out, one publisher: a message is
// put for each of n persistent sessions and the publisher waits for the
// store (as the broker does before PUBACK). Beside JetStream on one
// server (R1) and on three (R3; and R3 with every group an atomic
// batch, BatchAll), the Pebble store at its default (fsync
// per group) for comparison. msgs/s counts published messages; B/msg the
// bytes the store wrote per published message: for JetStream the
// subjects, headers and data it published, for Pebble its batches.
func BenchmarkFanout(b *testing.B) {
	fanouts := []int{1, 100, 1000}
	run := func(b *testing.B, open func(b *testing.B) (store.Store, func() uint64)) {
		for _, n := range fanouts {
			b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
				st, written := open(b)
				defer st.Close()
				ids := make([]string, n)
				var tk store.Ticket
				for i := range ids {
					ids[i] = fmt.Sprintf("client-%04d", i)
					tk = st.PutSession(store.Session{ClientID: ids[i], Version: 4, ExpiryInterval: 0xFFFFFFFF})
				}
				if err := st.Wait(tk); err != nil {
					b.Fatal(err)
				}
				before := written()
				b.ResetTimer()
				start := time.Now()
				for i := range b.N {
					m := &store.Message{Topic: "sensors/x/temperature", Payload: make([]byte, 128), QoS: 1}
					for _, id := range ids {
						tk = st.PutOutbound(id, store.Outbound{Seq: uint64(i + 1), QoS: 1, Message: m})
					}
					if err := st.Wait(tk); err != nil {
						b.Fatal(err)
					}
				}
				el := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
				b.ReportMetric(float64(b.N*n)/el.Seconds(), "deliveries/s")
				b.ReportMetric(float64(written()-before)/float64(b.N), "B/msg")
			})
		}
	}
	b.Run("pebble", func(b *testing.B) {
		run(b, func(b *testing.B) (store.Store, func() uint64) {
			st, err := pebble.Open(b.TempDir(), pebble.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return st, func() uint64 { return st.Stats().Bytes }
		})
	})
	for _, c := range []struct {
		name     string
		servers  int
		batching jsstore.Batching
	}{
		{"jetstream-R1", 1, jsstore.BatchAtomic},
		{"jetstream-R3", 3, jsstore.BatchAtomic},
		{"jetstream-R3-batched", 3, jsstore.BatchAll},
	} {
		b.Run(c.name, func(b *testing.B) {
			ss := startServers(b, c.servers)
			js := ss.connect(b, 0)
			run(b, func(b *testing.B) (store.Store, func() uint64) {
				st := mustOpen(b, js, jsstore.Options{Bucket: bucket(), Replicas: c.servers, Batching: c.batching})
				return st, func() uint64 { return st.Stats().Bytes }
			})
		})
	}
}
