package broker_test

// Adversarial tests: a running broker on a real socket is attacked the
// way a stranger on the network could (half-sent headers declaring huge
// lengths, deep and long topics, many filters, many retained topics, a
// flood of CONNECTs). Each test checks that what the attack makes the
// broker hold is bounded by the configured limits, measuring the heap
// with the attack's connections still open, and that a bystander client
// keeps being served. Nothing asserts on time: round-trip latencies are
// logged, and each round trip need only finish within a generous
// deadline.

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// newBystander connects a bystander to b with client id name.
func newBystander(t *testing.T, b *mt.Broker, name string) *mt.Bystander {
	t.Helper()
	c, err := net.DialTimeout("tcp", b.Addr, mt.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	return mt.NewBystander(t, c, name)
}

// dialN opens n TCP connections to addr; they are closed when the test
// ends.
func dialN(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, mt.Timeout)
		if err != nil {
			t.Fatalf("dial after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	return conns
}

// closedByPeer reports whether the broker has closed c: a read ends in EOF
// or a reset rather than the deadline.
func closedByPeer(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64)
	for {
		if _, err := c.Read(buf); err != nil {
			ne, ok := err.(net.Error)
			return !ok || !ne.Timeout()
		}
	}
}

// connectHead is the start of a CONNECT whose fixed header declares a
// remaining length of body bytes, followed by the variable header of a
// 3.1.1 CONNECT and pad bytes of payload: sent bytes in all, of which
// the broker will never see the rest.
func connectHead(body, sent int) []byte {
	b := []byte{0x10}
	b = packet.AppendVarint(b, uint32(body))
	b = append(b, 0, 4, 'M', 'Q', 'T', 'T', packet.V311, 0x02, 0, 30)
	return append(b, make([]byte, sent-len(b))...)
}

// TestAdversarialHugeDeclaredLength: 200 connections each send a CONNECT
// fixed header declaring the largest remaining length the protocol can
// carry (268,435,455 bytes) and 4 KB of its body, then stall. Under the
// default MaxConnectSize (64 KiB) each is closed as soon as its header
// is read, nothing is reserved, and the heap does not grow with what was
// declared. 200 more declaring just under MaxConnectSize are held (each
// reserves its declared body from MaxPreAuthMemory) but cost only what
// they sent.
func TestAdversarialHugeDeclaredLength(t *testing.T) {
	const n, sent = 200, 4 << 10
	b := mt.StartBroker(t, broker.Options{})
	by := newBystander(t, b, "huge-length")
	by.RoundTrips(10)

	t.Run("beyond MaxConnectSize", func(t *testing.T) {
		head := connectHead(packet.MaxVarint, sent)
		before := mt.HeapAlloc()
		conns := dialN(t, b.Addr, n)
		for _, c := range conns {
			c.Write(head) // the broker may close before it is all read
		}
		waitFor(t, time.Minute, "every huge CONNECT to be refused", func() bool { return b.Stats().RefusedConnects.ConnectSize == n })
		if s := b.Stats(); s.PreAuthMemory != 0 {
			t.Errorf("PreAuthMemory %d after refusing every huge CONNECT, want 0", s.PreAuthMemory)
		}
		by.RoundTrips(10)
		// Nothing is kept for a refused connection: what remains is the
		// client ends, still open, and their unread 4 KB.
		mt.HeapBound(t, fmt.Sprintf("%d CONNECTs declaring %d bytes (client ends open)", n, packet.MaxVarint), before, n*(sent+4<<10))
		for i, c := range conns {
			if !closedByPeer(c, mt.Timeout) {
				t.Fatalf("connection %d declaring %d bytes still open", i, packet.MaxVarint)
			}
		}
	})

	t.Run("within MaxConnectSize", func(t *testing.T) {
		const declared = 64<<10 - 16
		head := connectHead(declared, sent)
		// The header and one byte first, so that each connection
		// reserves all of its declared body but that byte; the rest of
		// what it sends then arrives into the packet reader.
		split := 1 + len(packet.AppendVarint(nil, declared)) + 1
		before := mt.HeapAlloc()
		conns := dialN(t, b.Addr, n)
		for _, c := range conns {
			if _, err := c.Write(head[:split]); err != nil {
				t.Fatal(err)
			}
		}
		want := int64(n) * (declared - 1)
		waitFor(t, time.Minute, "every CONNECT to reserve its declared body", func() bool { return b.Stats().PreAuthMemory == want })
		for _, c := range conns {
			if _, err := c.Write(head[split:]); err != nil {
				t.Fatal(err)
			}
		}
		by.RoundTrips(10)
		// Each connection holds what it sent (its partial body, read
		// into a buffer doubled as bytes arrive: at most three times
		// what was sent), never what it declared: 200 x 64 KiB would
		// be 12.5 MiB.
		mt.HeapBound(t, fmt.Sprintf("%d half-sent CONNECTs declaring %d bytes, %d sent (both ends)", n, declared, sent), before, n*(3*sent+8<<10))
		t.Logf("PreAuthMemory reserved: %d bytes of %d", b.Stats().PreAuthMemory, int64(64<<20))
		for _, c := range conns {
			c.Close()
		}
		waitFor(t, time.Minute, "the reservations to be released", func() bool { return b.Stats().PreAuthMemory == 0 })
	})
	by.RoundTrips(10)
	by.Report()
}

// refusedName is the PUBACK reason code for a topic name beyond the
// configured bounds: v5 says why, 3.1.1 has no way to refuse and
// acknowledges (and drops) it.
func refusedName(v byte) packet.ReasonCode {
	if v == packet.V5 {
		return packet.TopicNameInvalid
	}
	return packet.Success
}

// refusedFilter is the SUBACK code for a filter beyond the bounds.
func refusedFilter(v byte) packet.ReasonCode {
	if v == packet.V5 {
		return packet.TopicFilterInvalid
	}
	return packet.SubackFailure
}

// topicAttack publishes each of bad retained at QoS 1, times times, from
// an anonymous client of version v, and checks each is refused, kept
// nowhere and delivered to no one, while ok (just within the bounds) is;
// then it subscribes to each bad name as a filter and checks that is
// refused too.
func topicAttack(t *testing.T, v byte, times int, bad []string, ok string) {
	b := mt.StartBroker(t, broker.Options{})
	by := newBystander(t, b, "topics")
	by.RoundTrips(10)
	watcher := mt.Dial(t, b.Addr, v)
	watcher.Connect("watcher", true)
	watcher.Subscribe(1, 1, "#")

	before := mt.HeapAlloc()
	attacker := mt.Dial(t, b.Addr, v)
	attacker.Connect("", true)
	id := uint16(0)
	for range times {
		for _, name := range bad {
			id++
			attacker.Send(&packet.Publish{Topic: name, QoS: 1, Retain: true, PacketID: id, Payload: []byte("x")})
			if ack := mt.Expect[*packet.Puback](attacker); ack.ReasonCode != refusedName(v) {
				t.Fatalf("PUBACK %#x for a topic of %d levels, %d bytes; want %#x",
					byte(ack.ReasonCode), strings.Count(name, "/")+1, len(name), byte(refusedName(v)))
			}
		}
		by.RoundTrips(1)
	}
	if s := b.Stats(); s.Retained != 0 {
		t.Fatalf("%d retained after refused publishes, want 0", s.Retained)
	}
	// Refused topics cost nothing that stays: the packets read and
	// dropped are garbage. (With the topic limits switched off, the
	// deep attack keeps a retained tree of about 18 MiB; before
	// MaxRetainedBytes counted levels, about 176 MiB.)
	mt.HeapBound(t, fmt.Sprintf("%d refused retained publishes (attacker still connected)", times*len(bad)), before, 4<<20)

	for _, name := range bad {
		id++
		if ack := attacker.Subscribe(id, 1, name); ack.ReasonCodes[0] != refusedFilter(v) {
			t.Fatalf("SUBACK %#x for a filter of %d levels, %d bytes; want %#x",
				byte(ack.ReasonCodes[0]), strings.Count(name, "/")+1, len(name), byte(refusedFilter(v)))
		}
	}

	// Just within the bounds is kept and delivered, and is the first
	// thing the watcher sees: nothing refused reached it.
	id++
	attacker.Send(&packet.Publish{Topic: ok, QoS: 1, Retain: true, PacketID: id, Payload: []byte("ok")})
	if ack := mt.Expect[*packet.Puback](attacker); ack.ReasonCode != packet.Success {
		t.Fatalf("PUBACK %#x within the bounds", byte(ack.ReasonCode))
	}
	p := mt.Expect[*packet.Publish](watcher)
	for p.Topic == by.Topic { // the bystander's own round trips
		watcher.Send(&packet.Puback{PacketID: p.PacketID})
		p = mt.Expect[*packet.Publish](watcher)
	}
	if p.Topic != ok {
		t.Fatalf("watcher got a topic of %d bytes, want the one within the bounds", len(p.Topic))
	}
	watcher.Send(&packet.Puback{PacketID: p.PacketID})
	if s := b.Stats(); s.Retained != 1 {
		t.Fatalf("%d retained, want 1", s.Retained)
	}
	by.RoundTrips(10)
	by.Report()
}

// TestAdversarialDeepTopics: an anonymous client publishes retained
// messages on a topic of 65,000 levels ("/" repeated) 10 times, and on
// one of 129 levels: both beyond the default MaxTopicLevels (128), so
// refused (v5 PUBACK 0x90; 3.1.1 acknowledged and dropped), not
// retained, and the heap stays within a few MB. 128 levels are kept.
func TestAdversarialDeepTopics(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		deep := strings.Repeat("/", 64_999)       // 65,000 empty levels
		over := strings.Repeat("a/", 128) + "a"   // 129 levels
		within := strings.Repeat("a/", 127) + "a" // 128 levels
		topicAttack(t, v, 10, []string{deep, over}, within)
	}, packet.V311, packet.V5)
}

