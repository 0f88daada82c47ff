package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
)

// TestTakeoverWaitsForTheStream: a node back from a restart that does
// not read the message stream yet does not let a session go (it does not
// know where it is in the stream, and the session would be given the
// stream's messages again): the claim is refused, and once the node
// reads, the session moves with what was queued for it, once.
func TestTakeoverWaitsForTheStream(t *testing.T) {
	nodes := startCluster(t, 3)
	o := client.Options{ClientID: "tw-away", Properties: expiry(300)}
	away, _ := connect(t, nodes[0].addr, o)
	subscribe(t, away, "tw/x", 1)
	away.Disconnect()
	<-away.Done()
	pub, _ := connect(t, nodes[1].addr, client.Options{ClientID: "tw-pub", CleanStart: true})
	for _, p := range []string{"a", "b", "c"} {
		publish(t, pub, &packet.Publish{Topic: "tw/x", QoS: 1, Payload: []byte(p)})
	}
	waitFor(t, 20*time.Second, "the messages queued on n1", func() bool {
		info, _, err := nodes[0].b.Client("tw-away")
		return err == nil && info.Queued == 3
	})

	n1 := nodes[0]
	port, peers := n1.node.cfg.Listen, n1.node.cfg.Peers
	n1.stop()
	hold := make(chan struct{})
	holdFollow = hold
	defer func() { holdFollow = nil }()
	var p int
	fmt.Sscanf(port[strings.LastIndex(port, ":")+1:], "%d", &p)
	re := newNode(t, "n1", n1.dir, p, 3, peers)
	re.serve(t)
	waitFor(t, 20*time.Second, "n1 restored the session", func() bool {
		_, _, err := re.b.Client("tw-away")
		return err == nil
	})

	o.Address, o.Version = nodes[2].addr, packet.V5
	ctx, cancel := ctxT()
	c, err := client.Connect(ctx, o)
	cancel()
	if err == nil {
		c.Close()
		t.Fatal("the session left a node that does not read the stream yet")
	}
	close(hold)
	back, got := connectAfterLoss(t, nodes[2].addr, client.Options{ClientID: "tw-away", Properties: expiry(300)})
	if !back.Connack().SessionPresent {
		t.Fatal("the session did not move")
	}
	waitFor(t, 20*time.Second, "the queued messages", func() bool { return got.len() >= 3 })
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive meanwhile
	if ps := payloads(got.all()); strings.Join(ps, "") != "abc" {
		t.Fatalf("got %v, want a, b and c once each", ps)
	}
	if _, _, err := re.b.Client("tw-away"); err == nil {
		t.Fatal("n1 kept a copy of the session")
	}
}
