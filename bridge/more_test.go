package bridge

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// TestBridgeLoopBoth: with direction both on one pattern, a message
// crosses once and never comes back, on a v5 remote (No Local) and a
// 3.1.1 one (echo suppression).
func TestBridgeLoopBoth(t *testing.T) {
	versions(t, func(t *testing.T, pv int, v byte) {
		mq := mt.StartMosquitto(t, false)
		local := mt.StartBroker(t, broker.Options{})
		m := startManager(t, local.Broker, Config{Name: "loop", URL: "tcp://" + mq.Addr, ProtocolVersion: pv,
			Topics: []Topic{{Pattern: "shared/#", Direction: Both, QoS: 1}}})
		lsub := subscribe(t, local.Addr, "lsub", v, "shared/#")
		rsub := subscribe(t, mq.Addr, "rsub", v, "shared/#")
		lpub, rpub := publisher(t, local.Addr, v), publisher(t, mq.Addr, v)
		probe(t, lpub, "shared/probe", rsub)
		probe(t, rpub, "shared/probe", lsub)

		const n = 200
		publishN(t, lpub, "shared/l", "from-local-", 1, n)
		publishN(t, rpub, "shared/r", "from-remote-", 1, n)
		for _, c := range []*counter{lsub, rsub} {
			await(t, c, "from-local-", n)
			await(t, c, "from-remote-", n)
		}
		time.Sleep(500 * time.Millisecond) // room for echoes to come
		for name, c := range map[string]*counter{"local": lsub, "remote": rsub} {
			for _, p := range []string{"from-local-", "from-remote-"} {
				got, dups := c.count(p)
				if got != n || dups != 0 {
					t.Errorf("%s subscriber, %s: %d distinct, %d duplicates; want %d, 0", name, p, got, dups, n)
				}
			}
		}
		s := m.Stats()[0]
		t.Logf("each side got %d+%d once; stats %+v", n, n, s)
	})
}

// TestBridgeTernToTern bridges two Tern brokers over MQTT 5 with prefixes,
// both ways.
func TestBridgeTernToTern(t *testing.T) {
	edge := mt.StartBroker(t, broker.Options{})
	cloud := mt.StartBroker(t, broker.Options{})
	startManager(t, edge.Broker, Config{Name: "cloud", URL: "tcp://" + cloud.Addr,
		Topics: []Topic{
			{Pattern: "telemetry/#", Direction: Out, QoS: 2, RemotePrefix: "site1/"},
			{Pattern: "cmd/#", Direction: In, QoS: 2, LocalPrefix: "", RemotePrefix: "site1/"},
			{Pattern: "sync/#", Direction: Both, QoS: 1},
		}})
	csub := subscribe(t, cloud.Addr, "csub", packet.V5, "#")
	esub := subscribe(t, edge.Addr, "esub", packet.V5, "#")
	epub, cpub := publisher(t, edge.Addr, packet.V5), publisher(t, cloud.Addr, packet.V5)
	probe(t, epub, "telemetry/probe", csub)
	probe(t, cpub, "site1/cmd/probe", esub)

	const n = 500
	publishN(t, epub, "telemetry/t", "tel-", 2, n)
	publishN(t, cpub, "site1/cmd/c", "cmd-", 2, n)
	publishN(t, epub, "sync/e", "sync-e-", 1, n)
	publishN(t, cpub, "sync/c", "sync-c-", 1, n)
	await(t, csub, "tel-", n)
	await(t, esub, "cmd-", n)
	for _, c := range []*counter{csub, esub} {
		await(t, c, "sync-e-", n)
		await(t, c, "sync-c-", n)
	}
	time.Sleep(300 * time.Millisecond)
	for name, c := range map[string]*counter{"cloud": csub, "edge": esub} {
		for _, p := range []string{"tel-", "cmd-", "sync-e-", "sync-c-"} {
			if _, dups := c.count(p); dups != 0 {
				t.Errorf("%s: %s: %d duplicates", name, p, dups)
			}
		}
	}
	t.Logf("edge->cloud %d QoS 2, cloud->edge %d QoS 2, %d+%d both ways QoS 1: each once", n, n, n, n)
}

