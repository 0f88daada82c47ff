package cluster

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
)

// TestState runs the checks of what the cluster keeps consistent, on one
// three-node cluster.
func TestState(t *testing.T) {
	nodes := startCluster(t, 3)
	t.Run("Takeover", func(t *testing.T) { testTakeover(t, nodes) })
	t.Run("SimultaneousConnects", func(t *testing.T) { testSimultaneousConnects(t, nodes) })
	t.Run("Will", func(t *testing.T) { testWill(t, nodes) })
	t.Run("Retained", func(t *testing.T) { testRetained(t, nodes) })
	t.Run("Forget", func(t *testing.T) { testForget(t, nodes) })
	t.Run("Trim", func(t *testing.T) { testTrim(t, nodes) })
}

// testTrim: the message stream keeps what some node has not read yet,
// and drops the rest.
func testTrim(t *testing.T, nodes []*testNode) {
	pub, _ := connect(t, nodes[0].addr, client.Options{ClientID: "trim-pub", CleanStart: true})
	for i := range 20 {
		publish(t, pub, &packet.Publish{Topic: "trim/x", QoS: 1, Payload: []byte{byte(i)}})
	}
	ctx, cancel := ctxT()
	defer cancel()
	s, err := nodes[0].node.js.Stream(ctx, fwdStream)
	if err != nil {
		t.Fatal(err)
	}
	last := s.CachedInfo().State.LastSeq
	if info, err := s.Info(ctx); err == nil {
		last = info.State.LastSeq
	}
	for _, tn := range nodes {
		f := &tn.node.fwd
		waitFor(t, 20*time.Second, tn.name+" read the stream", func() bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.processed >= last
		})
	}
	// One node's cursor stays behind: what it has not read stays.
	behind := nodes[2].node
	held := last - 5
	behind.fwd.mu.Lock()
	if err := behind.st.Wait(behind.st.PutCursor(behind.cfg.Node, held)); err != nil {
		t.Fatal(err)
	}
	for _, tn := range nodes[:2] {
		f := &tn.node.fwd
		f.mu.Lock()
		tn.node.putCursor()
		f.mu.Unlock()
		if err := tn.node.st.Wait(tn.node.st.Issued()); err != nil {
			t.Fatal(err)
		}
	}
	nodes[0].node.trimStream(ctx)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.FirstSeq != held+1 {
		t.Errorf("after the trim the stream starts at %d, want %d (after the lowest cursor)", info.State.FirstSeq, held+1)
	}
	behind.putCursor()
	behind.fwd.mu.Unlock()
	if err := behind.st.Wait(behind.st.Issued()); err != nil {
		t.Fatal(err)
	}
	nodes[0].node.trimStream(ctx)
	if info, err = s.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Errorf("after every node read everything the stream keeps %d messages (%v), want 0", info.State.Msgs, err)
	}
}

