package admin

import (
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCluster is a Cluster with settable members, counts and health.
type fakeCluster struct {
	mu     sync.Mutex
	nodes  []ClusterNode
	stats  ClusterStats
	health error
}

func (f *fakeCluster) Name() string { return "n1" }

func (f *fakeCluster) Nodes() []ClusterNode {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ClusterNode(nil), f.nodes...)
}

func (f *fakeCluster) Stats() ClusterStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

func (f *fakeCluster) Health() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.health
}

func (f *fakeCluster) set(fn func(*fakeCluster)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

func newFakeCluster() *fakeCluster {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &fakeCluster{
		nodes: []ClusterNode{{Name: "n1", Self: true, LastSeen: at}, {Name: "n2", LastSeen: at}, {Name: "n3", LastSeen: at}},
		stats: ClusterStats{Forwarded: 10, ForwardFailed: 1, Received: 20, Malformed: 2, HandedOver: 3, Takeovers: 4, Released: 5},
	}
}

func TestClusterEndpoint(t *testing.T) {
	doc := loadOpenAPI(t)
	schema := doc.Paths["/api/v1/cluster"]["get"].Responses["200"].Content["application/json"].Schema
	// A single node: not enabled, no nodes.
	ts := start(t, "127.0.0.1:0", Config{})
	code, b := ts.call(t, "GET", "/api/v1/cluster", "")
	if code != 200 {
		t.Fatalf("single node: %d %s", code, b)
	}
	v := decode[map[string]any](t, b)
	if v["enabled"] != false || len(v["nodes"].([]any)) != 0 {
		t.Errorf("single node: %s", b)
	}
	doc.check(t, "single node", schema, v)

	fc := newFakeCluster()
	fc.health = errors.New("cluster: waiting for JetStream")
	ts = start(t, "127.0.0.1:0", Config{Cluster: fc})
	code, b = ts.call(t, "GET", "/readyz", "")
	if code != 503 || !strings.Contains(string(b), "waiting for JetStream") {
		t.Fatalf("readyz before the cluster is ready: %d %s", code, b)
	}
	code, b = ts.call(t, "GET", "/api/v1/cluster", "")
	v = decode[map[string]any](t, b)
	if code != 200 || v["enabled"] != true || v["ready"] != false || v["node"] != "n1" || len(v["nodes"].([]any)) != 3 {
		t.Fatalf("cluster not ready: %d %s", code, b)
	}
	doc.check(t, "cluster not ready", schema, v)
	fc.set(func(f *fakeCluster) { f.health = nil })
	if code, b := ts.call(t, "GET", "/readyz", ""); code != 200 {
		t.Fatalf("readyz once the cluster is ready: %d %s", code, b)
	}
	code, b = ts.call(t, "GET", "/api/v1/cluster", "")
	v = decode[map[string]any](t, b)
	if v["ready"] != true || v["reason"] != nil || v["stats"].(map[string]any)["handed_over"] != 3.0 {
		t.Fatalf("cluster ready: %d %s", code, b)
	}
	doc.check(t, "cluster ready", schema, v)

	code, b = ts.call(t, "GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("metrics %d %s", code, b)
	}
	for _, want := range []string{
		"tern_cluster_nodes 3\n", "tern_cluster_ready 1\n",
		"tern_cluster_forwarded_total 10\n", "tern_cluster_forward_failed_total 1\n",
		"tern_cluster_received_total 20\n", "tern_cluster_malformed_total 2\n",
		"tern_cluster_handed_over_total 3\n", "tern_cluster_takeovers_total 4\n", "tern_cluster_released_total 5\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics without %q", want)
		}
	}
}

func TestSysClusterNodes(t *testing.T) {
	src := &fakeSource{}
	fc := newFakeCluster()
	begin := time.Now()
	s := NewSys(src, "dev", begin, 10*time.Second, nil)
	s.SetCluster(fc)
	s.update(begin)
	got := src.take(t)
	if len(got) != SysTopics+1 || got["$SYS/broker/cluster/nodes"] != "n1,n2,n3" {
		t.Fatalf("first update: %d topics, cluster/nodes %q", len(got), got["$SYS/broker/cluster/nodes"])
	}
	// A node leaves: the list changes, and only it (and the uptime) goes out.
	fc.set(func(f *fakeCluster) { f.nodes = f.nodes[:2] })
	s.update(begin.Add(10 * time.Second))
	if got := src.take(t); !maps.Equal(got, map[string]string{"$SYS/broker/uptime": "10 seconds",
		"$SYS/broker/cluster/nodes": "n1,n2"}) {
		t.Fatalf("after a node left: %v", got)
	}
}
