package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mt "github.com/ternmq/tern/internal/mqtttest"
)

// TestMain lets a test run the tern binary itself: with TERN_TEST_RUN_MAIN=1
// the test binary is tern, with the newline-separated arguments in
// TERN_TEST_ARGS. TestCrashKill9 uses it to run the broker as a process it
// can SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("TERN_TEST_RUN_MAIN") != "1" {
		os.Exit(m.Run())
	}
	var args []string
	if a := os.Getenv("TERN_TEST_ARGS"); a != "" {
		args = strings.Split(a, "\n")
	}
	// A child whose test process is gone must not live on: the parent
	// holds the write end of our stdin and never writes, so EOF means it
	// died (or forgot us).
	if os.Getenv("TERN_TEST_EXIT_ON_STDIN_EOF") == "1" {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			os.Exit(3)
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// brokerProc is the broker running as a child process on a fixed address.
// Its methods are for one goroutine (the test's).
type brokerProc struct {
	addr   string
	args   []string
	out    *mt.SyncBuffer
	start0 time.Time

	cmd     *exec.Cmd
	keep    *os.File      // write end of the child's stdin
	exited  chan struct{} // closed when the child has exited
	waitErr error         // valid after exited is closed
	starts  atomic.Int32
}

// event marks a start, kill or stop in the broker's output.
func (b *brokerProc) event(format string, args ...any) {
	fmt.Fprintf(b.out, "=== %7v %s ===\n", time.Since(b.start0).Round(time.Millisecond), fmt.Sprintf(format, args...))
}

// start runs the broker and waits until it accepts connections.
func (b *brokerProc) start() error {
	n := b.starts.Add(1)
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "TERN_TEST_RUN_MAIN=1", "TERN_TEST_EXIT_ON_STDIN_EOF=1",
		"TERN_TEST_ARGS="+strings.Join(b.args, "\n"))
	cmd.Stdin = r
	cmd.Stdout = b.out
	cmd.Stderr = b.out
	b.event("broker start #%d", n)
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return err
	}
	r.Close()
	exited := make(chan struct{})
	b.cmd, b.keep, b.exited = cmd, w, exited
	go func() {
		b.waitErr = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
			b.event("broker start #%d accepting (pid %d)", n, cmd.Process.Pid)
			return nil
		}
		if time.Now().After(deadline) {
			b.kill()
			return fmt.Errorf("broker start #%d: %s not accepting after 15 s: %v", n, b.addr, err)
		}
		select {
		case <-exited:
			b.keep.Close()
			b.cmd = nil
			return fmt.Errorf("broker start #%d exited while starting: %v", n, b.waitErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// alive reports whether the running broker has not exited on its own.
func (b *brokerProc) alive() error {
	if b.cmd == nil {
		return fmt.Errorf("broker not running")
	}
	select {
	case <-b.exited:
		return fmt.Errorf("broker start #%d exited by itself: %v", b.starts.Load(), b.waitErr)
	default:
		return nil
	}
}

// kill SIGKILLs the broker and waits for it to be gone.
func (b *brokerProc) kill() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
	b.keep.Close()
	b.cmd = nil
	b.event("broker start #%d killed with SIGKILL", b.starts.Load())
}

// stop asks the broker to shut down gracefully, then kills it if it has not
// exited within 10 s. It returns an error if the broker did not exit with 0.
func (b *brokerProc) stop() error {
	if b.cmd == nil {
		return nil
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		b.kill()
		return fmt.Errorf("broker did not exit within 10 s of SIGTERM")
	}
	b.keep.Close()
	b.cmd = nil
	b.event("broker start #%d stopped with SIGTERM: %v", b.starts.Load(), b.waitErr)
	if b.waitErr != nil {
		return fmt.Errorf("broker exited after SIGTERM: %v", b.waitErr)
	}
	return nil
}

// crashSeed is the seed of a crash test's random moments: TERN_CRASH_SEED
// replays a run.
func crashSeed(t *testing.T) uint64 {
	s := os.Getenv("TERN_CRASH_SEED")
	if s == "" {
		return uint64(time.Now().UnixNano())
	}
	seed, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("TERN_CRASH_SEED: %v", err)
	}
	return seed
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, below Linux's ephemeral range (32768 and up): a broker started
// later binds it, and meanwhile an outgoing connection (the cluster's
// make many) may take any free ephemeral port.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000)))
		if err != nil {
			continue
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	t.Fatal("no free port between 20000 and 32000")
	return ""
}

// runBrokerProc starts the tern binary with args, listening on addr, and
// stops it when the test ends; a race or a panic in its output fails the
// test, and a failed test shows the output.
func runBrokerProc(t *testing.T, addr string, args []string, begin time.Time) *brokerProc {
	t.Helper()
	bp := &brokerProc{addr: addr, args: args, out: &mt.SyncBuffer{}, start0: begin}
	t.Cleanup(func() {
		if err := bp.stop(); err != nil {
			t.Error(err)
		}
		out := bp.out.String()
		if strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic:") {
			t.Error("broker output has a data race or a panic")
		}
		if t.Failed() {
			if len(out) > 20000 {
				out = "...\n" + out[len(out)-20000:]
			}
			t.Logf("broker output (with the test's === markers):\n%s", out)
		}
	})
	if err := bp.start(); err != nil {
		t.Fatal(err)
	}
	return bp
}

