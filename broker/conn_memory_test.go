package broker_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/internal/testpki"
	"github.com/ternmq/tern/listener"
	"github.com/ternmq/tern/packet"
)

// BenchmarkIdleConnectionMemory reports the broker-side memory (heap plus
// goroutine stacks, client side excluded as far as possible) of idle
// connections with one subscription each.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	br := mt.StartBroker(b, broker.Options{})
	measureIdle(b, func() (net.Conn, error) { return net.Dial("tcp", br.Addr) })
}

// BenchmarkIdleConnectionMemoryTLS is the same over TLS (ECDSA P-256,
// TLS 1.3); the client side's TLS state is counted too.
func BenchmarkIdleConnectionMemoryTLS(b *testing.B) {
	pki := testpki.New(b, "idle")
	srv := pki.Server("server", "localhost")
	ln, err := listener.Listen(listener.Config{Type: "tls", Address: "127.0.0.1:0",
		TLS: listener.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}})
	if err != nil {
		b.Fatal(err)
	}
	br, err := broker.New(broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	go br.Serve(ln)
	b.Cleanup(func() { br.Close() })
	cfg := pki.ClientConfig()
	cfg.ServerName = "localhost"
	measureIdle(b, func() (net.Conn, error) { return tls.Dial("tcp", ln.Addr().String(), cfg) })
}

func measureIdle(b *testing.B, dial func() (net.Conn, error)) {
	const n = 2000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	connect := func(i int) net.Conn {
		c, err := dial()
		if err != nil {
			b.Fatal(err)
		}
		w, _ := (&packet.Connect{ProtocolLevel: 4, ClientID: fmt.Sprint("idle-", i), CleanStart: true, KeepAlive: 600}).Append(nil, 4)
		w, _ = (&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: fmt.Sprintf("idle/%d/cmd", i), QoS: 1}}}).Append(w, 4)
		c.Write(w)
		var buf [9]byte // CONNACK (4) + SUBACK (5)
		for got := 0; got < len(buf); {
			k, err := c.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += k
		}
		return c
	}
	for range b.N {
		measure := func() (heap, stack, other int64) {
			// Stacks shrink by half per GC while mostly unused: settle them.
			for range 4 {
				runtime.GC()
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return int64(ms.HeapInuse), int64(ms.StackInuse), int64(ms.OtherSys)
		}
		h0, s0, o0 := measure()
		for i := range n {
			conns = append(conns, connect(len(conns)+i))
		}
		h1, s1, o1 := measure()
		// The client side of each loopback connection lives in this process
		// too, but holds only a net.Conn (no goroutine, no buffer).
		b.ReportMetric(float64(h1-h0)/n, "heap-bytes/conn")
		b.ReportMetric(float64(s1-s0)/n, "stack-bytes/conn")
		b.ReportMetric(float64(h1+s1-h0-s0)/n, "bytes/conn")
		// Off the heap: the runtime's poll descriptors (512 bytes a
		// socket it watches; the client's side counts here too, one a
		// connection).
		b.ReportMetric(float64(o1-o0)/n, "offheap-bytes/conn")
	}
}

