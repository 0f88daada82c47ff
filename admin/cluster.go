package admin

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Cluster is what the admin server shows of the cluster this node
// belongs to (package cluster has it, through cmd/tern). Config.Cluster
// nil: a single node.
type Cluster interface {
	// Name is this node's name.
	Name() string
	// Nodes are the members heard from lately, this one included.
	Nodes() []ClusterNode
	// Stats are this node's cluster counters.
	Stats() ClusterStats
	// Health is nil once this node's replicated state is open (client ids
	// can be taken over, retained messages are in step); until then, why
	// not: /readyz answers 503 with it.
	Health() error
}

// ClusterNode is a member of the cluster as this node sees it.
type ClusterNode struct {
	Name     string    `json:"name"`
	Self     bool      `json:"self"`
	LastSeen time.Time `json:"last_seen"`
}

// ClusterStats counts a node's cluster traffic since it started.
type ClusterStats struct {
	Forwarded     uint64 `json:"forwarded"`      // published here and handed to NATS, which carries them to the nodes with interest
	ForwardFailed uint64 `json:"forward_failed"` // not sent: refused by NATS
	Received      uint64 `json:"received"`       // from other nodes, delivered here
	Malformed     uint64 `json:"malformed"`      // forwarded messages that did not decode
	HandedOver    uint64 `json:"handed_over"`    // shared-group messages passed to another node's member
	Takeovers     uint64 `json:"takeovers"`      // client ids taken over from another node
	Released      uint64 `json:"released"`       // client ids given up to another node
	Dropped       uint64 `json:"dropped"`        // from other nodes, lost here because this node fell behind
	// RetainedPending is how many retained messages set here wait for
	// the cluster's stream (cut off, or no JetStream majority).
	RetainedPending uint64 `json:"retained_pending"`
	// With replicated sessions: sessions brought here from the store
	// after their node let go or died, the messages read again from the
	// stream for them, and how far this node is behind the stream.
	Adopted   uint64 `json:"adopted"`
	Replayed  uint64 `json:"replayed"`
	StreamLag uint64 `json:"stream_lag"`
	// Reforwarded counts QoS 2 messages forwarded again because their
	// client retransmitted them (perhaps after their first node died).
	Reforwarded uint64 `json:"reforwarded"`
}

// clusterJSON is GET /api/v1/cluster.
type clusterJSON struct {
	Enabled bool          `json:"enabled"`
	Node    string        `json:"node,omitempty"`
	Ready   bool          `json:"ready"`
	Reason  string        `json:"reason,omitempty"` // why not ready
	Nodes   []ClusterNode `json:"nodes"`
	Stats   *ClusterStats `json:"stats,omitempty"`
}

func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	c := s.cfg.Cluster
	if c == nil {
		writeJSON(w, http.StatusOK, clusterJSON{Ready: true, Nodes: []ClusterNode{}})
		return
	}
	v := clusterJSON{Enabled: true, Node: c.Name(), Ready: true, Nodes: c.Nodes()}
	if err := c.Health(); err != nil {
		v.Ready, v.Reason = false, err.Error()
	}
	if v.Nodes == nil {
		v.Nodes = []ClusterNode{}
	}
	st := c.Stats()
	v.Stats = &st
	writeJSON(w, http.StatusOK, v)
}

// ClusterNodeNames is what $SYS/broker/cluster/nodes carries: the names of
// the nodes c hears from, sorted, comma-separated.
func ClusterNodeNames(c Cluster) string {
	var names []string
	for _, n := range c.Nodes() {
		names = append(names, n.Name)
	}
	return strings.Join(names, ",")
}

// clusterCollector turns a node's cluster figures into metrics at each
// scrape.
type clusterCollector struct{ c Cluster }

