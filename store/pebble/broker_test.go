package pebble_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"testing"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store/pebble"
)

// TestBrokerFanOutStoresOnce: a message the broker queues for 100 offline
// persistent sessions is written once, as one record with a few bytes per
// session, and after a restart the sessions' outbound messages share it
// again.
func TestBrokerFanOutStoresOnce(t *testing.T) {
	const sessions = 100
	dir := t.TempDir()
	st := mustOpen(t, dir, pebble.Options{})
	b, err := broker.New(broker.Options{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(ln) }()
	for i := range sessions {
		id := fmt.Sprintf("sub-%03d", i)
		r := mqtttest.Dial(t, ln.Addr().String(), packet.V311)
		r.Connect(id, false)
		r.Subscribe(1, 1, "fan/#")
		if err := b.Disconnect(id); err != nil {
			t.Fatal(err)
		}
	}
	m := &broker.Message{Topic: "fan/out", Payload: make([]byte, 4096), QoS: 1}
	pub := mqtttest.Dial(t, ln.Addr().String(), packet.V311)
	pub.Connect("pub", true)
	// Stats counts what is committed: let the sessions' last writes in.
	if err := st.Wait(st.DeleteRetained("none")); err != nil {
		t.Fatal(err)
	}
	before := st.Stats()
	// The PUBACK waits for the store.
	pub.Send(&packet.Publish{Topic: m.Topic, QoS: 1, PacketID: 1, Payload: m.Payload})
	mqtttest.Expect[*packet.Puback](pub)
	after := st.Stats()
	if r := after.Records - before.Records; r != 1 {
		t.Errorf("publishing to %d offline sessions wrote %d records, want 1", sessions, r)
	}
	if n := after.Bytes - before.Bytes; n > 4096+sessions*16 {
		t.Errorf("publishing to %d offline sessions wrote %d bytes", sessions, n)
	}
	b.Close()
	if err := <-served; !errors.Is(err, broker.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}

	st = mustOpen(t, dir, pebble.Options{})
	defer st.Close()
	states, _, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != sessions {
		t.Fatalf("loaded %d sessions, want %d", len(states), sessions)
	}
	shared := states[0].Outbound[0].Message
	if shared.Topic != m.Topic || !reflect.DeepEqual(shared.Payload, m.Payload) {
		t.Fatalf("loaded %+v", shared)
	}
	for _, s := range states {
		if len(s.Outbound) != 1 || s.Outbound[0].Message != shared {
			t.Fatalf("%s: outbound %+v, not the one shared message", s.Session.ClientID, s.Outbound)
		}
	}
}