// TestChurnReleasesConnections checks that a connection is garbage as soon
// as it has ended: no timer (keep alive, flush, linger, write deadline)
// may hold it, its buffers or its session until it fires. The live heap
// right after the last of many connect/DISCONNECT cycles is back at its
// baseline, give or take a bound far below one connection per cycle.
func TestChurnReleasesConnections(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		br := mt.StartBroker(t, broker.Options{})
		cycle := func(i int) {
			c, err := net.Dial("tcp", br.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			w, _ := (&packet.Connect{ProtocolLevel: v, ClientID: fmt.Sprint("churn-", i), CleanStart: true, KeepAlive: 60}).Append(nil, v)
			w, _ = (&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: fmt.Sprintf("churn/%d/#", i), QoS: 1}}}).Append(w, v)
			if _, err := c.Write(w); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			for range 2 { // CONNACK, SUBACK
				if _, err := packet.ReadPacket(br, v, 0); err != nil {
					t.Fatal(err)
				}
			}
			// Parked by now, most times: in the poller and the keep-alive
			// wheel.
			w, _ = (&packet.Disconnect{}).Append(nil, v)
			if _, err := c.Write(w); err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, c) // the broker's FIN
		}
		settled := func() {
			mt.Eventually(t, "every connection served to its end", func() bool { return br.LiveConns() == 0 })
			if st := br.Stats(); st.Connections != 0 || st.Sessions != 0 {
				t.Fatalf("%d connections and %d sessions left", st.Connections, st.Sessions)
			}
		}
		for i := range 200 { // warm up pools and the runtime's caches
			cycle(i)
		}
		settled()
		before := mt.HeapAlloc()
		n := 5000
		if testing.Short() {
			n = 1000
		}
		for i := range n {
			cycle(i)
		}
		settled()
		// No waiting for timers: this is right after the last close.
		mt.HeapBound(t, fmt.Sprintf("%d connect/DISCONNECT cycles", n), before, int64(n)*200)
	}, packet.V311, packet.V5)
}

// TestIdleConnectionHeapBound: an idle connection with one subscription
// parks, so it holds no goroutine, and the heap it costs stays within a
// generous bound (about 2 KB here for both ends of the connection, which
// are in this process; it was 5.5-7.5 KB with a goroutine and buffers per
// connection): a regression to a goroutine or a buffer per idle
// connection fails it.
func TestIdleConnectionHeapBound(t *testing.T) {
	br := mt.StartBroker(t, broker.Options{})
	const n = 1000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	open := func(i int) {
		c, err := net.Dial("tcp", br.Addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		w, _ := (&packet.Connect{ProtocolLevel: 4, ClientID: fmt.Sprint("idle-", i), CleanStart: true, KeepAlive: 600}).Append(nil, 4)
		w, _ = (&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: fmt.Sprintf("idle/%d/cmd", i), QoS: 1}}}).Append(w, 4)
		if _, err := c.Write(w); err != nil {
			t.Fatal(err)
		}
		var buf [9]byte // CONNACK (4) + SUBACK (5)
		if _, err := io.ReadFull(c, buf[:]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 { // warm up pools, the poller, the keep-alive wheel
		open(i)
	}
	measure := func() (heap, stack int64, goroutines int) {
		for range 4 { // stacks shrink by half per GC while mostly unused
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc), int64(ms.StackInuse), runtime.NumGoroutine()
	}
	h0, s0, g0 := measure()
	for i := range n {
		open(50 + i)
	}
	mt.Eventually(t, "connections parked", func() bool { return runtime.NumGoroutine() < g0+n/10 })
	h1, s1, g1 := measure()
	perConn := float64(h1-h0+s1-s0) / n
	t.Logf("%d idle connections: %.0f heap + stack bytes each (both ends), %d goroutines more", n, perConn, g1-g0)
	if g1-g0 > n/10 {
		t.Errorf("%d goroutines more for %d idle connections: they do not park", g1-g0, n)
	}
	if perConn > 3500 {
		t.Errorf("%.0f heap + stack bytes per idle connection, want at most 3500", perConn)
	}
}

// TestTrimAfterBurst: once a burst of connections has ended, the broker
// collects and returns the memory left free to the system (a forced
// collection: debug.FreeOSMemory).
func TestTrimAfterBurst(t *testing.T) {
	br := mt.StartBroker(t, broker.Options{})
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 1000 // the smallest burst trimmed
	for i := range n {
		c := mt.Dial(t, br.Addr, packet.V311)
		c.Connect(fmt.Sprint("burst-", i), true)
	}
	mt.Eventually(t, "a collection after the burst", func() bool {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.NumForcedGC > before.NumForcedGC
	})
}