// TestAdversarialLongTopics: topics of 4097 bytes, beyond the default
// MaxTopicLength (4096), in one level and in two, are refused like deep
// ones; 4096 bytes are kept.
func TestAdversarialLongTopics(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		long := strings.Repeat("l", 4097)
		split := strings.Repeat("l", 2048) + "/" + strings.Repeat("l", 2048)
		within := strings.Repeat("l", 4096)
		topicAttack(t, v, 10, []string{long, split}, within)
	}, packet.V311, packet.V5)
}

// TestAdversarialManyFilters: one SUBSCRIBE carrying 5,000 filters (about
// 50 KB, well within the maximum packet size) is granted the default
// MaxFiltersPerSubscribe (100), the rest refused (v5 0x97, 3.1.1 0x80);
// SUBSCRIBEs adding up to 2,000 distinct filters leave the session
// holding the default MaxSubscriptions (1,000).
func TestAdversarialManyFilters(t *testing.T) {
	mt.Versions(t, func(t *testing.T, v byte) {
		const many, distinct = 5000, 2000
		refused := packet.SubackFailure
		if v == packet.V5 {
			refused = packet.QuotaExceeded
		}
		b := mt.StartBroker(t, broker.Options{})
		by := newBystander(t, b, "filters")
		by.RoundTrips(10)
		base := b.Stats().Subscriptions

		before := mt.HeapAlloc()
		one := mt.Dial(t, b.Addr, v)
		one.Connect("one-subscribe", true)
		filters := make([]string, many)
		for i := range filters {
			filters[i] = fmt.Sprintf("f/%d/+", i)
		}
		ack := one.Subscribe(1, 1, filters...)
		granted := 0
		for i, code := range ack.ReasonCodes {
			switch {
			case code == 1:
				granted++
			case code != refused:
				t.Fatalf("filter %d: SUBACK %#x", i, byte(code))
			}
		}
		if len(ack.ReasonCodes) != many || granted != 100 {
			t.Fatalf("%d codes, %d granted; want %d, 100", len(ack.ReasonCodes), granted, many)
		}
		if n := b.Stats().Subscriptions - base; n != 100 {
			t.Fatalf("%d subscriptions held, want 100", n)
		}
		by.RoundTrips(10)
		mt.HeapBound(t, fmt.Sprintf("one SUBSCRIBE of %d filters (subscriber connected)", many), before, 2<<20)

		before = mt.HeapAlloc()
		spread := mt.Dial(t, b.Addr, v)
		spread.Connect("many-subscribes", true)
		granted = 0
		for k := range distinct / 100 {
			fs := make([]string, 100)
			for i := range fs {
				fs[i] = fmt.Sprintf("g/%d/#", k*100+i)
			}
			for _, code := range spread.Subscribe(uint16(k+1), 1, fs...).ReasonCodes {
				if code == 1 {
					granted++
				} else if code != refused {
					t.Fatalf("SUBACK %#x", byte(code))
				}
			}
			if k%5 == 0 {
				by.RoundTrips(1)
			}
		}
		if granted != 1000 {
			t.Fatalf("%d of %d distinct filters granted, want 1000", granted, distinct)
		}
		if n := b.Stats().Subscriptions - base; n != 1100 {
			t.Fatalf("%d subscriptions held, want 1100 (100 + 1000)", n)
		}
		// MaxSubscriptions bounds what one session holds: 1,000 filters
		// of a few bytes, each a trie entry and a session record.
		mt.HeapBound(t, fmt.Sprintf("%d distinct filters in SUBSCRIBEs of 100 (subscriber connected)", distinct), before, 1000*2<<10)
		by.RoundTrips(10)
		by.Report()
	}, packet.V311, packet.V5)
}

