package pebble

import (
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/ternmq/tern/store"
)

// BenchmarkChurn queues and acknowledges messages the way a busy broker
// does (64 sessions, each message written then deleted 1000 writes later)
// and reports the data directory's size at the end: it stays near a
// fixed overhead (write-ahead logs of about two memtables) however much
// was written, because flushes and compactions drop what was deleted.
func BenchmarkChurn(b *testing.B) {
	dir := b.TempDir()
	st, err := Open(dir, Options{Durability: None})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = "client-" + string(rune('A'+i))
	}
	payload := make([]byte, 128)
	const lag = 1000
	before := st.Stats()
	var last store.Ticket
	for i := range b.N {
		// A message of its own each time: none is shared, each is stored.
		m := &store.Message{Topic: "sensors/x/temperature", Payload: payload, QoS: 1}
		last = st.PutOutbound(ids[i%len(ids)], store.Outbound{Seq: uint64(i), QoS: 1, Message: m})
		if i >= lag {
			last = st.DeleteOutbound(ids[(i-lag)%len(ids)], uint64(i-lag))
		}
		if i%256 == 0 {
			// Publishers wait for their acknowledgements: groups stay small.
			st.Wait(last)
		}
	}
	if err := st.Wait(last); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(dirSize(b, dir))/(1<<20), "disk-MiB")
	b.ReportMetric(float64(st.Stats().Bytes-before.Bytes)/(1<<20), "written-MiB")
}

func dirSize(b *testing.B, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
