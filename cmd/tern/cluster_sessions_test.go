package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestClusterSessionsKill9 checks the replicated-session contract with
// three tern serve processes: a persistent subscriber (QoS 2, ck/#) whose
// session is homed on node 1 goes offline; publishers at QoS 1 and QoS 2
// publish through node 2 while a node is SIGKILLed and restarted three
// times; then the subscriber comes back on node 3. Every message a
// publisher saw acknowledged must arrive, once at QoS 2, in order per
// publisher. The node killed is, by subtest:
//   - home: node 1, the subscriber's (its session and queue are in the
//     replicated store, and what is published meanwhile in the stream);
//   - publishers: node 2, the publishers' (they list node 3 too and go
//     on there; what node 2 acknowledged is replicated);
//   - rolling: every node in turn, stopped with SIGTERM and restarted.
//
// TERN_CRASH_SEED=n replays the moments of the kills.
func TestClusterSessionsKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs three tern serve processes and kills them, ~1 min; skipped with -short")
	}
	seed := crashSeed(t)
	t.Logf("seed %d (TERN_CRASH_SEED)", seed)
	for i, victim := range []string{"home", "publishers", "rolling"} {
		t.Run(victim, func(t *testing.T) {
			clusterSessionsUnderLoss(t, victim, rand.New(rand.NewPCG(seed, uint64(i))))
		})
	}
}

func clusterSessionsUnderLoss(t *testing.T, victim string, rng *rand.Rand) {
	const (
		loadFor  = 9 * time.Second
		rate     = 100 // messages per second per publisher
		finishBy = 20 * time.Second
		drainBy  = 30 * time.Second
		linger   = 500 * time.Millisecond
	)
	begin := time.Now()
	nodes := startClusterProcs(t, 3, begin)
	url := func(i int) string { return "tcp://" + nodes[i].addr }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The subscriber's session is made on node 1 and left there.
	sub := &clusterSub{name: "away", node: 0, begin: begin, got: map[msgKey]int{}, qos: 2}
	if err := sub.start(ctx, []string{url(0)}); err != nil {
		t.Fatal(err)
	}
	pubServers := []string{url(1)}
	if victim != "home" {
		pubServers = append(pubServers, url(2), url(0))
	}
	var pubs []*clusterPub
	for _, q := range []byte{1, 2} {
		p := &clusterPub{name: fmt.Sprintf("p2q%d", q), node: 1, qos: q}
		if err := p.start(pubServers); err != nil {
			t.Fatalf("publisher %s: %v", p.name, err)
		}
		defer p.close()
		pubs = append(pubs, p)
	}
	awaitProbes(t, ctx, pubs, []*clusterSub{sub})
	sub.close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range pubs {
		wg.Go(func() { p.produce(stop, rate) })
	}
	switch victim {
	case "home":
		nodes[0].killDuring(t, rng, loadFor, 3, nil, nil)
	case "publishers":
		nodes[1].killDuring(t, rng, loadFor, 3, nil, nil)
	case "rolling":
		start := time.Now()
		for i, n := range nodes {
			time.Sleep(time.Until(start.Add(time.Duration(i) * loadFor / 3).Add(time.Second)))
			if err := n.stop(); err != nil {
				t.Fatalf("%s: %v", n.name, err)
			}
			if err := n.start(); err != nil {
				t.Fatalf("%s: %v", n.name, err)
			}
			n.awaitReady(t, 3)
		}
		time.Sleep(time.Until(start.Add(loadFor)))
	}
	close(stop)
	wg.Wait()
	for _, p := range pubs {
		if !p.finish(finishBy) {
			t.Errorf("publisher %s: %d messages without an outcome %v after the load", p.name, p.pending(), finishBy)
		}
	}

	// The subscriber comes back on node 3, for the session it left.
	back := &clusterSub{name: "away", node: 2, begin: begin, got: map[msgKey]int{}, qos: 2}
	if err := back.resume([]string{url(2)}); err != nil {
		t.Fatal(err)
	}
	defer back.close()
	drainStart := time.Now()
	for time.Since(drainStart) < drainBy {
		done := true
		for _, p := range pubs {
			done = done && back.has(p.name, p.ackedSeqs())
		}
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(linger) // late duplicates
	t.Logf("subscriber on node 3: %d connections (%d with the session present), %d lost", back.connects.Load(), back.present.Load(), back.lost.Load())
	if back.present.Load() == 0 {
		t.Error("the session was not present on node 3")
	}
	for _, p := range pubs {
		r := p.result()
		c := back.count(p.name, r)
		t.Logf("%s (QoS %d) via node 2: sent %d, acknowledged %d, refused %d; on node 3: received %d, lost %d, duplicates %d, out of order %d",
			p.name, p.qos, r.sent, r.ackedN, r.failed, c.received, c.lost, c.dups, c.disorder)
		if c.lost > 0 {
			t.Errorf("%s: %d acknowledged messages lost (first %v)", p.name, c.lost, c.firstLost)
		}
		if p.qos == 2 && c.dups > 0 {
			t.Errorf("%s: %d duplicates at QoS 2", p.name, c.dups)
		}
		if c.disorder > 0 {
			t.Errorf("%s: %d messages out of order", p.name, c.disorder)
		}
		if r.ackedN == 0 {
			t.Errorf("%s: nothing acknowledged", p.name)
		}
	}
}