// TestAdversarialManyRetained: with MaxRetained set to 1,000 (the default
// is a million: too many for a quick test), 2,000 distinct retained
// topics are published; 1,000 are kept, 1,000 refused (delivered, not
// kept, counted), the refused ones cost no heap, and a new subscriber to
// "#" gets the 1,000 kept.
func TestAdversarialManyRetained(t *testing.T) {
	const limit, n = 1000, 2000
	b := mt.StartBroker(t, broker.Options{MaxRetained: limit})
	by := newBystander(t, b, "retained")
	by.RoundTrips(10)

	pub := mt.Dial(t, b.Addr, packet.V5)
	pub.Connect("retainer", true)
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			pub.Send(&packet.Publish{Topic: fmt.Sprintf("r/%d/x", i), QoS: 1, Retain: true,
				PacketID: uint16(i + 1), Payload: []byte("retained payload")})
		}
		for i := from; i < to; i++ {
			if ack := mt.Expect[*packet.Puback](pub); ack.ReasonCode != packet.Success {
				t.Fatalf("PUBACK %#x", byte(ack.ReasonCode))
			}
		}
	}
	before := mt.HeapAlloc()
	publish(0, limit)
	kept := mt.HeapAlloc()
	by.RoundTrips(10)
	publish(limit, n)
	by.RoundTrips(10)
	s := b.Stats()
	if s.Retained != limit || s.Dropped.RetainedFull != n-limit {
		t.Fatalf("Retained %d, RetainedRefused %d; want %d, %d", s.Retained, s.Dropped.RetainedFull, limit, n-limit)
	}
	// The kept ones cost about their retainedCost (topic, payload and
	// 256 bytes a level) in the tree and again in the store.
	mt.HeapBound(t, fmt.Sprintf("%d retained kept", limit), before, limit*4<<10)
	mt.HeapBound(t, fmt.Sprintf("%d retained refused beyond them", n-limit), kept, 256<<10)

	sub := mt.Dial(t, b.Addr, packet.V5)
	sub.Connect("late", true)
	sub.Subscribe(1, 0, "#")
	got := map[string]bool{}
	for len(got) < limit {
		p := mt.Expect[*packet.Publish](sub)
		if !p.Retain {
			t.Fatalf("got %q without RETAIN", p.Topic)
		}
		got[p.Topic] = true
	}
	// A sentinel published now comes after every retained message: none
	// beyond the limit was sent.
	pub.Send(&packet.Publish{Topic: "sentinel", QoS: 1, PacketID: 1})
	mt.Expect[*packet.Puback](pub)
	if p := mt.Expect[*packet.Publish](sub); p.Topic != "sentinel" {
		t.Fatalf("after %d retained, got %q (retain %v), want the sentinel", limit, p.Topic, p.Retain)
	}
	for i := range limit {
		if !got[fmt.Sprintf("r/%d/x", i)] {
			t.Fatalf("retained r/%d/x missing", i)
		}
	}
	by.RoundTrips(10)
	by.Report()
}