// testForget: the owner record of a session that ended goes, so the
// bucket does not keep every client id ever seen; one that lives on stays.
func testForget(t *testing.T, nodes []*testNode) {
	owner := func(id string) string {
		ctx, cancel := ctxT()
		defer cancel()
		kv, err := nodes[0].node.owners.bucket(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(ctx, ownerKey(id))
		if err != nil {
			return ""
		}
		return string(e.Value())
	}
	brief, _ := connect(t, nodes[1].addr, client.Options{ClientID: "brief", CleanStart: true})
	kept, _ := connect(t, nodes[1].addr, client.Options{ClientID: "kept", Properties: expiry(300)})
	// A key-value read may be served by a replica a moment behind.
	waitFor(t, 20*time.Second, "both ids owned by n2", func() bool { return owner("brief") == "n2" && owner("kept") == "n2" })
	brief.Disconnect()
	kept.Disconnect()
	waitFor(t, 20*time.Second, "the ended session's id forgotten", func() bool { return owner("brief") == "" })
	if owner("kept") != "n2" {
		t.Fatalf("a persistent session's owner is %q", owner("kept"))
	}
}

func expiry(s uint32) packet.Properties { return packet.Properties{SessionExpiry: &s} }

// testTakeover: a client id connecting on another node closes the first
// connection with 0x8E [MQTT-3.1.4-3], and its persistent session moves:
// subscriptions and messages queued while it was away [MQTT-3.1.2-4].
func testTakeover(t *testing.T, nodes []*testNode) {
	for _, v := range []byte{packet.V311, packet.V5} {
		id := fmt.Sprintf("mover-%d", v)
		o := client.Options{ClientID: id, Version: v, Properties: expiry(300)}
		first, _ := connect(t, nodes[0].addr, o)
		subscribe(t, first, "mv/"+id, 1)
		second, got := connect(t, nodes[1].addr, o)
		if !second.Connack().SessionPresent {
			t.Fatalf("v%d: session not present after moving nodes", v)
		}
		select {
		case <-first.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("v%d: the first connection stays open", v)
		}
		if v == packet.V5 && !errors.Is(first.Err(), packet.SessionTakenOver) {
			t.Fatalf("v5: first connection ended with %v, want 0x8E", first.Err())
		}
		waitForInterest(t, nodes[2], "mv/"+id)
		pub, _ := connect(t, nodes[2].addr, client.Options{ClientID: "mv-pub", Version: v, CleanStart: true})
		publish(t, pub, &packet.Publish{Topic: "mv/" + id, QoS: 1, Payload: []byte("live")})
		waitFor(t, 20*time.Second, "the moved subscription delivers", func() bool { return got.len() == 1 })

		// Away: messages queue on the node that has the session, and
		// come along to the next node.
		second.Disconnect()
		<-second.Done()
		for i := range 5 {
			publish(t, pub, &packet.Publish{Topic: "mv/" + id, QoS: 1, Payload: fmt.Appendf(nil, "q%d", i)})
		}
		time.Sleep(100 * time.Millisecond)
		third, got3 := connect(t, nodes[2].addr, o)
		if !third.Connack().SessionPresent {
			t.Fatalf("v%d: session not present on the third node", v)
		}
		waitFor(t, 20*time.Second, "the queued messages", func() bool { return got3.len() == 5 })
		for i, m := range got3.all() {
			if string(m.Payload) != fmt.Sprintf("q%d", i) {
				t.Fatalf("v%d: queued message %d is %q", v, i, m.Payload)
			}
		}
		third.Disconnect()
		pub.Close()
	}
}

// testSimultaneousConnects: two connects with one id on two nodes at once
// end with exactly one connected.
func testSimultaneousConnects(t *testing.T, nodes []*testNode) {
	for round := range 10 {
		id := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		clients := make([]*client.Client, 2)
		for i := range 2 {
			wg.Go(func() {
				ctx, cancel := ctxT()
				defer cancel()
				c, err := client.Connect(ctx, client.Options{Address: nodes[i].addr, ClientID: id, Version: packet.V5})
				if err == nil {
					clients[i] = c
					t.Cleanup(func() { c.Close() })
				}
			})
		}
		wg.Wait()
		connected := func() int {
			n := 0
			for _, tn := range nodes {
				if info, _, err := tn.b.Client(id); err == nil && info.Connected {
					n++
				}
			}
			return n
		}
		waitFor(t, 20*time.Second, "the loser closed", func() bool {
			open := 0
			for _, c := range clients {
				if c != nil && c.Err() == nil {
					open++
				}
			}
			return open == 1 && connected() == 1
		})
	}
}

// testWill: a client that dies on one node has its will delivered once
// to subscribers on every node [MQTT-3.1.2-8].
func testWill(t *testing.T, nodes []*testNode) {
	var got []*collector
	for i, tn := range nodes {
		c, g := connect(t, tn.addr, client.Options{ClientID: fmt.Sprintf("will-sub-%d", i), CleanStart: true})
		subscribe(t, c, "will/#", 1)
		got = append(got, g)
	}
	for _, tn := range nodes {
		waitForInterest(t, tn, "will/x")
	}
	time.Sleep(100 * time.Millisecond)
	dying, _ := connect(t, nodes[0].addr, client.Options{ClientID: "dying", CleanStart: true,
		Will: &packet.Will{Topic: "will/x", QoS: 1, Payload: []byte("gone")}})
	dying.Close() // no DISCONNECT: the will goes out
	waitFor(t, 20*time.Second, "the will on every node", func() bool {
		return got[0].len() == 1 && got[1].len() == 1 && got[2].len() == 1
	})
	time.Sleep(200 * time.Millisecond)
	for i, g := range got {
		if g.len() != 1 || string(g.all()[0].Payload) != "gone" {
			t.Fatalf("subscriber %d got %d wills", i, g.len())
		}
	}
}

// testRetained: a retained message set or cleared on any node is what a
// new subscriber on any node gets [MQTT-3.3.1-5, MQTT-3.3.1-6].
func testRetained(t *testing.T, nodes []*testNode) {
	pub0, _ := connect(t, nodes[0].addr, client.Options{ClientID: "ret-pub0", CleanStart: true})
	pub2, _ := connect(t, nodes[2].addr, client.Options{ClientID: "ret-pub2", CleanStart: true})
	publish(t, pub0, &packet.Publish{Topic: "ret/a", QoS: 1, Retain: true, Payload: []byte("a1")})
	publish(t, pub0, &packet.Publish{Topic: "ret/b", QoS: 1, Retain: true, Payload: []byte("b1")})
	publish(t, pub2, &packet.Publish{Topic: "ret/a", QoS: 1, Retain: true, Payload: []byte("a2")})
	publish(t, pub2, &packet.Publish{Topic: "ret/b", QoS: 1, Retain: true}) // clears
	for _, tn := range nodes {
		waitFor(t, 20*time.Second, "retained in step on "+tn.name, func() bool { return retainedOn(tn.b) == "ret/a=a2" })
	}
	sub, got := connect(t, nodes[1].addr, client.Options{ClientID: "ret-sub", CleanStart: true})
	subscribe(t, sub, "ret/#", 1)
	waitFor(t, 20*time.Second, "the retained message", func() bool { return got.len() == 1 })
	if m := got.all()[0]; m.Topic != "ret/a" || string(m.Payload) != "a2" || !m.Retain {
		t.Fatalf("new subscriber got %s=%q retain %v", m.Topic, m.Payload, m.Retain)
	}
	// An administrator's delete on one node clears it everywhere.
	if err := nodes[2].b.DeleteRetained("ret/a"); err != nil {
		t.Fatal(err)
	}
	for _, tn := range nodes {
		waitFor(t, 20*time.Second, "cleared on "+tn.name, func() bool { return retainedOn(tn.b) == "" })
	}
}

// retainedOn lists a broker's retained messages under ret/.
func retainedOn(b *broker.Broker) string {
	msgs, _, err := b.Retained("ret/#", 0, 100)
	if err != nil {
		return err.Error()
	}
	s := ""
	for _, m := range msgs {
		if s != "" {
			s += " "
		}
		s += m.Topic + "=" + string(m.Payload)
	}
	return s
}
