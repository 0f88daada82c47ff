package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/client"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// TestBridgeCrashKill9 checks the bridge's durability contract (package
// bridge): Tern killed -9 mid-stream loses nothing acknowledged that it
// forwards out to a remote. Tern runs as a child process with the durable
// store (sync durability) and a bridge to Debian's mosquitto with a
// remote prefix and a large queue bound: topics crash/q1/# out at QoS 1,
// crash/q2/# at QoS 2. Four publishers (two QoS 1, two QoS 2) send
// numbered messages into Tern and resend what is unacknowledged after
// each reconnect; one persistent exactly-once subscriber on mosquitto
// counts what arrives under site1/crash/#. Tern is SIGKILLed and restarted
// on the same data directory three times during the stream; before the
// second kill mosquitto hangs (SIGSTOP) for a second, so that the kill
// hits a backlog queued for the bridge in Tern's store. At the end
// every message acknowledged to a publisher (PUBACK, PUBREC) must have
// reached the subscriber. Duplicates are allowed at both QoS levels (the
// bridge is at least once around a crash of Tern, QoS 2 included) but
// bounded: each kill can repeat at most what was in flight then.
//
// TERN_CRASH_NOKILL=1 runs the same load without kills (then QoS 2 must
// arrive exactly once); TERN_CRASH_BROKER_ARGS adds broker flags (with
// "--no-persist" the test must fail); TERN_CRASH_SEED=n replays the
// random choices.
func TestBridgeCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs the broker as a child process and SIGKILLs it, ~15 s; skipped with -short")
	}
	const (
		loadFor   = 9 * time.Second // publishing under kills
		killCount = 3
		finishFor = 10 * time.Second // publishers get everything acknowledged
		drainFor  = 25 * time.Second // the subscriber receives everything acknowledged
		lingerFor = 500 * time.Millisecond
		pauseFor  = time.Second // mosquitto hangs before the second kill
		// What one kill can make the bridge send again: the messages
		// the broker had delivered to the bridge's session and not yet
		// seen acknowledged (limits.max_inflight, default 100).
		bridgeWindow = 100
	)
	crash := os.Getenv("TERN_CRASH_NOKILL") != "1"
	seed := crashSeed(t)
	t.Logf("seed %d (TERN_CRASH_SEED), kills enabled: %v", seed, crash)
	rng := rand.New(rand.NewPCG(seed, 2))
	begin := time.Now()

	mq := mt.StartMosquitto(t, false)
	addr := freeAddr(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "tern.yaml")
	// probe/# is there to tell when the bridge has subscribed locally:
	// it subscribes to all its local filters in one SUBSCRIBE.
	yaml := fmt.Sprintf(`bridges:
  - name: mosq
    url: tcp://%s
    client_id: tern-crash-edge
    queue: {max_messages: 100000}
    topics:
      - {pattern: "crash/q1/#", direction: out, qos: 1, remote_prefix: "site1/"}
      - {pattern: "crash/q2/#", direction: out, qos: 2, remote_prefix: "site1/"}
      - {pattern: "probe/#", direction: out, qos: 1, remote_prefix: "site1/"}
`, mq.Addr)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"serve", "--config", conf, "--listen", addr, "--data-dir", filepath.Join(dir, "data"),
		"--log-level", "warn", "--admin", ""}
	if extra := os.Getenv("TERN_CRASH_BROKER_ARGS"); extra != "" {
		args = append(args, strings.Fields(extra)...)
	}
	bp := runBrokerProc(t, addr, args, begin)
	epoch := func() int { return int(bp.starts.Load()) }

	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()

	// The subscriber on mosquitto stays connected throughout: mosquitto
	// would drop beyond max_queued_messages (1000) for it while away.
	sub := newSubscriber("mosq", mq.Addr, "site1/crash/#", begin, epoch)
	sub.draining.Store(true)
	{
		r := rand.New(rand.NewPCG(seed, rng.Uint64()))
		wg.Go(func() { sub.run(ctx, r) })
	}
	select {
	case <-sub.subscribedC:
	case <-time.After(10 * time.Second):
		t.Fatalf("subscriber not subscribed on mosquitto after 10 s: %+v", sub.result())
	}
	probeBridge(t, addr, mq.Addr)

	var pubs []*publisher
	for _, spec := range []struct {
		name string
		qos  byte
	}{{"q1a", 1}, {"q1b", 1}, {"q2a", 2}, {"q2b", 2}} {
		pubs = append(pubs, &publisher{name: spec.name, clientID: "bridge-crash-pub-" + spec.name,
			topic: fmt.Sprintf("crash/q%d/%s", spec.qos, spec.name), addr: addr, qos: spec.qos, epoch: epoch})
	}
	stopProducing := make(chan struct{})
	var pubWG sync.WaitGroup
	for _, p := range pubs {
		r := rand.New(rand.NewPCG(seed, rng.Uint64()))
		pubWG.Go(func() { p.run(ctx, r, stopProducing) })
	}
	pubsDone := make(chan struct{})
	wg.Go(func() { pubWG.Wait(); close(pubsDone) })

	kills := 0
	if crash {
		// Before the second kill mosquitto hangs for a second, so that
		// the bridge's queue in Tern's store is what the kill hits; it
		// goes on once Tern is back.
		paused := false
		kills = bp.killDuring(t, rng, loadFor, killCount, func(i int) {
			if i == 1 {
				mq.Pause()
				paused = true
				time.Sleep(pauseFor)
			}
		}, func(int) {
			if paused {
				mq.Resume()
				paused = false
			}
		})
	} else {
		time.Sleep(loadFor)
	}
	close(stopProducing)
	select {
	case <-pubsDone:
	case <-time.After(finishFor):
		t.Errorf("publishers not finished %v after they stopped producing", finishFor)
	}

	var want []msgKey
	byName := map[string]pubResult{}
	for _, p := range pubs {
		r := p.result()
		byName[r.name] = r
		for i, ok := range r.acked {
			if ok {
				want = append(want, msgKey{r.name, i + 1})
			}
		}
	}
	drainStart := time.Now()
	for time.Since(drainStart) < drainFor && !sub.has(want) {
		time.Sleep(50 * time.Millisecond)
	}
	drained := time.Since(drainStart)
	time.Sleep(lingerFor) // late duplicates
	if err := bp.alive(); err != nil {
		t.Error(err)
	}
	cancel()
	wg.Wait()

	sent, acked, resent := tallyPublishers(t, byName, true)
	c := checkSubscriber(t, sub.result(), byName, crash)
	for _, q := range []int{1, 2} {
		t.Logf("QoS %d: sent=%d acked=%d received=%d duplicates=%d lost=%d of %d acknowledged",
			q, sent[q], acked[q], c.received[q], c.dups[q], c.missing[q], acked[q])
		if acked[q] == 0 {
			t.Errorf("QoS %d: nothing acknowledged", q)
		}
	}
	// Bounds on duplicates: each kill repeats at most the bridge's window,
	// and at QoS 1 also what each publisher had unacknowledged (stored by
	// Tern, PUBACK lost with the kill).
	if max2 := kills * bridgeWindow; c.dups[2] > max2 {
		t.Errorf("QoS 2: %d duplicates, more than %d kills x %d in flight", c.dups[2], kills, bridgeWindow)
	}
	if max1 := kills * (bridgeWindow + 2*crashInflight); c.dups[1] > max1 {
		t.Errorf("QoS 1: %d duplicates, more than %d kills x (%d + 2 x %d) in flight", c.dups[1], kills, bridgeWindow, crashInflight)
	}
	t.Logf("kills=%d resent after reconnect=%d%s; drained in %v; took %v", kills, resent, c.summary,
		drained.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
}

// probeBridge publishes on probe/x into Tern at tern until it arrives on
// mosquitto at mq as site1/probe/x: then the bridge is connected to both
// and subscribed locally. Bounded to 15 s.
func probeBridge(t *testing.T, tern, mq string) {
	t.Helper()
	got := make(chan struct{}, 1)
	rs, err := client.NewSession(client.SessionOptions{Options: client.Options{Address: mq,
		OnMessage: func(*packet.Publish) {
			select {
			case got <- struct{}{}:
			default:
			}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := rs.Subscribe(ctx, packet.Subscription{Filter: "site1/probe/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	ls, err := client.NewSession(client.SessionOptions{Options: client.Options{Address: tern}})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	for {
		if err := ls.Publish(ctx, &packet.Publish{Topic: "probe/x", QoS: 1, Payload: []byte("probe")}); err != nil {
			t.Fatalf("probe: %v", err)
		}
		select {
		case <-got:
			return
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("probe: the bridge did not forward probe/x to mosquitto within 15 s")
		}
	}
}