// TestAdversarialConnectFlood: 2,000 connections opened as fast as
// possible from 8 goroutines while a bystander keeps making round trips.
// First each sends a valid CONNECT and closes at once; then each stays
// half-open, half of them sending nothing and half a partial CONNECT,
// until the ConnectTimeout (shortened to 2 s for the test) closes them.
// Connections, sessions, the pre-CONNACK budget and goroutines return to
// the bystander's, and the half-open ones cost a bounded few KB each.
func TestAdversarialConnectFlood(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 500
	}
	const workers = 8
	const connectTimeout = 2 * time.Second
	b := mt.StartBroker(t, broker.Options{ConnectTimeout: connectTimeout})
	by := newBystander(t, b, "flood")
	by.RoundTrips(10)
	goroutines := runtime.NumGoroutine()

	// flood runs open on n connections from workers goroutines while the
	// bystander makes round trips, and returns the first error.
	flood := func(open func(i int) error) error {
		var next atomic.Int64
		var firstErr error
		var once sync.Once
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					if err := open(i); err != nil {
						once.Do(func() { firstErr = err })
						return
					}
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for {
			select {
			case <-done:
				return firstErr
			default:
				by.RoundTrips(1)
			}
		}
	}

	t.Run("connect and close", func(t *testing.T) {
		total := b.Stats().ConnectionsTotal
		err := flood(func(i int) error {
			c, err := net.DialTimeout("tcp", b.Addr, mt.Timeout)
			if err != nil {
				return err
			}
			defer c.Close()
			wire, _ := (&packet.Connect{ProtocolLevel: packet.V311, ClientID: fmt.Sprint("flood-", i), CleanStart: true}).Append(nil, packet.V311)
			_, err = c.Write(wire)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the flood's connections to end", func() bool {
			s := b.Stats()
			return s.Connections == 1 && s.Sessions == 1 && s.PreAuthMemory == 0
		})
		by.RoundTrips(10)
		t.Logf("%d CONNECT-and-close: %d CONNECTs accepted", n, b.Stats().ConnectionsTotal-total)
	})

	t.Run("half-open", func(t *testing.T) {
		partial, _ := (&packet.Connect{ProtocolLevel: packet.V311, ClientID: "half", CleanStart: true,
			Will: &packet.Will{Topic: "w", Payload: make([]byte, 1000)}}).Append(nil, packet.V311)
		partial = partial[:len(partial)/2]
		conns := make([]net.Conn, n)
		t.Cleanup(func() {
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
		})
		before := mt.HeapAlloc()
		err := flood(func(i int) error {
			c, err := net.DialTimeout("tcp", b.Addr, mt.Timeout)
			if err != nil {
				return err
			}
			conns[i] = c
			if i%2 == 1 {
				_, err = c.Write(partial)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// Measured at once, with every connection still open unless
		// ConnectTimeout already ended the earliest ones: a bound from
		// above on what each holds (both ends).
		grown := mt.HeapAlloc() - before
		t.Logf("%d half-open connections: heap grew by %d bytes, %d per connection (both ends); PreAuthMemory %d",
			n, grown, grown/int64(n), b.Stats().PreAuthMemory)
		if grown > int64(n)*16<<10 {
			t.Errorf("%d bytes per half-open connection, want under 16 KiB", grown/int64(n))
		}
		for i, c := range conns {
			if !closedByPeer(c, connectTimeout+mt.BystanderDeadline) {
				t.Fatalf("half-open connection %d still open after ConnectTimeout", i)
			}
		}
		waitFor(t, time.Minute, "the broker to let go of the half-open connections", func() bool {
			s := b.Stats()
			// A few goroutines of the bystander's come and go.
			return s.Connections == 1 && s.PreAuthMemory == 0 && runtime.NumGoroutine() <= goroutines+10
		})
		by.RoundTrips(10)
	})
	if s := b.Stats(); s.Connections != 1 || s.Sessions != 1 {
		t.Fatalf("Connections %d, Sessions %d after the flood; want 1, 1 (the bystander)", s.Connections, s.Sessions)
	}
	by.Report()
}
