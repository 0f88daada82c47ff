package cluster

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
)

// TestRestartCatchesUp: a persistent session whose node is down resumes
// on another node with what was queued for it before and published for
// it meanwhile; the node comes back in step: the retained messages set
// and cleared meanwhile, and no stale copy of the session.
func TestRestartCatchesUp(t *testing.T) {
	nodes := startCluster(t, 3)
	pub, _ := connect(t, nodes[0].addr, client.Options{ClientID: "rs-pub", CleanStart: true})
	publish(t, pub, &packet.Publish{Topic: "ret/keep", QoS: 1, Retain: true, Payload: []byte("k")})
	publish(t, pub, &packet.Publish{Topic: "ret/clear", QoS: 1, Retain: true, Payload: []byte("c")})
	waitFor(t, 20*time.Second, "n2 has them", func() bool { return retainedOn(nodes[1].b) == "ret/clear=c ret/keep=k" })
	away, _ := connect(t, nodes[1].addr, client.Options{ClientID: "rs-away", Properties: expiry(300)})
	subscribe(t, away, "rs/x", 1)
	away.Disconnect()
	<-away.Done()
	publish(t, pub, &packet.Publish{Topic: "rs/x", QoS: 1, Payload: []byte("before")})

	n2 := nodes[1]
	port := n2.node.cfg.Listen
	peers := n2.node.cfg.Peers
	n2.stop()
	publish(t, pub, &packet.Publish{Topic: "ret/clear", QoS: 1, Retain: true})
	publish(t, pub, &packet.Publish{Topic: "ret/new", QoS: 1, Retain: true, Payload: []byte("n")})
	publishAfterLoss(t, pub, &packet.Publish{Topic: "rs/x", QoS: 2, Payload: []byte("while-down")})
	// The client comes back elsewhere while its node is down: its session
	// comes from the replicated store, and the id is that node's now.
	back, got := connectAfterLoss(t, nodes[2].addr, client.Options{ClientID: "rs-away", Properties: expiry(300)})
	if !back.Connack().SessionPresent {
		t.Fatal("session not present on another node while its node is down")
	}
	waitFor(t, 20*time.Second, "both messages", func() bool { return got.len() >= 2 })
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive meanwhile
	if ps := got.all(); len(ps) != 2 || string(ps[0].Payload) != "before" || string(ps[1].Payload) != "while-down" {
		t.Fatalf("got %v, want before and while-down", payloads(ps))
	}

	var p int
	fmt.Sscanf(port[strings.LastIndex(port, ":")+1:], "%d", &p)
	re := newNode(t, "n2", n2.dir, p, 3, peers)
	re.serve(t)
	ctx, cancel := ctxT()
	defer cancel()
	if err := re.node.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if got := retainedOn(re.b); got != "ret/keep=k ret/new=n" {
		t.Fatalf("restarted node retains %q, want ret/keep=k ret/new=n", got)
	}
	waitFor(t, 20*time.Second, "the stale session dropped", func() bool {
		_, _, err := re.b.Client("rs-away")
		return err != nil
	})
	if info, _, err := nodes[2].b.Client("rs-away"); err != nil || !info.Connected {
		t.Fatalf("the live session is hurt: %+v %v", info, err)
	}
}

// TestJoinAtRuntime: a fourth node that knows one peer joins a running
// cluster and routes both ways.
func TestJoinAtRuntime(t *testing.T) {
	nodes := startCluster(t, 3)
	pub, _ := connect(t, nodes[0].addr, client.Options{ClientID: "join-pub", CleanStart: true})
	publish(t, pub, &packet.Publish{Topic: "join/ret", QoS: 1, Retain: true, Payload: []byte("r")})

	n4 := newNode(t, "n4", t.TempDir(), freePorts(t, 1)[0], 3, []string{nodes[0].node.ClusterAddr()})
	n4.serve(t)
	waitFor(t, 20*time.Second, "every node sees four", func() bool {
		for _, tn := range append(nodes, n4) {
			if len(tn.node.Nodes()) != 4 {
				return false
			}
		}
		return true
	})
	ctx, cancel := ctxT()
	defer cancel()
	if err := n4.node.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	sub4, got4 := connect(t, n4.addr, client.Options{ClientID: "join-sub4", CleanStart: true})
	subscribe(t, sub4, "join/#", 1)
	waitFor(t, 20*time.Second, "the retained message on the new node", func() bool { return got4.len() == 1 })
	waitFor(t, 20*time.Second, "the retained message on n2", func() bool {
		msgs, _, err := nodes[1].b.Retained("join/#", 0, 10)
		return err == nil && len(msgs) == 1
	})
	sub1, got1 := connect(t, nodes[1].addr, client.Options{ClientID: "join-sub1", CleanStart: true})
	subscribe(t, sub1, "join/#", 1)
	waitForInterest(t, nodes[0], "join/x")
	waitForInterest(t, n4, "join/x")
	time.Sleep(200 * time.Millisecond)
	pub4, _ := connect(t, n4.addr, client.Options{ClientID: "join-pub4", CleanStart: true})
	publish(t, pub4, &packet.Publish{Topic: "join/x", QoS: 1, Payload: []byte("from4")})
	publish(t, pub, &packet.Publish{Topic: "join/x", QoS: 1, Payload: []byte("from1")})
	for deadline := time.Now().Add(20 * time.Second); got4.len() < 3 || got1.len() < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive meanwhile
	if got4.len() != 3 || got1.len() != 3 {
		t.Fatalf("n4 got %v, n2 got %v; want r, from4 and from1 each", payloads(got4.all()), payloads(got1.all()))
	}
}

