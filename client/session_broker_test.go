package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// testNoLoss streams QoS 1 and 2 messages from a publishing Session to a
// subscribing Session, both with persistent sessions, while restart
// brings the broker down and up twice, and checks that every message
// arrives and no QoS 2 message arrives twice.
//
// A broker can break exactly-once itself by sending a QoS 2 PUBLISH again
// after its PUBREL, whose flow the client has completed (PUBCOMP) and
// forgotten; MQTT 3.1.1 4.3.3 forbids that. Such a delivery is not the
// client's to catch, so with brokerResendsCompleted (mosquitto 2.0.11
// does it, now and then, after a restart) it is logged, not failed.
func testNoLoss(t *testing.T, addr string, version byte, restart func(), brokerResendsCompleted bool) {
	const publishers, each = 4, 60
	const total = publishers * each
	var mu sync.Mutex
	count := make(map[string]int)
	all := make(chan struct{})
	var lost atomic.Int32
	// The subscriber's QoS 2 wire events, in order: PUBLISH in, PUBCOMP out.
	type event struct {
		pubcomp bool
		id      uint16
		payload string
	}
	var evMu sync.Mutex
	var events []event
	trace := func(out bool, p packet.Packet) {
		switch p := p.(type) {
		case *packet.Publish:
			if !out && p.QoS == 2 {
				evMu.Lock()
				events = append(events, event{id: p.PacketID, payload: string(p.Payload)})
				evMu.Unlock()
			}
		case *packet.Pubcomp:
			if out {
				evMu.Lock()
				events = append(events, event{pubcomp: true, id: p.PacketID})
				evMu.Unlock()
			}
		}
	}
	// completedBefore reports whether the flow of m's first PUBLISH was
	// complete (PUBCOMP sent) when m arrived again under the same id.
	completedBefore := func(m string) bool {
		evMu.Lock()
		defer evMu.Unlock()
		first := -1
		for i, e := range events {
			switch {
			case !e.pubcomp && e.payload == m && first < 0:
				first = i
			case !e.pubcomp && e.payload == m:
				for _, c := range events[first:i] {
					if c.pubcomp && c.id == events[first].id {
						return true
					}
				}
			}
		}
		return false
	}
	sub := newTestSession(t, SessionOptions{
		Options: Options{Address: addr, Version: version, ClientID: fmt.Sprintf("noloss-sub-%d", version),
			// Persistent from the first connection: a clean 3.1.x session
			// ends with its connection, and mosquitto 2.0.11 does not
			// persist a v5 session begun with clean start either.
			CleanStart: false, Trace: trace},
		OnConnectionLost: func(error) { lost.Add(1) },
	})
	if _, err := sub.SubscribeFunc(context.Background(), func(p *packet.Publish) {
		mu.Lock()
		defer mu.Unlock()
		count[string(p.Payload)]++
		if len(count) == total && count[string(p.Payload)] == 1 {
			close(all)
		}
	}, packet.Subscription{Filter: "noloss/#", QoS: 2}); err != nil {
		t.Fatal(err)
	}
	pub := newTestSession(t, SessionOptions{
		Options: Options{Address: addr, Version: version, ClientID: fmt.Sprintf("noloss-pub-%d", version)},
	})

	var published atomic.Int32
	restarted := make(chan struct{})
	third := make(chan struct{}, 2)
	go func() {
		defer close(restarted)
		for range 2 {
			<-third
			restart()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for g := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				qos := byte(1 + (g+i)%2)
				err := pub.Publish(context.Background(), &packet.Publish{Topic: fmt.Sprintf("noloss/%d", g), QoS: qos,
					Payload: fmt.Appendf(nil, "%d-%d-q%d", g, i, qos)})
				if err != nil {
					errs <- err
					return
				}
				if n := published.Add(1); n == total/3 || n == 2*total/3 {
					third <- struct{}{}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	wait(t, restarted, "the restarts")
	select {
	case <-all:
	case <-wait20():
		mu.Lock()
		var missing []string
		for g := range publishers {
			for i := range each {
				qos := byte(1 + (g+i)%2)
				if m := fmt.Sprintf("%d-%d-q%d", g, i, qos); count[m] == 0 {
					missing = append(missing, m)
				}
			}
		}
		mu.Unlock()
		t.Fatalf("%d of %d messages missing: %v", len(missing), total, missing)
	}
	mu.Lock()
	defer mu.Unlock()
	for m, n := range count {
		switch {
		case m[len(m)-1] != '2' || n == 1:
		case brokerResendsCompleted && completedBefore(m):
			t.Logf("QoS 2 message %s delivered %d times: the broker sent it again after completing its flow", m, n)
		default:
			t.Errorf("QoS 2 message %s delivered %d times", m, n)
		}
	}
	if lost.Load() < 1 {
		t.Errorf("subscriber never lost its connection (did the broker restart?)")
	}
	if err := pub.Disconnect(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSessionNoLossTernRestart(t *testing.T) {
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			b := startRestartBroker(t)
			testNoLoss(t, b.addr, tv.v, b.restart, false)
		})
	}
}

func TestSessionNoLossMosquittoRestart(t *testing.T) {
	for _, tv := range versions[1:] {
		t.Run(tv.name, func(t *testing.T) {
			m := mt.StartMosquitto(t, true)
			testNoLoss(t, m.Addr, tv.v, m.Restart, true)
		})
	}
}

// gatedDial dials addr only once online is closed: a network that comes
// back.
func gatedDial(addr string, online <-chan struct{}) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		select {
		case <-online:
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		default:
			return nil, errors.New("offline")
		}
	}
}