var (
	clusterNodesDesc = prometheus.NewDesc("tern_cluster_nodes", "Nodes of the cluster this node hears from, itself included.", nil, nil)
	clusterReadyDesc = prometheus.NewDesc("tern_cluster_ready", "1 once this node's replicated cluster state is open, 0 before.", nil, nil)
	clusterPendDesc  = prometheus.NewDesc("tern_cluster_retained_pending", "Retained messages set on this node that wait for the cluster's stream (cut off, or no JetStream majority).", nil, nil)
	clusterLagDesc   = prometheus.NewDesc("tern_cluster_stream_lag", "QoS 1 and 2 messages in the cluster's stream that this node has not routed yet.", nil, nil)
	clusterCounters  = []struct {
		desc  *prometheus.Desc
		value func(*ClusterStats) uint64
	}{
		{prometheus.NewDesc("tern_cluster_forwarded_total", "Messages published on this node and handed to NATS, which carries them to the nodes with matching subscriptions (if any).", nil, nil),
			func(s *ClusterStats) uint64 { return s.Forwarded }},
		{prometheus.NewDesc("tern_cluster_forward_failed_total", "Messages published on this node that NATS refused to carry (too large, connection closed).", nil, nil),
			func(s *ClusterStats) uint64 { return s.ForwardFailed }},
		{prometheus.NewDesc("tern_cluster_received_total", "Messages from other nodes delivered on this node.", nil, nil),
			func(s *ClusterStats) uint64 { return s.Received }},
		{prometheus.NewDesc("tern_cluster_malformed_total", "Messages from other nodes that did not decode.", nil, nil),
			func(s *ClusterStats) uint64 { return s.Malformed }},
		{prometheus.NewDesc("tern_cluster_handed_over_total", "Shared-subscription messages passed to a member on another node.", nil, nil),
			func(s *ClusterStats) uint64 { return s.HandedOver }},
		{prometheus.NewDesc("tern_cluster_takeovers_total", "Client ids taken over from another node.", nil, nil),
			func(s *ClusterStats) uint64 { return s.Takeovers }},
		{prometheus.NewDesc("tern_cluster_released_total", "Client ids given up to another node.", nil, nil),
			func(s *ClusterStats) uint64 { return s.Released }},
		{prometheus.NewDesc("tern_cluster_adopted_total", "Persistent sessions loaded here from the replicated store after their node let go of them or died.", nil, nil),
			func(s *ClusterStats) uint64 { return s.Adopted }},
		{prometheus.NewDesc("tern_cluster_replayed_total", "Messages read again from the stream for sessions brought here (what their previous node had not routed to them).", nil, nil),
			func(s *ClusterStats) uint64 { return s.Replayed }},
		{prometheus.NewDesc("tern_cluster_reforwarded_total", "QoS 2 messages forwarded again because their client retransmitted them (perhaps after their first node died); the stream drops a copy it has.", nil, nil),
			func(s *ClusterStats) uint64 { return s.Reforwarded }},
		{prometheus.NewDesc("tern_cluster_dropped_total", "QoS 0 and shared-group messages from other nodes lost on this node because it fell behind (those go at most once between nodes; QoS 1 and 2 go through the stream).", nil, nil),
			func(s *ClusterStats) uint64 { return s.Dropped }},
	}
)

func (c clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- clusterNodesDesc
	ch <- clusterReadyDesc
	ch <- clusterPendDesc
	ch <- clusterLagDesc
	for _, m := range clusterCounters {
		ch <- m.desc
	}
}

func (c clusterCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(clusterNodesDesc, prometheus.GaugeValue, float64(len(c.c.Nodes())))
	ready := 0.0
	if c.c.Health() == nil {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(clusterReadyDesc, prometheus.GaugeValue, ready)
	st := c.c.Stats()
	ch <- prometheus.MustNewConstMetric(clusterPendDesc, prometheus.GaugeValue, float64(st.RetainedPending))
	ch <- prometheus.MustNewConstMetric(clusterLagDesc, prometheus.GaugeValue, float64(st.StreamLag))
	for _, m := range clusterCounters {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.value(&st)))
	}
}