// killDuring SIGKILLs and restarts the broker n times over the next
// loadFor: once at a random moment in each n-th of it, each after at
// least 300 ms of uptime. beforeKill and afterStart, when not nil, run
// just before kill i and just after the restart that follows. It returns
// when loadFor is over, with the broker running, and the number of kills.
func (b *brokerProc) killDuring(t *testing.T, rng *rand.Rand, loadFor time.Duration, n int, beforeKill, afterStart func(i int)) int {
	t.Helper()
	loadStart := time.Now()
	slot := loadFor / time.Duration(n)
	for i := range n {
		at := time.Duration(i)*slot + 200*time.Millisecond + time.Duration(rng.Int64N(int64(slot-400*time.Millisecond)))
		time.Sleep(max(time.Until(loadStart.Add(at)), 300*time.Millisecond))
		if err := b.alive(); err != nil {
			t.Fatal(err)
		}
		if beforeKill != nil {
			beforeKill(i)
		}
		b.kill()
		if err := b.start(); err != nil {
			t.Fatal(err)
		}
		if afterStart != nil {
			afterStart(i)
		}
	}
	time.Sleep(time.Until(loadStart.Add(loadFor)))
	if err := b.alive(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCrashKill9 checks the durability contract: after kill -9 and restart
// no acknowledged message is lost, QoS 2 stays exactly once and persistent
// sessions survive. Four publishers (two QoS 1, two QoS 2) and two
// exactly-once subscribers that go offline now and then run against a
// broker process that is SIGKILLed five times under load, then once more
// after the publishers have finished.
//
// To tell harness problems from broker problems: TERN_CRASH_NOKILL=1 runs
// the same load without kills; TERN_CRASH_BROKER_ARGS adds broker flags
// (with "--no-persist" the test must fail: it proves the checks bite).
// TERN_CRASH_SEED=n replays the random choices (not the timing).
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs the broker as a child process and SIGKILLs it, ~20 s; skipped with -short")
	}
	const (
		loadFor   = 16 * time.Second // publishing under kills
		killCount = 5
		finishFor = 10 * time.Second // publishers get everything acknowledged
		drainFor  = 20 * time.Second // subscribers receive everything acknowledged
		lingerFor = 500 * time.Millisecond
	)
	crash := os.Getenv("TERN_CRASH_NOKILL") != "1"
	seed := crashSeed(t)
	t.Logf("seed %d (TERN_CRASH_SEED), kills enabled: %v", seed, crash)
	rng := rand.New(rand.NewPCG(seed, 1))
	begin := time.Now()

	addr := freeAddr(t)
	args := []string{"serve", "--listen", addr, "--data-dir", t.TempDir(), "--log-level", "warn", "--admin", ""}
	if extra := os.Getenv("TERN_CRASH_BROKER_ARGS"); extra != "" {
		args = append(args, strings.Fields(extra)...)
	}
	bp := runBrokerProc(t, addr, args, begin)
	epoch := func() int { return int(bp.starts.Load()) }

	// Everything the clients do ends with ctx; the test waits for them.
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()

	subs := []*subscriber{newSubscriber("s1", addr, "crash/#", begin, epoch), newSubscriber("s2", addr, "crash/#", begin, epoch)}
	for _, s := range subs {
		r := rand.New(rand.NewPCG(seed, rng.Uint64()))
		wg.Go(func() { s.run(ctx, r) })
	}
	for _, s := range subs {
		select {
		case <-s.subscribedC:
		case <-time.After(10 * time.Second):
			t.Fatalf("subscriber %s not subscribed after 10 s: %+v", s.name, s.result())
		}
	}

	var pubs []*publisher
	for _, spec := range []struct {
		name string
		qos  byte
	}{{"q1a", 1}, {"q1b", 1}, {"q2a", 2}, {"q2b", 2}} {
		pubs = append(pubs, &publisher{name: spec.name, clientID: "crash-pub-" + spec.name, topic: "crash/" + spec.name,
			addr: addr, qos: spec.qos, epoch: epoch})
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
		kills = bp.killDuring(t, rng, loadFor, killCount, nil, nil)
	} else {
		time.Sleep(loadFor)
	}

	// Publishers finish: no new messages; everything sent gets acknowledged
	// and completed.
	close(stopProducing)
	select {
	case <-pubsDone:
	case <-time.After(finishFor):
		t.Errorf("publishers not finished %v after they stopped producing", finishFor)
	}
	for _, s := range subs {
		s.draining.Store(true)
	}
	if crash {
		bp.kill()
		kills++
		if err := bp.start(); err != nil {
			t.Fatal(err)
		}
	}

	// What the subscribers must get: every acknowledged message.
	var results []pubResult
	var want []msgKey
	for _, p := range pubs {
		r := p.result()
		results = append(results, r)
		for i, ok := range r.acked {
			if ok {
				want = append(want, msgKey{r.name, i + 1})
			}
		}
	}
	drainStart := time.Now()
	for time.Since(drainStart) < drainFor {
		if !slices.ContainsFunc(subs, func(s *subscriber) bool { return !s.has(want) }) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	drained := time.Since(drainStart)
	time.Sleep(lingerFor) // late duplicates
	if err := bp.alive(); err != nil {
		t.Error(err)
	}
	cancel()
	wg.Wait()

	// Per-publisher expectations.
	byName := map[string]pubResult{}
	for _, r := range results {
		byName[r.name] = r
	}
	sentQ, ackedQ, resent := tallyPublishers(t, byName, false)
	completed := 0
	for _, r := range results {
		completed += r.completed
	}

	summary := fmt.Sprintf("kills=%d published qos1=%d acked=%d, qos2=%d acked=%d completed=%d, resent after reconnect=%d",
		kills, sentQ[1], ackedQ[1], sentQ[2], ackedQ[2], completed, resent)
	for _, s := range subs {
		summary += checkSubscriber(t, s.result(), byName, false).summary
	}
	t.Logf("%s; drained in %v; took %v", summary, drained.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
}

// subCheck is what checkSubscriber found.
type subCheck struct {
	summary  string // the subscriber's part of the summary line
	received [3]int // by QoS: distinct messages delivered
	missing  [3]int // by QoS: acknowledged messages never delivered
	dups     [3]int // by QoS: deliveries beyond the first
}

// checkSubscriber reports what subscriber r got wrong. With dup2OK a QoS 2
// message delivered more than once is logged, not an error.
func checkSubscriber(t *testing.T, r subResult, pubs map[string]pubResult, dup2OK bool) subCheck {
	t.Helper()
	const show = 8
	if r.err != nil {
		t.Errorf("subscriber %s: %v", r.name, r.err)
	}
	for _, e := range r.errs {
		t.Errorf("subscriber %s: %s", r.name, e)
	}
	counts := map[msgKey]int{}
	byKey := map[msgKey][]delivery{}
	last := map[string]int{}
	var unknown, disorder []string
	deliveries, suppressed := 0, 0
	for _, d := range r.log {
		byKey[d.key] = append(byKey[d.key], d)
		if !d.first {
			suppressed++
			continue
		}
		deliveries++
		p, ok := pubs[d.key.pub]
		if !ok || d.key.seq < 1 || d.key.seq > p.sent || d.qos != p.qos {
			unknown = append(unknown, d.String())
			continue
		}
		counts[d.key]++
		if counts[d.key] == 1 {
			if d.key.seq < last[d.key.pub] {
				disorder = append(disorder, fmt.Sprintf("%v after %s#%d", d, d.key.pub, last[d.key.pub]))
			}
			last[d.key.pub] = d.key.seq
		}
	}
	var missing, dup2 []string
	var firstMissing msgKey
	var dups, received, missingQ [3]int
	names := make([]string, 0, len(pubs))
	for n := range pubs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := pubs[n]
		for i := range p.sent {
			k := msgKey{n, i + 1}
			c := counts[k]
			if c > 0 {
				received[p.qos]++
			}
			if c == 0 && p.acked[i] {
				missingQ[p.qos]++
				if len(missing) == 0 {
					firstMissing = k
				}
				missing = append(missing, k.String())
			}
			if c > 1 {
				dups[p.qos] += c - 1
				if p.qos == 2 {
					var ds []string
					for _, d := range byKey[k] {
						ds = append(ds, d.String())
					}
					dup2 = append(dup2, fmt.Sprintf("%v delivered %d times: %s", k, c, strings.Join(ds, "; ")))
				}
			}
		}
	}
	report := func(what string, list []string) {
		if len(list) == 0 {
			return
		}
		t.Errorf("subscriber %s: %d %s, first %d:\n  %s", r.name, len(list), what, min(show, len(list)),
			strings.Join(list[:min(show, len(list))], "\n  "))
	}
	report("acknowledged messages never delivered", missing)
	if dup2OK {
		if len(dup2) > 0 {
			t.Logf("subscriber %s: %d QoS 2 messages delivered more than once, first %d:\n  %s", r.name, len(dup2), min(show, len(dup2)),
				strings.Join(dup2[:min(show, len(dup2))], "\n  "))
		}
	} else {
		report("QoS 2 messages delivered more than once", dup2)
	}
	report("messages delivered out of order (first deliveries of one publisher)", disorder)
	report("deliveries of messages never published (or at the wrong QoS)", unknown)
	if len(missing) > 0 {
		// What arrived around the first gap helps tell a lost write from
		// a lost queue entry.
		k := firstMissing
		var mine []delivery
		for _, d := range r.log {
			if d.key.pub == k.pub {
				mine = append(mine, d)
			}
		}
		i := slices.IndexFunc(mine, func(d delivery) bool { return d.key.seq > k.seq })
		if i < 0 {
			i = len(mine)
		}
		var around []string
		for _, d := range mine[max(0, i-6):min(len(mine), i+6)] {
			around = append(around, d.String())
		}
		t.Logf("subscriber %s: deliveries from %s around the first missing message %v:\n  %s", r.name, k.pub, k, strings.Join(around, "\n  "))
	}
	return subCheck{
		summary: fmt.Sprintf("; %s: deliveries=%d dups qos1=%d qos2=%d resends-suppressed=%d connects=%d offline=%d",
			r.name, deliveries, dups[1], dups[2], suppressed, r.connects, r.offline),
		received: received, missing: missingQ, dups: dups,
	}
}

// tallyPublishers sums what the publishers sent and had acknowledged, by
// QoS, and fails the test for a publisher that failed or ended with
// messages unacknowledged. A session found missing on reconnect fails it
// when lostSessionFails, and is logged otherwise.
func tallyPublishers(t *testing.T, byName map[string]pubResult, lostSessionFails bool) (sent, acked [3]int, resent int) {
	t.Helper()
	for _, r := range byName {
		sent[r.qos] += r.sent
		acked[r.qos] += r.ackedN
		resent += r.resent
		if r.err != nil {
			t.Errorf("publisher %s: %v", r.name, r.err)
		}
		if r.inflight > 0 {
			t.Errorf("publisher %s: %d messages still unacknowledged or uncompleted at the end", r.name, r.inflight)
		}
		if len(r.sessionLost) > 0 {
			if lostSessionFails {
				t.Errorf("publisher %s: session not present on %v", r.name, r.sessionLost)
			} else {
				t.Logf("publisher %s: session not present on %v", r.name, r.sessionLost)
			}
		}
		if len(r.notes) > 0 {
			t.Logf("publisher %s notes: %v", r.name, r.notes)
		}
	}
	return sent, acked, resent
}