// collect subscribes a Client to filter and returns the payloads received,
// in order, on a channel.
func collect(t *testing.T, addr string, version byte, filter string) <-chan string {
	got := make(chan string, 100)
	c := connectTest(t, Options{Address: addr, Version: version, ClientID: "collect", CleanStart: true,
		OnMessage: func(p *packet.Publish) { got <- string(p.Payload) }})
	if _, err := c.Subscribe(context.Background(), packet.Subscription{Filter: filter, QoS: 2}); err != nil {
		t.Fatal(err)
	}
	return got
}

func expectPayloads(t *testing.T, got <-chan string, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case g := <-got:
			if g != w {
				t.Fatalf("got %q, want %q", g, w)
			}
		case <-wait20():
			t.Fatalf("timed out waiting for %q", w)
		}
	}
}

func TestSessionOfflineQueue(t *testing.T) {
	for _, name := range []string{"tern", "mosquitto"} {
		t.Run(name, func(t *testing.T) {
			var addr string
			if name == "tern" {
				addr = startRestartBroker(t).addr
			} else {
				addr = mt.StartMosquitto(t, false).Addr
			}
			got := collect(t, addr, packet.V5, "offline/#")
			online := make(chan struct{})
			s, err := NewSession(SessionOptions{Options: Options{Dial: gatedDial(addr, online), Version: packet.V5}, Backoff: fastBackoff()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// A cancelled context makes Publish return at once; the
			// message stays queued.
			queued, cancel := context.WithCancel(context.Background())
			cancel()
			// mosquitto forwards a QoS 2 message on PUBREL, after a QoS 0
			// or 1 message sent later, so the order holds only for QoS 0
			// and 1 there.
			levels := 3
			if name == "mosquitto" {
				levels = 2
			}
			var want []string
			for i := range 6 {
				m := fmt.Sprintf("m%d", i)
				want = append(want, m)
				if err := s.Publish(queued, &packet.Publish{Topic: "offline/t", QoS: byte(i % levels), Payload: []byte(m)}); !errors.Is(err, context.Canceled) {
					t.Fatalf("Publish while offline: %v", err)
				}
			}
			close(online)
			// Disconnect flushes the queue first.
			if err := s.Disconnect(context.Background()); err != nil {
				t.Fatal(err)
			}
			expectPayloads(t, got, want...)
			if s.Err() != nil {
				t.Fatalf("Err = %v", s.Err())
			}
		})
	}
}

// A DirStore keeps QoS 1/2 messages published while offline across the
// end of the Session; the next Session on the directory sends them.
func TestSessionDirStore(t *testing.T) {
	addr := startRestartBroker(t).addr
	got := collect(t, addr, packet.V311, "disk/#")
	dir := t.TempDir()
	st, err := OpenDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	never := make(chan struct{})
	s1, err := NewSession(SessionOptions{Options: Options{Dial: gatedDial(addr, never), ClientID: "disk"}, Store: st, Backoff: fastBackoff()})
	if err != nil {
		t.Fatal(err)
	}
	queued, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 4 {
		s1.Publish(queued, &packet.Publish{Topic: "disk/t", QoS: byte(1 + i%2), Payload: fmt.Appendf(nil, "d%d", i),
			Properties: packet.Properties{User: []packet.UserProperty{{Key: "k", Value: "v"}}}})
	}
	s1.Close()
	if ents, _ := os.ReadDir(dir); len(ents) != 4 {
		t.Fatalf("%d files in the store, want 4", len(ents))
	}

	st2, _ := OpenDirStore(dir)
	s2 := newTestSession(t, SessionOptions{Options: Options{Address: addr, ClientID: "disk"}, Store: st2})
	expectPayloads(t, got, "d0", "d1", "d2", "d3")
	if err := s2.Disconnect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("%d files left in the store", len(ents))
	}
}