// TestBridgeRemoteRestart restarts the remote (a persistent mosquitto)
// twice while messages flow out at QoS 1 and 2: every message published
// locally reaches the remote subscriber, QoS 2 once.
func TestBridgeRemoteRestart(t *testing.T) {
	versions(t, func(t *testing.T, pv int, v byte) {
		mq := mt.StartMosquitto(t, true)
		// The bridge's own queue bound, as cmd/tern sets it from the
		// configuration: the remote is away for a second or two.
		local := mt.StartBroker(t, broker.Options{QueueLimits: map[string]broker.QueueLimit{LocalClientID("cloud"): {MaxQueued: 100000}}})
		m := startManager(t, local.Broker, Config{Name: "cloud", URL: "tcp://" + mq.Addr, ProtocolVersion: pv,
			ClientID: "edge-1", Queue: Queue{MaxMessages: 100000},
			Topics: []Topic{{Pattern: "q1/#", Direction: Out, QoS: 1}, {Pattern: "q2/#", Direction: Out, QoS: 2}}})
		rsub := subscribe(t, mq.Addr, "rsub", v, "#")
		lpub := publisher(t, local.Addr, v)
		probe(t, lpub, "q1/probe", rsub)

		const n = 3000
		var wg sync.WaitGroup
		for _, qos := range []byte{1, 2} {
			wg.Go(func() {
				for i := range n {
					publishN(t, lpub, fmt.Sprintf("q%d/x", qos), fmt.Sprintf("r-q%d-%d-", qos, i), qos, 1)
				}
			})
		}
		for range 2 {
			mt.Eventually(t, "some traffic", func() bool { s := m.Stats()[0]; return s.Connected && s.Sent > 200 })
			mq.Restart()
			mt.Eventually(t, "reconnected", func() bool { return m.Stats()[0].Connected })
		}
		wg.Wait()
		// The payloads are "r-q<qos>-<i>-0".
		for _, qos := range []byte{1, 2} {
			prefix := fmt.Sprintf("r-q%d-", qos)
			deadline := time.Now().Add(30 * time.Second)
			for {
				got, _ := rsub.count(prefix)
				if got >= n || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			got, dups := rsub.count(prefix)
			t.Logf("QoS %d: %d of %d acknowledged messages arrived across 2 remote restarts, %d duplicates", qos, got, n, dups)
			if got != n {
				t.Errorf("QoS %d: lost %d of %d", qos, n-got, n)
			}
			if qos == 2 && dups != 0 {
				t.Errorf("QoS 2: %d duplicates", dups)
			}
		}
	})
}

// TestBridgeReload: Apply keeps unchanged bridges running, restarts
// changed ones and removes the others with their local session.
func TestBridgeReload(t *testing.T) {
	mq := mt.StartMosquitto(t, false)
	local := mt.StartBroker(t, broker.Options{})
	a := Config{Name: "a", URL: "tcp://" + mq.Addr, Topics: []Topic{{Pattern: "a/#", Direction: Out, QoS: 1}}}
	b := Config{Name: "b", URL: "tcp://" + mq.Addr, Topics: []Topic{{Pattern: "b/#", Direction: Out, QoS: 1}}}
	m := startManager(t, local.Broker, a, b)
	mt.Eventually(t, "both connected", func() bool { s := m.Stats(); return len(s) == 2 && s[0].Connected && s[1].Connected })
	m.mu.Lock()
	ra, rb := m.bridges["a"], m.bridges["b"]
	m.mu.Unlock()
	b2 := b
	b2.Topics = []Topic{{Pattern: "b2/#", Direction: Out, QoS: 1}}
	c := Config{Name: "c", URL: "tcp://" + mq.Addr, Topics: []Topic{{Pattern: "c/#", Direction: Out, QoS: 1}}}
	if err := m.Apply([]Config{a, b2, c}); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	if m.bridges["a"] != ra {
		t.Error("unchanged bridge a was restarted")
	}
	if m.bridges["b"] == rb {
		t.Error("changed bridge b was not restarted")
	}
	m.mu.Unlock()
	mt.Eventually(t, "b's old subscription gone", func() bool {
		subs, _ := local.Subscriptions(broker.SubscriptionQuery{ClientID: LocalClientID("b")})
		return len(subs) == 1 && subs[0].Filter == "b2/#"
	})
	if err := m.Apply([]Config{a}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := local.Client(LocalClientID("c")); err == nil {
		t.Error("removed bridge c left its session")
	}
	if err := m.Apply([]Config{a, {Name: "bad", URL: "http://x"}}); err == nil {
		t.Error("a bad configuration was applied")
	}
	if s := m.Stats(); len(s) != 1 || s[0].Name != "a" {
		t.Errorf("after a refused Apply: %+v", s)
	}
}

func TestCheck(t *testing.T) {
	ok := Topic{Pattern: "a/#", Direction: Out}
	for _, tc := range []struct {
		name string
		c    Config
		ok   bool
	}{
		{"good", Config{Name: "x", URL: "tcp://h:1883", Topics: []Topic{ok}}, true},
		{"no name", Config{URL: "tcp://h:1883", Topics: []Topic{ok}}, false},
		{"slash in name", Config{Name: "a/b", URL: "tcp://h:1883", Topics: []Topic{ok}}, false},
		{"scheme", Config{Name: "x", URL: "http://h", Topics: []Topic{ok}}, false},
		{"version", Config{Name: "x", URL: "tcp://h:1", ProtocolVersion: 4, Topics: []Topic{ok}}, false},
		{"no topics", Config{Name: "x", URL: "tcp://h:1"}, false},
		{"direction", Config{Name: "x", URL: "tcp://h:1", Topics: []Topic{{Pattern: "a", Direction: "up"}}}, false},
		{"qos", Config{Name: "x", URL: "tcp://h:1", Topics: []Topic{{Pattern: "a", Direction: In, QoS: 3}}}, false},
		{"wildcard prefix", Config{Name: "x", URL: "tcp://h:1", Topics: []Topic{{Pattern: "a", Direction: In, LocalPrefix: "+/"}}}, false},
		{"bad pattern", Config{Name: "x", URL: "tcp://h:1", Topics: []Topic{{Pattern: "a/#/b", Direction: In}}}, false},
		{"both passwords", Config{Name: "x", URL: "tcp://h:1", Password: "p", PasswordFile: "f", Topics: []Topic{ok}}, false},
		{"missing password file", Config{Name: "x", URL: "tcp://h:1", PasswordFile: "/nonexistent", Topics: []Topic{ok}}, false},
		{"cert without key", Config{Name: "x", URL: "tls://h:1", CertFile: "c.pem", Topics: []Topic{ok}}, false},
		{"queue policy", Config{Name: "x", URL: "tcp://h:1", Topics: []Topic{ok}, Queue: Queue{Policy: "keep"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]Config{tc.c})
			if (err == nil) != tc.ok {
				t.Errorf("Check: %v", err)
			}
		})
	}
	if Check([]Config{{Name: "x", URL: "tcp://h:1", Topics: []Topic{ok}}, {Name: "x", URL: "tcp://h:1", Topics: []Topic{ok}}}) == nil {
		t.Error("two bridges with one name")
	}
}

// TestBridgeStartWithBacklog starts a bridge whose local session already
// holds messages, as after a restart of Tern with the remote away: the
// broker hands them over as soon as the local side connects, before the
// remote side exists, and the bridge forwards them all.
func TestBridgeStartWithBacklog(t *testing.T) {
	mq := mt.StartMosquitto(t, false)
	local := mt.StartBroker(t, broker.Options{})
	cfg := Config{Name: "cloud", URL: "tcp://" + mq.Addr, Topics: []Topic{{Pattern: "q/#", Direction: Out, QoS: 1, RemotePrefix: "site1/"}}}
	rsub := subscribe(t, mq.Addr, "rsub", packet.V5, "site1/#")
	lpub := publisher(t, local.Addr, packet.V5)
	first := startManager(t, local.Broker, cfg)
	probe(t, lpub, "q/probe", rsub)
	first.Close()

	const n = 500
	publishN(t, lpub, "q/x", "backlog-", 1, n)
	startManager(t, local.Broker, cfg)
	await(t, rsub, "backlog-", n)
	if got, dups := rsub.count("backlog-"); got != n || dups != 0 {
		t.Errorf("%d distinct, %d duplicates; want %d, 0", got, dups, n)
	}
}
