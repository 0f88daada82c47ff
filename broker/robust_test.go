package broker_test

import (
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// TestSilentConnections: thousands of connections that never send
// CONNECT are closed once ConnectTimeout passes and cost little while
// they wait; a second wave leaves memory where the first left it (the
// runtime keeps exited goroutines for reuse, so the first wave's high
// water mark stays).
func TestSilentConnections(t *testing.T) {
	const n = 2000
	b := mt.StartBroker(t, broker.Options{ConnectTimeout: time.Second})
	silentWave(t, b, n)
	first := liveBytes()
	silentWave(t, b, n)
	// The client sees EOF a moment before the broker's side of the last
	// connections is gone: give that a moment on a busy machine.
	// A leak would be kilobytes a connection; the runtime's own caches
	// (goroutines, timers) may still grow a little, about 270 bytes a
	// connection seen under -race.
	const bound = n * 512
	grown := liveBytes() - first
	for deadline := time.Now().Add(3 * time.Second); grown > bound && time.Now().Before(deadline); grown = liveBytes() - first {
		time.Sleep(100 * time.Millisecond)
	}
	if grown > bound {
		t.Errorf("memory grew by %d bytes over a second wave of %d silent connections", grown, n)
	}
	// A real client is still served.
	c := mt.Dial(t, b.Addr, packet.V311)
	if ack := c.Connect("after", true); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %v", ack.ReasonCode)
	}
}

// silentWave opens n connections that send nothing and waits until the
// broker has closed every one of them.
func silentWave(t *testing.T, b *mt.Broker, n int) {
	base := liveBytes()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", b.Addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Both ends live in this process: the client side costs too, so this
	// bounds the broker's share from above.
	perConn := (liveBytes() - base) / int64(n)
	t.Logf("%d silent connections: %d bytes each (both ends)", n, perConn)
	if perConn > 32<<10 {
		t.Errorf("%d bytes per silent connection", perConn)
	}
	var wg sync.WaitGroup
	closed := make(chan struct{}, n)
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == io.EOF {
				closed <- struct{}{}
			}
		})
	}
	wg.Wait()
	if len(closed) != n {
		t.Fatalf("%d of %d silent connections closed by the broker", len(closed), n)
	}
}

// liveBytes is heap plus goroutine stacks in use, after a collection.
func liveBytes() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// TestFloodFairness: one client publishing as fast as it can does not
// hold up others: every probe message of another pair still arrives, in
// well under a second (a bound against starvation, not a speed goal).
func TestFloodFairness(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	sink, flooder := pair(t, b, packet.V311, "flood", 0)
	_ = sink // subscribed, reading nothing: its output limit drops QoS 0
	stop := make(chan struct{})
	var flooding sync.WaitGroup
	flooding.Go(func() {
		one, _ := (&packet.Publish{Topic: "flood", Payload: make([]byte, 256)}).Append(nil, packet.V311)
		burst := make([]byte, 0, 64*len(one))
		for range 64 {
			burst = append(burst, one...)
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			flooder.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := flooder.Conn.Write(burst); err != nil {
				return
			}
		}
	})
	defer func() { close(stop); flooding.Wait() }()

	mt.Eventually(t, "flood under way", func() bool { return b.Stats().MessagesIn > 5000 })
	probe := mt.Dial(t, b.Addr, packet.V311)
	probe.Connect("probe", true)
	probe.Subscribe(1, 1, "probe")
	var worst time.Duration
	for i := range 200 {
		start := time.Now()
		probe.Send(&packet.Publish{Topic: "probe", QoS: 1, PacketID: uint16(i + 1), Payload: []byte("p")})
		for got := 0; got < 2; got++ { // the PUBACK and the message itself
			switch p := probe.Read().(type) {
			case *packet.Publish:
				probe.Send(&packet.Puback{PacketID: p.PacketID})
			case *packet.Puback:
			default:
				t.Fatalf("got %T", p)
			}
		}
		worst = max(worst, time.Since(start))
	}
	t.Logf("worst probe round trip during the flood: %s; messages in: %d", worst, b.Stats().MessagesIn)
	if worst > time.Second {
		t.Fatalf("a probe took %s during the flood", worst)
	}
}
