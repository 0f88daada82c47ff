package cluster

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

// waitForInterest waits until a node's NATS server knows of a subscription
// matching topic somewhere in the cluster.
func waitForInterest(t testing.TB, tn *testNode, topic string) {
	t.Helper()
	waitFor(t, 20*time.Second, "interest in "+topic, func() bool {
		return tn.node.srv.GlobalAccount().SubscriptionInterest(Subject(topic))
	})
}

// TestRouting runs the cross-node checks that share one three-node
// cluster, each on its own topics and client ids.
func TestRouting(t *testing.T) {
	nodes := startCluster(t, 3)
	t.Run("QoS", func(t *testing.T) { testQoSAcrossNodes(t, nodes) })
	t.Run("Overlapping", func(t *testing.T) { testOverlapping(t, nodes) })
	t.Run("NoLocal", func(t *testing.T) { testNoLocal(t, nodes) })
	t.Run("Properties", func(t *testing.T) { testProperties(t, nodes) })
	t.Run("Dollar", func(t *testing.T) { testDollarTopics(t, nodes) })
}

// testQoSAcrossNodes: every version and QoS pair, publisher on one node
// and subscriber on another: the granted QoS caps the delivery
// [MQTT-3.8.4-8], order per publisher holds, nothing doubles.
func testQoSAcrossNodes(t *testing.T, nodes []*testNode) {
	for _, v := range []byte{packet.V311, packet.V5} {
		for subQoS := range byte(3) {
			for pubQoS := range byte(3) {
				name := fmt.Sprintf("v%d/sub%d/pub%d", v, subQoS, pubQoS)
				topic := "qos/" + name
				sub, got := connect(t, nodes[1].addr, client.Options{ClientID: "s-" + name, Version: v, CleanStart: true})
				subscribe(t, sub, topic, subQoS)
				waitForInterest(t, nodes[0], topic)
				pub, _ := connect(t, nodes[0].addr, client.Options{ClientID: "p-" + name, Version: v, CleanStart: true})
				for i := range 20 {
					publish(t, pub, &packet.Publish{Topic: topic, QoS: pubQoS, Payload: fmt.Appendf(nil, "%d", i)})
				}
				waitFor(t, 20*time.Second, name+": 20 messages", func() bool { return got.len() >= 20 })
				time.Sleep(50 * time.Millisecond) // a duplicate would come now
				msgs := got.all()
				if len(msgs) != 20 {
					t.Fatalf("%s: %d messages, want 20", name, len(msgs))
				}
				for i, m := range msgs {
					if string(m.Payload) != fmt.Sprint(i) || m.QoS != min(subQoS, pubQoS) || m.Retain {
						t.Fatalf("%s: message %d: %q QoS %d retain %v", name, i, m.Payload, m.QoS, m.Retain)
					}
				}
				sub.Close()
				pub.Close()
			}
		}
	}
}

