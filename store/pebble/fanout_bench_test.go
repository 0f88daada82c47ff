package pebble

import (
	"fmt"
	"testing"

	"github.com/ternmq/tern/store"
)

// BenchmarkFanOutPersistent stores QoS 1 messages for 1, 100 and 1000
// offline persistent sessions at the Sync level, each message published
// once and queued for every session (PutOutbound per session in one
// Atomic group, then Wait), as the broker does for a subscription every
// session shares. It reports
// messages per second and, from the store's counters, the bytes and
// records written per message.
//
// queue only queues (the sessions stay offline); life also takes every
// copy through its life: queued, then sent (state and packet id change),
// then acknowledged (deleted), with a Wait after each step.
func BenchmarkFanOutPersistent(b *testing.B) {
	for _, life := range []bool{false, true} {
		name := "queue"
		if life {
			name = "life"
		}
		for _, n := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/sessions=%d", name, n), func(b *testing.B) { benchFanOut(b, n, life) })
		}
	}
}

func benchFanOut(b *testing.B, sessions int, life bool) {
	st, err := Open(b.TempDir(), Options{Durability: Sync})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ids := make([]string, sessions)
	var t store.Ticket
	for i := range ids {
		ids[i] = fmt.Sprintf("client-%04d", i)
		t = st.PutSession(store.Session{ClientID: ids[i], Version: 4, ExpiryInterval: 0xFFFFFFFF})
	}
	if err := st.Wait(t); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 128)
	before := st.Stats()
	b.ResetTimer()
	for i := range b.N {
		m := &store.Message{Topic: "sensors/x/temperature", Payload: payload, QoS: 1}
		seq := uint64(i + 1)
		st.Atomic(func() { // as the broker routes a message a client published
			for _, id := range ids {
				t = st.PutOutbound(id, store.Outbound{Seq: seq, QoS: 1, Message: m})
			}
		})
		if err := st.Wait(t); err != nil {
			b.Fatal(err)
		}
		if !life {
			continue
		}
		for _, id := range ids {
			t = st.PutOutbound(id, store.Outbound{Seq: seq, PacketID: uint16(seq), State: store.Sent, QoS: 1, Message: m})
		}
		if err := st.Wait(t); err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			t = st.DeleteOutbound(id, seq)
		}
		if err := st.Wait(t); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	after := st.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(after.Bytes-before.Bytes)/float64(b.N), "B-written/msg")
	b.ReportMetric(float64(after.Records-before.Records)/float64(b.N), "records/msg")
}

// BenchmarkFanOutLoad measures Load of 100 messages queued for each of
// 1000 sessions (written at the None level, then reopened once).
func BenchmarkFanOutLoad(b *testing.B) {
	const sessions, messages = 1000, 100
	dir := b.TempDir()
	st, err := Open(dir, Options{Durability: None})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 128)
	var t store.Ticket
	for i := range sessions {
		st.PutSession(store.Session{ClientID: fmt.Sprintf("client-%04d", i), Version: 4, ExpiryInterval: 0xFFFFFFFF})
	}
	for seq := range uint64(messages) {
		m := &store.Message{Topic: "sensors/x/temperature", Payload: payload, QoS: 1}
		st.Atomic(func() {
			for i := range sessions {
				t = st.PutOutbound(fmt.Sprintf("client-%04d", i), store.Outbound{Seq: seq + 1, QoS: 1, Message: m})
			}
		})
	}
	if err := st.Wait(t); err != nil {
		b.Fatal(err)
	}
	st.Close()
	if st, err = Open(dir, Options{Durability: None}); err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		states, _, err := st.Load()
		if err != nil || len(states) != sessions || len(states[0].Outbound) != messages {
			b.Fatalf("load: %d sessions, %v", len(states), err)
		}
	}
}
