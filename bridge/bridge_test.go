package bridge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/client"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

func testLog() *slog.Logger {
	if os.Getenv("TERN_BRIDGE_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// counter subscribes and counts what arrives, by payload.
type counter struct {
	mu   sync.Mutex
	seen map[string]int
	s    *client.Session
}

func (c *counter) add(p *packet.Publish) {
	c.mu.Lock()
	c.seen[string(p.Payload)]++
	c.mu.Unlock()
}

// count returns how many distinct payloads with prefix arrived and how
// many arrived more than once.
func (c *counter) count(prefix string) (distinct, dups int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, n := range c.seen {
		if strings.HasPrefix(k, prefix) {
			distinct++
			dups += n - 1
		}
	}
	return
}

// subscribe connects a persistent subscriber to addr and subscribes to
// filter at QoS 2.
func subscribe(t *testing.T, addr, id string, version byte, filter string) *counter {
	t.Helper()
	c := &counter{seen: make(map[string]int)}
	o := client.SessionOptions{Options: client.Options{Address: addr, ClientID: id, Version: version, OnMessage: c.add}}
	if version == packet.V5 {
		o.Properties.SessionExpiry = new(uint32(3600))
	}
	s, err := client.NewSession(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c.s = s
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Subscribe(ctx, packet.Subscription{Filter: filter, QoS: 2}); err != nil {
		t.Fatal(err)
	}
	return c
}

func publisher(t *testing.T, addr string, version byte) *client.Session {
	t.Helper()
	// MaxInflight as Mosquitto's own clients (see client.Options.MaxInflight).
	s, err := client.NewSession(client.SessionOptions{Options: client.Options{Address: addr, Version: version, MaxInflight: 20}, MaxQueued: 100000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// publishN publishes n messages "<prefix><i>" to topic at qos, all queued
// at once, and waits for every flow to complete.
func publishN(t *testing.T, s *client.Session, topic, prefix string, qos byte, n int) {
	t.Helper()
	var dones []<-chan error
	for i := range n {
		d, err := s.Queue(&packet.Publish{Topic: topic, QoS: qos, Payload: fmt.Appendf(nil, "%s%d", prefix, i)})
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, d)
	}
	for _, d := range dones {
		select {
		case err := <-d:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("publish not acknowledged within 30 s")
		}
	}
}

// await waits until c has n distinct payloads with prefix.
func await(t *testing.T, c *counter, prefix string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _ := c.count(prefix)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d arrived", prefix, got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// probe publishes on pub's topic until c sees a message: the bridge's
// subscriptions on both sides are in place.
func probe(t *testing.T, pub *client.Session, topic string, c *counter) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := pub.Publish(ctx, &packet.Publish{Topic: topic, QoS: 1, Payload: fmt.Appendf(nil, "probe%d", i)})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if n, _ := c.count("probe"); n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no probe through the bridge on %s", topic)
		}
	}
}

func startManager(t *testing.T, b *broker.Broker, cfgs ...Config) *Manager {
	t.Helper()
	m := NewManager(b, testLog())
	if err := m.Apply(cfgs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func versions(t *testing.T, fn func(t *testing.T, pv int, v byte)) {
	for _, pv := range []int{311, 5} {
		v := byte(packet.V311)
		if pv == 5 {
			v = packet.V5
		}
		t.Run(fmt.Sprintf("v%d", pv), func(t *testing.T) { fn(t, pv, v) })
	}
}

// TestBridgeMosquitto forwards both ways through Debian's mosquitto, with
// prefixes rewritten, at QoS 0, 1 and 2, and expects every message once.
func TestBridgeMosquitto(t *testing.T) {
	versions(t, func(t *testing.T, pv int, v byte) {
		mq := mt.StartMosquitto(t, false)
		local := mt.StartBroker(t, broker.Options{})
		startManager(t, local.Broker, Config{Name: "cloud", URL: "tcp://" + mq.Addr, ProtocolVersion: pv,
			Topics: []Topic{
				{Pattern: "telemetry/#", Direction: Out, QoS: 2, RemotePrefix: "site1/"},
				{Pattern: "cmd/#", Direction: In, QoS: 2, LocalPrefix: "site1/"},
			}})
		remoteSub := subscribe(t, mq.Addr, "rsub", v, "site1/telemetry/#")
		localSub := subscribe(t, local.Addr, "lsub", v, "site1/cmd/#")
		lpub, rpub := publisher(t, local.Addr, v), publisher(t, mq.Addr, v)
		probe(t, lpub, "telemetry/probe", remoteSub)
		probe(t, rpub, "cmd/probe", localSub)

		const n = 300
		for qos := range byte(3) {
			out, in := fmt.Sprintf("out-q%d-", qos), fmt.Sprintf("in-q%d-", qos)
			publishN(t, lpub, "telemetry/a/b", out, qos, n)
			publishN(t, rpub, "cmd/x", in, qos, n)
			await(t, remoteSub, out, n)
			await(t, localSub, in, n)
			_, d1 := remoteSub.count(out)
			_, d2 := localSub.count(in)
			if d1+d2 != 0 {
				t.Errorf("QoS %d: %d duplicates out, %d in", qos, d1, d2)
			}
			t.Logf("QoS %d: %d of %d out, %d of %d in, no duplicates", qos, n, n, n, n)
		}
		// Nothing leaked to the topics unprefixed.
		if n, _ := localSub.count("out-"); n != 0 {
			t.Errorf("%d outbound messages came back in", n)
		}
	})
}

// TestBridgeStateTopic publishes "1" while connected and "0" after.
func TestBridgeStateTopic(t *testing.T) {
	mq := mt.StartMosquitto(t, false)
	local := mt.StartBroker(t, broker.Options{})
	st := subscribe(t, local.Addr, "state", packet.V5, "$SYS/broker/connection/+/state")
	var last string
	get := func() string {
		st.mu.Lock()
		defer st.mu.Unlock()
		_, one := st.seen["1"]
		_, zero := st.seen["0"]
		switch {
		case one && zero:
			return "both"
		case one:
			return "1"
		}
		return last
	}
	m := startManager(t, local.Broker, Config{Name: "cloud", URL: "tcp://" + mq.Addr,
		Topics: []Topic{{Pattern: "a/#", Direction: Out, QoS: 1}}})
	mt.Eventually(t, "state 1", func() bool { g := get(); return g == "1" || g == "both" })
	mt.Eventually(t, "stats connected", func() bool { s := m.Stats(); return len(s) == 1 && s[0].Connected })
	m.Close()
	mt.Eventually(t, "state 0 after stop", func() bool { return get() == "both" })
}
