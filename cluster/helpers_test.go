package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
)

// testNode is one node of a test cluster: a broker on a loopback port
// with its cluster membership.
type testNode struct {
	name, addr, dir string
	node            *Node
	b               *broker.Broker
	ln              net.Listener
	served          chan error
}

func testLogger() *slog.Logger {
	if os.Getenv("TERN_CLUSTER_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newNode makes node name on cluster port port, joining peers, with its
// JetStream files in dir (the replicated store's replica among them:
// sessions survive a restart); serve opens its store and starts it. It
// is stopped when the test ends.
func newNode(t testing.TB, name, dir string, port, replicas int, peers []string) *testNode {
	t.Helper()
	tn := &testNode{name: name, dir: dir}
	n, err := New(Config{Node: name, Listen: fmt.Sprintf("127.0.0.1:%d", port), Peers: peers, DataDir: dir,
		Logger: testLogger(), Replicas: replicas})
	if err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
	tn.node = n
	t.Cleanup(tn.stop)
	return tn
}

// serve opens the node's store (once a quorum of the nodes is up) and
// its broker, and starts its cluster membership and its listener.
func (tn *testNode) serve(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := tn.node.OpenStore(ctx)
	if err != nil {
		t.Error(err)
		return
	}
	b, err := broker.New(broker.Options{Store: st, Cluster: tn.node, Logger: testLogger()})
	if err != nil {
		st.Close()
		t.Error(err)
		return
	}
	tn.b = b
	if err := tn.node.Start(ctx, tn.b); err != nil {
		t.Error(err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Error(err)
		return
	}
	tn.ln, tn.addr = ln, ln.Addr().String()
	tn.served = make(chan error, 1)
	go func() { tn.served <- tn.b.Serve(ln) }()
}

// stop closes the broker, then leaves the cluster.
func (tn *testNode) stop() {
	if tn.node == nil {
		return
	}
	if tn.b != nil {
		tn.b.Close()
		if tn.served != nil {
			<-tn.served
		}
	}
	tn.node.Close()
	tn.b, tn.node = nil, nil
}

func freePorts(t testing.TB, n int) []int {
	var ports []int
	for range n {
		p, err := freePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, p)
	}
	return ports
}

// startCluster starts n nodes, each listing the others as peers, as a
// deployment would, and waits until they see each other and JetStream
// is up.
func startCluster(t testing.TB, n int) []*testNode {
	t.Helper()
	ports := freePorts(t, n)
	nodes := make([]*testNode, n)
	for i := range n {
		var peers []string
		for j, p := range ports {
			if j != i {
				peers = append(peers, fmt.Sprintf("127.0.0.1:%d", p))
			}
		}
		nodes[i] = newNode(t, fmt.Sprintf("n%d", i+1), t.TempDir(), ports[i], min(n, 3), peers)
	}
	var wg sync.WaitGroup
	for _, tn := range nodes {
		wg.Go(func() { tn.serve(t) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	waitFor(t, 20*time.Second, "every node sees every other", func() bool {
		for _, tn := range nodes {
			if len(tn.node.Nodes()) != n {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tn := range nodes {
		if err := tn.node.Ready(ctx); err != nil {
			t.Fatalf("node %s not ready: %v", tn.name, err)
		}
	}
	return nodes
}

// waitFor waits up to d until ok: generous bounds, since a loaded machine
// (the race detector, other packages' tests) slows JetStream's replication.
func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// collector gathers what a client receives.
type collector struct {
	mu   sync.Mutex
	msgs []*packet.Publish
}

func (c *collector) add(p *packet.Publish) {
	c.mu.Lock()
	c.msgs = append(c.msgs, p)
	c.mu.Unlock()
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func (c *collector) all() []*packet.Publish {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*packet.Publish(nil), c.msgs...)
}

// connect connects a client to addr; received messages go to the
// returned collector.
func connect(t testing.TB, addr string, o client.Options) (*client.Client, *collector) {
	t.Helper()
	col := &collector{}
	o.Address = addr
	if o.OnMessage == nil {
		o.OnMessage = col.add
	}
	if o.Version == 0 {
		o.Version = packet.V5
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, o)
	if err != nil {
		t.Fatalf("connect %s to %s: %v", o.ClientID, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, col
}

// connectAfterLoss connects as a client does after a node was lost: while
// JetStream elects new leaders (seconds), connects are refused with
// "server unavailable", and the client tries again.
func connectAfterLoss(t testing.TB, addr string, o client.Options) (*client.Client, *collector) {
	t.Helper()
	col := &collector{}
	o.Address, o.OnMessage = addr, col.add
	if o.Version == 0 {
		o.Version = packet.V5
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := ctxT()
		c, err := client.Connect(ctx, o)
		cancel()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c, col
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect %s to %s: %v", o.ClientID, addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func ctxT() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func subscribe(t testing.TB, c *client.Client, filter string, qos byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Subscribe(ctx, packet.Subscription{Filter: filter, QoS: qos}); err != nil {
		t.Fatal(err)
	}
}

func publish(t testing.TB, c *client.Client, p *packet.Publish) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Publish(ctx, p); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// publishAfterLoss publishes as a client does after a node was lost:
// while JetStream has no quorum (leaders being elected) a QoS 1 or 2
// message is refused, and the client sends it again.
func publishAfterLoss(t testing.TB, c *client.Client, p *packet.Publish) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := ctxT()
		err := c.Publish(ctx, p)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish %s: %v", p.Topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func payloads(ps []*packet.Publish) []string {
	var s []string
	for _, p := range ps {
		s = append(s, string(p.Payload))
	}
	return s
}
