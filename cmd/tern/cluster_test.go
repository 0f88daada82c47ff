package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/ternmq/tern/client"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

func TestClusterFlags(t *testing.T) {
	var f serveFlags
	fs := f.flagSet(io.Discard)
	err := fs.Parse([]string{"--node", "n1", "--cluster-listen", "127.0.0.1:7001",
		"--cluster-peer", "127.0.0.1:7002", "--cluster-peer", "127.0.0.1:7003"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	cfg.Cluster = ClusterConfig{Node: "file", Peers: []string{"127.0.0.1:9999"}, Replicas: 2}
	f.apply(&cfg)
	want := ClusterConfig{Node: "n1", Listen: "127.0.0.1:7001", Peers: []string{"127.0.0.1:7002", "127.0.0.1:7003"}, Replicas: 2}
	if !slices.Equal(cfg.Cluster.Peers, want.Peers) || cfg.Cluster.Node != want.Node || cfg.Cluster.Listen != want.Listen || cfg.Cluster.Replicas != 2 {
		t.Fatalf("flags over the file: %+v, want %+v", cfg.Cluster, want)
	}
	cc, err := clusterConfig(cfg, "/data", nil)
	if err != nil || cc.DataDir != "/data" || cc.Node != "n1" || len(cc.Peers) != 2 {
		t.Fatalf("cluster config %+v, %v", cc, err)
	}

	var g serveFlags
	if err := g.flagSet(io.Discard).Parse([]string{"--node", "n2", "--cluster-nats", "nats://a:4222, nats://b:4222", "--cluster-nats", "c:4222"}); err != nil {
		t.Fatal(err)
	}
	cfg = defaultConfig()
	g.apply(&cfg)
	if !slices.Equal(cfg.Cluster.NATSURLs, []string{"nats://a:4222", "nats://b:4222", "c:4222"}) || !cfg.Cluster.enabled() || cfg.Cluster.embedded() {
		t.Fatalf("--cluster-nats: %+v", cfg.Cluster)
	}
	if _, err := clusterConfig(cfg, "", nil); err != nil {
		t.Fatal(err)
	}

	// No cluster flags and no section: a single node.
	cfg = defaultConfig()
	var none serveFlags
	none.apply(&cfg)
	if cfg.Cluster.enabled() {
		t.Fatalf("no flags: cluster %+v enabled", cfg.Cluster)
	}
	// An empty tls subsection asks for nothing.
	cfg.Cluster.TLS = &ClusterTLS{}
	if cfg.Cluster.enabled() {
		t.Fatal("an empty cluster.tls enables the cluster")
	}
}

// TestServeWithoutClusterRunsNoNATS: without cluster flags or section,
// no NATS code runs in tern serve.
func TestServeWithoutClusterRunsNoNATS(t *testing.T) {
	cfg := defaultConfig()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Storage.Persist = new(false)
	startServe(t, cfg)
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "nats-io") || strings.Contains(stacks, "ternmq/tern/cluster") {
		t.Fatalf("a single node runs NATS or cluster code:\n%s", stacks)
	}
}

// clusterNode is a tern serve process that is a node of a cluster.
type clusterNode struct {
	*brokerProc
	name, admin, route string
}

// startClusterProcs runs n tern serve processes on loopback, each with its
// own data directory, admin address and cluster address, each listing the
// others as --cluster-peer; extra are more flags for all. They start at
// once, as a deployment's would, and the test waits until every node's
// /readyz answers 200 (JetStream up) and every node hears from all the
// others. They are stopped (SIGTERM) when the test ends.
func startClusterProcs(t *testing.T, n int, begin time.Time, extra ...string) []*clusterNode {
	t.Helper()
	nodes := make([]*clusterNode, n)
	for i := range n {
		nodes[i] = &clusterNode{name: fmt.Sprintf("n%d", i+1), admin: freeAddr(t), route: freeAddr(t)}
	}
	// A short drain: the tests' clients that are gone do not come back
	// for their sessions, and the stop must not wait the default 10 s.
	conf := filepath.Join(t.TempDir(), "cluster.yaml")
	// Room for every message the tests queue for an offline session.
	if err := os.WriteFile(conf, []byte("cluster:\n  drain_timeout: 1s\nlimits:\n  max_queued_messages: 100000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, cn := range nodes {
		args := []string{"serve", "--listen", "", "--node", cn.name, "--cluster-listen", cn.route,
			"--data-dir", t.TempDir(), "--admin", cn.admin, "--log-level", "warn", "--config", conf}
		for j, o := range nodes {
			if j != i {
				args = append(args, "--cluster-peer", o.route)
			}
		}
		args = append(args, extra...)
		addr := freeAddr(t)
		args[2] = addr
		cn.brokerProc = &brokerProc{addr: addr, args: args, out: &mt.SyncBuffer{}, start0: begin}
		t.Cleanup(func() {
			if err := cn.stop(); err != nil {
				t.Errorf("%s: %v", cn.name, err)
			}
			out := cn.out.String()
			if strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic:") {
				t.Errorf("%s: output has a data race or a panic", cn.name)
			}
			if t.Failed() {
				if len(out) > 12000 {
					out = "...\n" + out[len(out)-12000:]
				}
				t.Logf("%s output (with the test's === markers):\n%s", cn.name, out)
			}
		})
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, cn := range nodes {
		wg.Go(func() { errs[i] = cn.start() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", nodes[i].name, err)
		}
	}
	for _, cn := range nodes {
		cn.awaitReady(t, n)
	}
	t.Logf("cluster of %d up after %v", n, time.Since(begin).Round(time.Millisecond))
	return nodes
}

// clusterView is GET /api/v1/cluster.
type clusterView struct {
	Enabled bool   `json:"enabled"`
	Node    string `json:"node"`
	Ready   bool   `json:"ready"`
	Nodes   []struct {
		Name string `json:"name"`
		Self bool   `json:"self"`
	} `json:"nodes"`
	Stats map[string]uint64 `json:"stats"`
}

func (cn *clusterNode) get(path string) (int, []byte, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + cn.admin + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (cn *clusterNode) cluster(t *testing.T) clusterView {
	t.Helper()
	code, b, err := cn.get("/api/v1/cluster")
	if err != nil || code != 200 {
		t.Fatalf("%s: GET /api/v1/cluster: %d %s %v", cn.name, code, b, err)
	}
	var v clusterView
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: /api/v1/cluster %s: %v", cn.name, b, err)
	}
	return v
}

// awaitReady waits, at most 30 s, until the node's /readyz answers 200
// and it hears from n nodes.
func (cn *clusterNode) awaitReady(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, b, err := cn.get("/readyz")
		if code == 200 && len(cn.cluster(t).Nodes) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready with %d nodes after 30 s: /readyz %d %s %v; /api/v1/cluster %+v", cn.name, n, code, b, err, cn.cluster(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterInterop runs three tern serve processes as one cluster and
// checks it with clients we did not write: mosquitto_pub on node 1 and
// mosquitto_sub on node 2 agree at every QoS and protocol version, a
// retained message set on node 1 reaches a subscriber on node 3, and a
// persistent session moves from node 2 to node 3 with what was queued for
// it. Each node shows the others in /api/v1/cluster, /metrics and
// $SYS/broker/cluster/nodes; /readyz answers once JetStream is up. A node
// stopped with SIGTERM tells its MQTT 5 clients DISCONNECT 0x8B, and the
// others see it leave.
func TestClusterInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three tern serve processes; skipped with -short")
	}
	pub, sub := mosquitto(t, "mosquitto_pub"), mosquitto(t, "mosquitto_sub")
	begin := time.Now()
	nodes := startClusterProcs(t, 3, begin)
	for _, cn := range nodes {
		v := cn.cluster(t)
		if !v.Enabled || !v.Ready || v.Node != cn.name || len(v.Nodes) != 3 {
			t.Errorf("%s: /api/v1/cluster %+v", cn.name, v)
		}
	}
	hp := func(cn *clusterNode) []string {
		h, p := hostPort(t, cn.addr)
		return []string{"-h", h, "-p", p}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	// mosquitto_sub on node 2, one per protocol version.
	type subProc struct {
		version string
		out     *mt.SyncBuffer
	}
	var subs []subProc
	for _, v := range []string{"31", "311", "5"} {
		out := &mt.SyncBuffer{}
		cmd := exec.CommandContext(ctx, sub, append(hp(nodes[1]), "-V", v, "-q", "2", "-t", "interop/#", "-v", "-i", "msub-"+v)...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		subs = append(subs, subProc{v, out})
	}
	// Until node 1 knows node 2's interest: a probe published on node 1
	// reaches all three.
	awaitCluster(t, "a probe from node 1 reaching mosquitto_sub on node 2", func() bool {
		if err := exec.Command(pub, append(hp(nodes[0]), "-t", "interop/probe", "-m", "probe")...).Run(); err != nil {
			t.Fatalf("mosquitto_pub: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
		for _, s := range subs {
			if !strings.Contains(s.out.String(), "interop/probe probe") {
				return false
			}
		}
		return true
	})
	var want []string
	for _, v := range []string{"31", "311", "5"} {
		for q := range 3 {
			line := fmt.Sprintf("interop/v%s/q%d hello-%s-%d", v, q, v, q)
			want = append(want, line)
			topic, msg, _ := strings.Cut(line, " ")
			if out, err := exec.Command(pub, append(hp(nodes[0]), "-V", v, "-q", fmt.Sprint(q), "-t", topic, "-m", msg)...).CombinedOutput(); err != nil {
				t.Fatalf("mosquitto_pub -V %s -q %d: %v %s", v, q, err, out)
			}
		}
	}
	for _, s := range subs {
		awaitCluster(t, "mosquitto_sub -V "+s.version+" on node 2 has all 9 messages", func() bool {
			out := s.out.String()
			return !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(out, w+"\n") })
		})
		// In order, and once each.
		var got []string
		for l := range strings.Lines(s.out.String()) {
			if l = strings.TrimSuffix(l, "\n"); !strings.HasPrefix(l, "interop/probe") {
				got = append(got, l)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("mosquitto_sub -V %s on node 2 got\n%s\nwant\n%s", s.version, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	// A retained message set on node 1 is on node 3.
	if out, err := exec.Command(pub, append(hp(nodes[0]), "-q", "1", "-r", "-t", "interop/retained", "-m", "kept")...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub -r: %v %s", err, out)
	}
	awaitCluster(t, "the retained message on node 3", func() bool {
		out, _ := exec.Command(sub, append(hp(nodes[2]), "-t", "interop/retained", "-C", "1", "-W", "1", "-v")...).Output()
		return string(out) == "interop/retained kept\n"
	})

	// A persistent session moves: subscribed on node 2, offline, a message
	// queued for it from node 1, then the same client id on node 3.
	if out, err := exec.Command(sub, append(hp(nodes[1]), "-i", "mover", "-c", "-q", "1", "-t", "move/#", "-W", "1")...).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "Timed out") {
		t.Fatalf("mosquitto_sub -c on node 2: %v %s", err, out)
	}
	if out, err := exec.Command(pub, append(hp(nodes[0]), "-q", "1", "-t", "move/x", "-m", "queued while away")...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v %s", err, out)
	}
	time.Sleep(200 * time.Millisecond)
	out, _ := exec.Command(sub, append(hp(nodes[2]), "-i", "mover", "-c", "-q", "1", "-t", "move/#", "-C", "1", "-W", "5", "-v")...).CombinedOutput()
	if string(out) != "move/x queued while away\n" {
		t.Errorf("the persistent session on node 3 got %q, want the message queued for it on node 2", out)
	}
	if v := nodes[2].cluster(t); v.Stats["takeovers"] != 1 {
		t.Errorf("node 3 counts %d takeovers, want 1", v.Stats["takeovers"])
	}
	if v := nodes[1].cluster(t); v.Stats["released"] != 1 {
		t.Errorf("node 2 counts %d released client ids, want 1", v.Stats["released"])
	}

	// Metrics and $SYS.
	_, metrics, _ := nodes[1].get("/metrics")
	for _, w := range []string{"tern_cluster_nodes 3\n", "tern_cluster_ready 1\n", "tern_cluster_received_total "} {
		if !strings.Contains(string(metrics), w) {
			t.Errorf("node 2 /metrics without %q", w)
		}
	}
	// $SYS is published every sys_interval (10 s): the first value may
	// predate the node hearing from the others.
	var sys []byte
	var err error
	for deadline := time.Now().Add(25 * time.Second); ; {
		sys, err = exec.Command(sub, append(hp(nodes[2]), "-t", "$SYS/broker/cluster/nodes", "-C", "1", "-W", "5", "-v")...).CombinedOutput()
		if err == nil && string(sys) == "$SYS/broker/cluster/nodes n1,n2,n3\n" || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil || string(sys) != "$SYS/broker/cluster/nodes n1,n2,n3\n" {
		t.Errorf("$SYS/broker/cluster/nodes on node 3: %q %v", sys, err)
	}

	// SIGTERM drains node 3: an MQTT 5 client there hears DISCONNECT 0x8B.
	reason := make(chan error, 1)
	c, err := client.Connect(ctx, client.Options{Address: nodes[2].addr, Version: packet.V5, ClientID: "drained"})
	if err != nil {
		t.Fatal(err)
	}
	go func() { <-c.Done(); reason <- c.Err() }()
	if err := nodes[2].stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reason:
		var re *client.ReasonError
		if !errors.As(err, &re) || re.Type != packet.DISCONNECT || re.Code != 0x8B {
			t.Errorf("a v5 client of the stopped node ended with %v, want DISCONNECT 0x8B", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the v5 client of the stopped node was not disconnected")
	}
	// A node not heard from for 5 s has left.
	deadline := time.Now().Add(10 * time.Second)
	for len(nodes[0].cluster(t).Nodes) != 2 || len(nodes[1].cluster(t).Nodes) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("nodes 1 and 2 still list node 3 10 s after it stopped: %+v, %+v", nodes[0].cluster(t), nodes[1].cluster(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("took %v", time.Since(begin).Round(time.Millisecond))
}

// TestClusterExternalNATS: nodes that join through an existing NATS
// (--cluster-nats, here one nats-server with JetStream and a user and
// password, run by the test) form one broker as embedded ones do.
func TestClusterExternalNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two tern serve processes; skipped with -short")
	}
	pub, sub := mosquitto(t, "mosquitto_pub"), mosquitto(t, "mosquitto_sub")
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), Username: "tern", Password: "s3cret", NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	begin := time.Now()
	var nodes []*clusterNode
	for i := range 2 {
		cn := &clusterNode{name: fmt.Sprintf("x%d", i+1), admin: freeAddr(t)}
		conf := writeConfig(t, fmt.Sprintf("cluster:\n  node: %s\n  nats_urls: [%q]\n  user: tern\n  password: s3cret\n", cn.name, ns.ClientURL()))
		addr := freeAddr(t)
		cn.brokerProc = runBrokerProc(t, addr, []string{"serve", "--config", conf, "--listen", addr, "--data-dir", t.TempDir(),
			"--admin", cn.admin, "--log-level", "warn"}, begin)
		nodes = append(nodes, cn)
	}
	for _, cn := range nodes {
		cn.awaitReady(t, 2)
	}
	hp := func(cn *clusterNode) []string {
		h, p := hostPort(t, cn.addr)
		return []string{"-h", h, "-p", p}
	}
	out := &mt.SyncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sub, append(hp(nodes[1]), "-q", "1", "-t", "ext/#", "-v")...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	awaitCluster(t, "a message from x1 at mosquitto_sub on x2", func() bool {
		if err := exec.Command(pub, append(hp(nodes[0]), "-q", "1", "-t", "ext/a", "-m", "over NATS")...).Run(); err != nil {
			t.Fatalf("mosquitto_pub: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
		return strings.Contains(out.String(), "ext/a over NATS\n")
	})
	// Retained messages go through the external JetStream too.
	if err := exec.Command(pub, append(hp(nodes[0]), "-q", "1", "-r", "-t", "ext/kept", "-m", "retained")...).Run(); err != nil {
		t.Fatal(err)
	}
	awaitCluster(t, "the retained message on x2", func() bool {
		b, _ := exec.Command(sub, append(hp(nodes[1]), "-t", "ext/kept", "-C", "1", "-W", "1", "-v")...).Output()
		return string(b) == "ext/kept retained\n"
	})
	// Wrong credentials: the node does not start.
	conf := writeConfig(t, fmt.Sprintf("cluster:\n  node: x3\n  nats_urls: [%q]\n  user: tern\n  password: wrong\n", ns.ClientURL()))
	var errb bytes.Buffer
	if code := run(ctx, []string{"serve", "--config", conf, "--listen", "127.0.0.1:0", "--no-persist", "--admin", ""}, nil, io.Discard, &errb); code == 0 ||
		!strings.Contains(errb.String(), "uthorization") {
		t.Errorf("a node with a wrong NATS password: exit %d, %s", code, errb.String())
	}
}

// awaitCluster waits up to 20 s until cond: mt.Eventually with room for
// JetStream, whose streams may still be electing leaders just after the
// nodes start (a QoS 1 message then waits for a node's reading of the
// message stream to resume).
func awaitCluster(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 20 s waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