// TestDrainHandsSessionsOver: a node that drains (SIGTERM) tells its v5
// clients it is shutting down (0x8B) and, until it leaves, hands their
// sessions to the nodes they reconnect to.
func TestDrainHandsSessionsOver(t *testing.T) {
	nodes := startCluster(t, 3)
	o := client.Options{ClientID: "drained", Properties: expiry(300)}
	c, _ := connect(t, nodes[0].addr, o)
	subscribe(t, c, "dr/x", 1)
	nodes[0].b.Drain()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the client is still connected to a drained node")
	}
	if !errors.Is(c.Err(), packet.ServerShuttingDown) {
		t.Fatalf("client ended with %v, want 0x8B", c.Err())
	}
	again, got := connect(t, nodes[1].addr, o)
	if !again.Connack().SessionPresent {
		t.Fatal("the session did not come over from the draining node")
	}
	waitForInterest(t, nodes[2], "dr/x")
	pub, _ := connect(t, nodes[2].addr, client.Options{ClientID: "dr-pub", CleanStart: true})
	publish(t, pub, &packet.Publish{Topic: "dr/x", QoS: 1, Payload: []byte("x")})
	waitFor(t, 20*time.Second, "delivery to the moved session", func() bool { return got.len() == 1 })
}

// TestRetainedWhileAlone: a node cut off from every other keeps serving
// its clients, and what they retain meanwhile reaches the others once
// they are back. Without a quorum it acknowledges no QoS 1 or 2 message
// (refused, not silently accepted) until the quorum is back.
func TestRetainedWhileAlone(t *testing.T) {
	nodes := startCluster(t, 3)
	var cfgs [][]string
	for _, tn := range nodes[1:] {
		cfgs = append(cfgs, append([]string{tn.node.cfg.Listen}, tn.node.cfg.Peers...))
		tn.stop()
	}
	waitFor(t, 20*time.Second, "n1 alone", nodes[0].node.alone)
	pub, _ := connect(t, nodes[0].addr, client.Options{ClientID: "alone-pub", CleanStart: true})
	ctx, cancel := ctxT()
	defer cancel()
	if err := pub.Publish(ctx, &packet.Publish{Topic: "q/alone", QoS: 1, Payload: []byte("q")}); !errors.Is(err, packet.UnspecifiedError) {
		t.Fatalf("QoS 1 publish without a quorum: %v, want refused (unspecified error)", err)
	}
	publish(t, pub, &packet.Publish{Topic: "ret/alone", QoS: 0, Retain: true, Payload: []byte("a")})
	waitFor(t, 20*time.Second, "the QoS 0 publish handled", func() bool { return nodes[0].node.Stats().RetainedPending == 1 })
	if n := nodes[0].node.Stats().RetainedPending; n != 1 {
		t.Fatalf("%d retained messages wait for the stream, want 1", n)
	}
	var back []*testNode
	for i, tn := range nodes[1:] {
		var p int
		fmt.Sscanf(cfgs[i][0][strings.LastIndex(cfgs[i][0], ":")+1:], "%d", &p)
		re := newNode(t, tn.name, tn.dir, p, 3, cfgs[i][1:])
		back = append(back, re)
	}
	var wg sync.WaitGroup
	for _, re := range back {
		wg.Go(func() { re.serve(t) })
	}
	wg.Wait()
	for _, re := range back {
		waitFor(t, 30*time.Second, "the retained message on "+re.name, func() bool { return retainedOn(re.b) == "ret/alone=a" })
	}
	waitFor(t, 20*time.Second, "nothing waits for the stream", func() bool { return nodes[0].node.Stats().RetainedPending == 0 })
	publishAfterLoss(t, pub, &packet.Publish{Topic: "q/alone", QoS: 1, Payload: []byte("q")})
}
