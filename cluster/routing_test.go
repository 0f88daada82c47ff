package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
)

func TestRoutingAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 3)
	sub, got := connect(t, nodes[1].addr, client.Options{ClientID: "sub"})
	subscribe(t, sub, "a/+", 1)
	waitForInterest(t, nodes[0], "a/x")
	pub, _ := connect(t, nodes[0].addr, client.Options{ClientID: "pub"})
	for i := range 10 {
		publish(t, pub, &packet.Publish{Topic: "a/x", QoS: 1, Payload: fmt.Appendf(nil, "%d", i)})
	}
	waitFor(t, 5*time.Second, "10 messages", func() bool { return got.len() == 10 })
	for i, m := range got.all() {
		if string(m.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, m.Payload)
		}
	}
}

// waitForInterest waits until a node's NATS server knows of a subscription
// matching topic somewhere in the cluster.
func waitForInterest(t testing.TB, tn *testNode, topic string) {
	t.Helper()
	waitFor(t, 5*time.Second, "interest in "+topic, func() bool {
		return tn.node.srv.GlobalAccount().SubscriptionInterest(Subject(topic))
	})
}