// testOverlapping: a node with several matching subscriptions gets each
// message once from NATS, and each session gets one copy carrying every
// matching subscription identifier, as on one node [MQTT-3.3.4-3].
func testOverlapping(t *testing.T, nodes []*testNode) {
	a, gotA := connect(t, nodes[1].addr, client.Options{ClientID: "ov-a", CleanStart: true})
	id1, id2 := 1, 2
	for _, s := range []struct {
		filter string
		id     int
	}{{"ov/+", id1}, {"ov/#", id2}} {
		ctx, cancel := ctxT()
		if _, err := a.SubscribePacket(ctx, &packet.Subscribe{PacketID: 0, Properties: packet.Properties{SubscriptionIDs: []uint32{uint32(s.id)}},
			Subscriptions: []packet.Subscription{{Filter: s.filter, QoS: 1}}}); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	b, gotB := connect(t, nodes[1].addr, client.Options{ClientID: "ov-b", CleanStart: true})
	subscribe(t, b, "#", 0)
	waitForInterest(t, nodes[0], "ov/x")
	pub, _ := connect(t, nodes[0].addr, client.Options{ClientID: "ov-pub", CleanStart: true})
	for i := range 10 {
		publish(t, pub, &packet.Publish{Topic: "ov/x", QoS: 1, Payload: fmt.Appendf(nil, "%d", i)})
	}
	waitFor(t, 20*time.Second, "10 each", func() bool { return gotA.len() >= 10 && countTopic(gotB, "ov/x") >= 10 })
	time.Sleep(100 * time.Millisecond)
	if n, m := gotA.len(), countTopic(gotB, "ov/x"); n != 10 || m != 10 {
		t.Fatalf("overlapping subscriptions: %d and %d deliveries, want 10 each", n, m)
	}
	for _, m := range gotA.all() {
		ids := slices.Clone(m.Properties.SubscriptionIDs)
		slices.Sort(ids)
		if !slices.Equal(ids, []uint32{1, 2}) {
			t.Fatalf("subscription ids %v, want [1 2]", ids)
		}
	}
}

func countTopic(c *collector, topic string) int {
	n := 0
	for _, m := range c.all() {
		if m.Topic == topic {
			n++
		}
	}
	return n
}

// testNoLocal: No Local keeps a client's own messages from it whichever
// node they pass through, and nobody else's [MQTT-3.8.3-3].
func testNoLocal(t *testing.T, nodes []*testNode) {
	x, gotX := connect(t, nodes[1].addr, client.Options{ClientID: "nl-x", CleanStart: true})
	ctx, cancel := ctxT()
	defer cancel()
	if _, err := x.Subscribe(ctx, packet.Subscription{Filter: "nl/t", QoS: 1, NoLocal: true}); err != nil {
		t.Fatal(err)
	}
	z, gotZ := connect(t, nodes[2].addr, client.Options{ClientID: "nl-z", CleanStart: true})
	subscribe(t, z, "nl/t", 1)
	waitForInterest(t, nodes[0], "nl/t")
	waitForInterest(t, nodes[1], "nl/t")
	publish(t, x, &packet.Publish{Topic: "nl/t", QoS: 1, Payload: []byte("own")})
	y, _ := connect(t, nodes[0].addr, client.Options{ClientID: "nl-y", CleanStart: true})
	publish(t, y, &packet.Publish{Topic: "nl/t", QoS: 1, Payload: []byte("other")})
	waitFor(t, 20*time.Second, "z gets both", func() bool { return gotZ.len() == 2 })
	waitFor(t, 20*time.Second, "x gets the other's", func() bool { return gotX.len() == 1 })
	time.Sleep(100 * time.Millisecond)
	if m := gotX.all(); len(m) != 1 || string(m[0].Payload) != "other" {
		t.Fatalf("No Local subscriber got %d messages, first %q", len(m), m[0].Payload)
	}
}

// testProperties: v5 properties cross nodes unchanged; the Message Expiry
// Interval counts from the original publish [MQTT-3.3.2-6]; the retain
// flag follows Retain As Published [MQTT-3.3.1-12, MQTT-3.3.1-13].
func testProperties(t *testing.T, nodes []*testNode) {
	rap, gotRAP := connect(t, nodes[1].addr, client.Options{ClientID: "pr-rap", CleanStart: true})
	ctx, cancel := ctxT()
	defer cancel()
	if _, err := rap.Subscribe(ctx, packet.Subscription{Filter: "pr/#", QoS: 1, RetainAsPublished: true}); err != nil {
		t.Fatal(err)
	}
	plain, gotPlain := connect(t, nodes[2].addr, client.Options{ClientID: "pr-plain", CleanStart: true})
	subscribe(t, plain, "pr/#", 1)
	waitForInterest(t, nodes[0], "pr/x")
	pf, exp := byte(1), uint32(100)
	props := packet.Properties{PayloadFormat: &pf, MessageExpiry: &exp, ContentType: "text/plain", ResponseTopic: "pr/reply",
		CorrelationData: []byte{0, 1, 2}, User: []packet.UserProperty{{Key: "k", Value: "v1"}, {Key: "k", Value: "v2"}}}
	pub, _ := connect(t, nodes[0].addr, client.Options{ClientID: "pr-pub", CleanStart: true})
	publish(t, pub, &packet.Publish{Topic: "pr/x", QoS: 1, Retain: true, Payload: []byte("hello"), Properties: props})
	waitFor(t, 20*time.Second, "both get it", func() bool { return gotRAP.len() == 1 && gotPlain.len() == 1 })
	for _, c := range []struct {
		got    *collector
		retain bool
	}{{gotRAP, true}, {gotPlain, false}} {
		m := c.got.all()[0]
		p := m.Properties
		if m.Retain != c.retain || string(m.Payload) != "hello" || p.PayloadFormat == nil || *p.PayloadFormat != 1 ||
			p.ContentType != "text/plain" || p.ResponseTopic != "pr/reply" || !bytes.Equal(p.CorrelationData, []byte{0, 1, 2}) ||
			!slices.Equal(p.User, props.User) || p.MessageExpiry == nil || *p.MessageExpiry > 100 || *p.MessageExpiry < 95 {
			t.Fatalf("delivered %+v with properties %+v (retain as published %v)", m, p, c.retain)
		}
	}
	// Expiry counts from the publish: a message that has expired in
	// between is not delivered [MQTT-3.3.2-5].
	one := uint32(1)
	late, gotLate := connect(t, nodes[1].addr, client.Options{ClientID: "pr-late", CleanStart: true})
	publish(t, pub, &packet.Publish{Topic: "pr/short", QoS: 1, Retain: true, Payload: []byte("short"), Properties: packet.Properties{MessageExpiry: &one}})
	time.Sleep(1100 * time.Millisecond)
	subscribe(t, late, "pr/short", 1)
	time.Sleep(200 * time.Millisecond)
	if gotLate.len() != 0 {
		t.Fatal("an expired retained message was delivered on another node")
	}
}

// testDollarTopics: wildcards at the first level do not match $ topics on
// any node [MQTT-4.7.2-1], and a node's $SYS stays on that node.
func testDollarTopics(t *testing.T, nodes []*testNode) {
	all, gotAll := connect(t, nodes[1].addr, client.Options{ClientID: "dl-all", CleanStart: true})
	subscribe(t, all, "#", 0)
	dollar, gotDollar := connect(t, nodes[1].addr, client.Options{ClientID: "dl-dollar", CleanStart: true})
	subscribe(t, dollar, "$app/#", 0)
	waitForInterest(t, nodes[0], "$app/x")
	pub, _ := connect(t, nodes[0].addr, client.Options{ClientID: "dl-pub", CleanStart: true})
	publish(t, pub, &packet.Publish{Topic: "$app/x", QoS: 1, Payload: []byte("d")})
	nodes[0].b.Publish(&store.Message{Topic: "$SYS/broker/x", Payload: []byte("sys")})
	publish(t, pub, &packet.Publish{Topic: "dl/end", QoS: 1, Payload: []byte("e")})
	waitFor(t, 20*time.Second, "the $ subscriber", func() bool { return gotDollar.len() == 1 })
	waitFor(t, 20*time.Second, "the # subscriber", func() bool { return countTopic(gotAll, "dl/end") == 1 })
	for _, m := range gotAll.all() {
		if strings.HasPrefix(m.Topic, "$") {
			t.Fatalf("# matched %q", m.Topic)
		}
	}
	if gotDollar.all()[0].Topic != "$app/x" {
		t.Fatalf("got %q", gotDollar.all()[0].Topic)
	}
}
