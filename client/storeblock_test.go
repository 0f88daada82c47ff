package client

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/packet"
)

// stuckStore is an in-memory Store whose writes block while stuck says
// so, as a disk that takes its time to fsync.
type stuckStore struct {
	stuck   func(op string, m StoredMessage) bool
	entered chan string   // told when a write blocks
	release chan struct{} // closed to let blocked writes go on
	mu      sync.Mutex
	msgs    map[uint64]StoredMessage
}

func newStuckStore(stuck func(op string, m StoredMessage) bool) *stuckStore {
	return &stuckStore{stuck: stuck, entered: make(chan string, 10), release: make(chan struct{}), msgs: map[uint64]StoredMessage{}}
}

func (s *stuckStore) block(op string, m StoredMessage) {
	if s.stuck(op, m) {
		s.entered <- op
		<-s.release
	}
}

func (s *stuckStore) Put(m StoredMessage) error {
	s.block("put", m)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs[m.Seq] = m
	return nil
}

func (s *stuckStore) Delete(seq uint64) error {
	s.block("delete", StoredMessage{Seq: seq})
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.msgs, seq)
	return nil
}

func (s *stuckStore) Load() ([]StoredMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []StoredMessage
	for _, m := range s.msgs {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b StoredMessage) int { return int(a.Seq) - int(b.Seq) })
	return out, nil
}

func (s *stuckStore) Close() error { return nil }

// While a Store write is stuck, the connection's reader still answers and
// delivers: neither the reader nor the lock the reader needs waits for the
// disk. Shown with a QoS 0 message delivered, a QoS 1 message acknowledged
// and a PINGRESP handled while the write is stuck.
func TestSessionStoreWriteDoesNotStallReader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stuck func(op string, m StoredMessage) bool
	}{
		// The PUBACK's completion deletes the message: on the reader.
		{"delete after PUBACK", func(op string, m StoredMessage) bool { return op == "delete" }},
		// A second Publish's write, while the reader completes the first.
		{"put of another publish", func(op string, m StoredMessage) bool {
			return op == "put" && m.Publish != nil && string(m.Publish.Payload) == "m2"
		}},
	} {
		for _, tv := range versions {
			t.Run(tc.name+"/"+tv.name, func(t *testing.T) {
				ln := listen(t)
				st := newStuckStore(tc.stuck)
				got := make(chan string, 10)
				s, err := NewSession(SessionOptions{
					Options: Options{Address: ln.Addr().String(), Version: tv.v, ClientID: "stuck", KeepAlive: time.Second,
						OnMessage: func(p *packet.Publish) { got <- string(p.Payload) }},
					Backoff: fastBackoff(), Store: st,
				})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				var once sync.Once
				release := func() { once.Do(func() { close(st.release) }) }
				defer release()
				sc := acceptScript(t, ln, tv.v, &packet.Connack{})

				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				first := async(func() error { return s.Publish(ctx, &packet.Publish{Topic: "t", QoS: 1, Payload: []byte("m1")}) })
				p1 := sc.expectPublish("m1", 1, false)
				second := async(func() error { return s.Publish(ctx, &packet.Publish{Topic: "t", QoS: 1, Payload: []byte("m2")}) })
				if tc.name == "put of another publish" {
					waitEntered(t, st)
				}
				sc.send(&packet.Puback{PacketID: p1.PacketID})
				if tc.name == "delete after PUBACK" {
					waitEntered(t, st)
				}

				sc.send(&packet.Publish{Topic: "in", Payload: []byte("qos0")},
					&packet.Publish{Topic: "in", QoS: 1, PacketID: 7, Payload: []byte("qos1")})
				for _, want := range []string{"qos0", "qos1"} {
					select {
					case g := <-got:
						if g != want {
							t.Fatalf("got %q, want %q", g, want)
						}
					case <-time.After(3 * time.Second):
						t.Fatalf("%q not delivered while a Store write is stuck", want)
					}
				}
				// Up to the PUBACK of the QoS 1 message, note m2 (sent
				// already when its write was not the stuck one) and
				// answer PINGREQ.
				var m2 uint16
				read := func(until func(packet.Packet) bool) {
					for {
						pk := sc.expect()
						if p, ok := pk.(*packet.Publish); ok && string(p.Payload) == "m2" {
							m2 = p.PacketID
						}
						if _, ok := pk.(*packet.Pingreq); ok {
							sc.send(&packet.Pingresp{})
						}
						if until(pk) {
							return
						}
					}
				}
				read(func(pk packet.Packet) bool {
					ack, ok := pk.(*packet.Puback)
					return ok && ack.PacketID == 7
				})
				release()
				if err := recvErr(t, first); err != nil {
					t.Fatal(err)
				}
				if m2 == 0 {
					read(func(packet.Packet) bool { return m2 != 0 })
				}
				sc.send(&packet.Puback{PacketID: m2})
				if err := recvErr(t, second); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func waitEntered(t *testing.T, st *stuckStore) {
	t.Helper()
	select {
	case <-st.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the Store write did not start")
	}
}
