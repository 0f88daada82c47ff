package broker_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store/pebble"
)

// scaleTopic is the i-th retained topic of the scale test: 4 to 6
// levels, one device per message (few shared levels: the tree's worst
// case for its size).
func scaleTopic(i int) string {
	base := "site/" + strconv.Itoa(i/10000) + "/dev/" + strconv.Itoa(i)
	switch i % 3 {
	case 1:
		return base + "/temp"
	case 2:
		return base + "/sensor/0"
	}
	return base
}

// serveScale serves b on a loopback port and returns the address and a
// function that closes b and waits for Serve.
func serveScale(t *testing.T, b *broker.Broker) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Serve(ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			b.Close()
			if err := <-done; err != nil && !errors.Is(err, broker.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
			b = nil // for a closed broker's memory to be measured as freed
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// pingPong is a client publishing to a topic of its own at qos and
// waiting for the message to come back through its subscription.
type pingPong struct {
	r    *mt.Raw
	qos  byte
	id   uint16
	mu   sync.Mutex
	rtts []time.Duration
}

func (p *pingPong) roundTrip(t *testing.T) error {
	if p.id++; p.id == 0 {
		p.id = 1
	}
	topic := fmt.Sprintf("ping/%p", p)
	start := time.Now()
	p.r.Send(&packet.Publish{Topic: topic, QoS: p.qos, PacketID: p.id, Payload: []byte("ping")})
	for acked, got := p.qos == 0, false; !acked || !got; {
		pk, err := p.r.ReadWithin(30 * time.Second)
		if err != nil {
			return err
		}
		switch pk := pk.(type) {
		case *packet.Puback:
			acked = true
		case *packet.Publish:
			got = true
			if pk.QoS == 1 {
				p.r.Send(&packet.Puback{PacketID: pk.PacketID})
			}
		}
	}
	p.mu.Lock()
	p.rtts = append(p.rtts, time.Since(start))
	p.mu.Unlock()
	return nil
}

// take returns and forgets the round trips recorded so far.
func (p *pingPong) take() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rtts
	p.rtts = nil
	return r
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no round trips"
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return fmt.Sprintf("%d round trips, p50 %s, p99 %s, max %s", len(d), at(0.50), at(0.99), d[len(d)-1])
}

// dropTally counts the messages dropped on their way to the '#'
// subscriber of TestRetainedScale.
type dropTally struct{ retained, live atomic.Int64 }

func (d *dropTally) OnDrop(to *auth.Client, m *broker.Message, r broker.DropReason) {
	if to == nil || to.ClientID != "scale-sub" {
		return
	}
	if m.Retain {
		d.retained.Add(1)
	} else {
		d.live.Add(1)
	}
}

// pingEvery paces each of TestRetainedScale's ten ping-pong clients.
const pingEvery = 5 * time.Millisecond

// TestRetainedScale measures a large retained set (TERN_RETAINED_SCALE
// messages, e.g. 1000000; skipped when unset): heap per retained message,
// restart time with them in a pebble store, and a '#' subscriber
// (TERN_RETAINED_SCALE_QOS, default 1) receiving all of them while ten
// other clients make QoS 0 and 1 round trips (each one every pingEvery).
func TestRetainedScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TERN_RETAINED_SCALE"))
	if n <= 0 {
		t.Skip("set TERN_RETAINED_SCALE (e.g. 1000000) to run")
	}
	subQoS := byte(1)
	if os.Getenv("TERN_RETAINED_SCALE_QOS") == "0" {
		subQoS = 0
	}
	var drops dropTally
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := func(st *pebble.Store) broker.Options {
		return broker.Options{Store: st, Logger: quiet, MaxRetained: n + 100, MaxRetainedBytes: 1 << 40, Hooks: []any{&drops}}
	}

	st, err := pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := mt.HeapAlloc()
	b, err := broker.New(opts(st))
	if err != nil {
		t.Fatal(err)
	}
	addr, stop := serveScale(t, b)
	before := mt.HeapAlloc()

	// Set them through the broker: QoS 0 PUBLISH written in large
	// batches, then a QoS 1 one whose PUBACK says all were handled.
	pub := mt.Dial(t, addr, packet.V5)
	pub.Connect("scale-pub", true)
	payload := make([]byte, 64)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	start := time.Now()
	var buf []byte
	for i := range n {
		buf, _ = (&packet.Publish{Topic: scaleTopic(i), Retain: true, Payload: payload}).Append(buf, packet.V5)
		if len(buf) > 256<<10 || i == n-1 {
			pub.SendBytes(buf)
			buf = buf[:0]
		}
	}
	pub.Send(&packet.Publish{Topic: "scale/done", QoS: 1, PacketID: 1})
	for {
		if _, ok := pub.Read().(*packet.Puback); ok {
			break
		}
	}
	mt.Eventually(t, "all retained", func() bool { return b.Stats().Retained == int64(n) })
	setTime := time.Since(start)
	after := mt.HeapAlloc()
	levels, bytes := 0, 0
	for i := range n {
		tp := scaleTopic(i)
		levels += 1
		for _, c := range tp {
			if c == '/' {
				levels++
			}
		}
		bytes += len(tp) + len(payload)
	}
	estimate := float64(bytes+256*levels) / float64(n)
	t.Logf("set %d retained (64-byte payloads, %.1f levels on average) in %s (%.0f/s)",
		n, float64(levels)/float64(n), setTime, float64(n)/setTime.Seconds())
	t.Logf("heap: %.1f MiB before, %.1f MiB after: %.0f B per retained message (the limit counts %.0f B: topic+payload+256 B a level); broker without store: %.1f MiB",
		float64(before)/(1<<20), float64(after)/(1<<20), float64(after-before)/float64(n), estimate, float64(before-base)/(1<<20))

	// Restart: close, open the same store, New loads the retained set.
	pub.Conn.Close()
	stop()
	start = time.Now()
	st, err = pebble.Open(dir, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opened := time.Since(start)
	b, err = broker.New(opts(st))
	if err != nil {
		t.Fatal(err)
	}
	restart := time.Since(start)
	if got := b.Stats().Retained; got != int64(n) {
		t.Fatalf("after restart %d retained, want %d", got, n)
	}
	t.Logf("restart: %s (store open %s, load %s); heap after restart %.1f MiB (%.0f B per retained message)",
		restart, opened, restart-opened, float64(mt.HeapAlloc())/(1<<20), float64(mt.HeapAlloc()-base)/float64(n))
	if f := os.Getenv("TERN_RETAINED_SCALE_HEAP"); f != "" {
		// The heap once the restarted broker holds them, for go tool pprof.
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		pprof.WriteHeapProfile(out)
		out.Close()
	}
	addr, _ = serveScale(t, b)

	// Ten clients ping-pong, five at QoS 0 and five at QoS 1.
	var pingers []*pingPong
	for i := range 10 {
		p := &pingPong{r: mt.Dial(t, addr, packet.V5), qos: byte(i % 2)}
		p.r.Connect(fmt.Sprint("pinger-", i), true)
		p.r.Subscribe(1, p.qos, fmt.Sprintf("ping/%p", p))
		pingers = append(pingers, p)
	}
	var quit atomic.Bool
	var wg sync.WaitGroup
	for _, p := range pingers {
		wg.Go(func() {
			// Paced, not flat out: the latency of a steady load, not
			// how much a saturated machine has left over.
			tick := time.NewTicker(pingEvery)
			defer tick.Stop()
			for !quit.Load() {
				if err := p.roundTrip(t); err != nil {
					t.Errorf("ping-pong: %v", err)
					return
				}
				<-tick.C
			}
		})
	}
	collect := func() (q0, q1 []time.Duration) {
		for _, p := range pingers {
			if p.qos == 0 {
				q0 = append(q0, p.take()...)
			} else {
				q1 = append(q1, p.take()...)
			}
		}
		return q0, q1
	}
	time.Sleep(3 * time.Second)
	q0, q1 := collect()
	t.Logf("ping-pong before the drain: QoS 0: %s; QoS 1: %s", percentiles(q0), percentiles(q1))

	// The '#' subscriber, reading and acknowledging as fast as it can.
	sub := mt.Dial(t, addr, packet.V5)
	sub.Connect("scale-sub", true)
	start = time.Now()
	sub.Send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "#", QoS: subQoS}}})
	got := 0
	var first time.Duration
	for got < n {
		pk, err := sub.ReadWithin(60 * time.Second)
		if err != nil {
			t.Fatalf("'#' subscriber after %d of %d retained: %v", got, n, err)
		}
		if p, ok := pk.(*packet.Publish); ok {
			if p.Retain {
				if got++; got == 1 {
					first = time.Since(start)
				}
			}
			if p.QoS == 1 {
				sub.Send(&packet.Puback{PacketID: p.PacketID})
			}
		}
	}
	drain := time.Since(start)
	q0, q1 = collect()
	quit.Store(true)
	wg.Wait()
	t.Logf("'#' subscriber at QoS %d received all %d retained in %s (%.0f/s), the first after %s", subQoS, n, drain, float64(n)/drain.Seconds(), first)
	t.Logf("ping-pong during the drain: QoS 0: %s; QoS 1: %s", percentiles(q0), percentiles(q1))
	t.Logf("dropped: %+v; of them to the '#' subscriber: %d retained, %d live", b.Stats().Dropped, drops.retained.Load(), drops.live.Load())
	if n := drops.retained.Load(); n != 0 {
		t.Errorf("%d retained messages dropped", n)
	}
}
