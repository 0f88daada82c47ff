package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the Prometheus registry behind /metrics and the two
// latency histograms the broker and the store feed while running. Make it
// before the broker (it is the broker's Observer and the store's
// OnCommit) and hand it to New, which adds the broker's counters.
type Metrics struct {
	reg      *prometheus.Registry
	delivery [3]prometheus.Observer // by QoS, resolved once: no lookup per message
	commit   prometheus.Histogram
	records  prometheus.Counter
}

// NewMetrics makes the registry with the Go runtime and process
// collectors and the latency histograms.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	delivery := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tern_delivery_latency_seconds",
		Help:    "Time from a PUBLISH being read to its copies being handed to the connections of the subscribers it went to at once; one observation per delivery.",
		Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5},
	}, []string{"qos"})
	for q := range m.delivery {
		m.delivery[q] = delivery.WithLabelValues(strconv.Itoa(q))
	}
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tern_store_commit_seconds",
		Help:    "Time of one group commit of the store, fsync included.",
		Buckets: []float64{100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5},
	})
	m.records = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tern_store_committed_records_total",
		Help: "Records written by the store's group commits.",
	})
	m.reg.MustRegister(delivery, m.commit, m.records,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// DeliveryLatency records one delivery (broker.Observer). It does not
// allocate.
func (m *Metrics) DeliveryLatency(qos byte, d time.Duration) {
	if int(qos) < len(m.delivery) {
		m.delivery[qos].Observe(d.Seconds())
	}
}

// CommitLatency records one group commit of the store (the Pebble store's
// OnCommit).
func (m *Metrics) CommitLatency(d time.Duration, records int) {
	m.commit.Observe(d.Seconds())
	m.records.Add(float64(records))
}

// StoreBytes adds tern_store_committed_bytes_total, which reads f: the
// bytes of the keys and values of the records the store has committed
// (the Pebble store's Stats). Call it once.
func (m *Metrics) StoreBytes(f func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tern_store_committed_bytes_total",
		Help: "Bytes of the keys and values of the records written by the store's group commits.",
	}, func() float64 { return float64(f()) }))
}

// Registry is where other parts of Tern may add their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// register adds the broker's counters, read at each scrape.
func (m *Metrics) register(b Broker) error {
	err := m.reg.Register(&statsCollector{b: b})
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		return errors.New("admin: these Metrics already serve a broker")
	}
	if err != nil {
		return fmt.Errorf("admin: metrics: %w", err)
	}
	return nil
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// statsCollector turns Stats into constant metrics at each scrape.
type statsCollector struct{ b Broker }

type metricDesc struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*statsJSON) int64 // nil for the labelled ones
}

func gauge(name, help string, v func(*statsJSON) int64) metricDesc {
	return metricDesc{prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, v}
}

func counter(name, help string, v func(*statsJSON) int64) metricDesc {
	return metricDesc{prometheus.NewDesc(name, help, nil, nil), prometheus.CounterValue, v}
}

var (
	plainMetrics = []metricDesc{
		gauge("tern_connections", "Clients connected now.", func(s *statsJSON) int64 { return s.Connections }),
		gauge("tern_connections_max", "Most clients connected at once since start.", func(s *statsJSON) int64 { return s.ConnectionsMax }),
		counter("tern_connections_total", "CONNECTs accepted since start.", func(s *statsJSON) int64 { return s.ConnectionsTotal }),
		gauge("tern_sessions", "Sessions, connected and offline.", func(s *statsJSON) int64 { return s.Sessions }),
		counter("tern_sessions_expired_total", "Sessions expired since start.", func(s *statsJSON) int64 { return s.SessionsExpired }),
		gauge("tern_subscriptions", "Subscriptions of all sessions.", func(s *statsJSON) int64 { return s.Subscriptions }),
		gauge("tern_retained_messages", "Retained messages.", func(s *statsJSON) int64 { return s.Retained }),
		gauge("tern_retained_bytes", "Memory the retained messages count against max_retained_bytes: topics, payloads and 256 bytes a topic level.", func(s *statsJSON) int64 { return s.RetainedBytes }),
		counter("tern_bytes_received_total", "Bytes read from clients.", func(s *statsJSON) int64 { return s.BytesReceived }),
		counter("tern_bytes_sent_total", "Bytes written to clients.", func(s *statsJSON) int64 { return s.BytesSent }),
		gauge("tern_queued_messages", "Messages waiting in session queues.", func(s *statsJSON) int64 { return s.Queued }),
		gauge("tern_inflight_messages", "QoS 1 and 2 messages sent and not yet acknowledged.", func(s *statsJSON) int64 { return s.Inflight }),
		counter("tern_auth_failures_total", "CONNECTs refused for bad credentials or as not authorized.", func(s *statsJSON) int64 { return s.AuthFailures }),
		counter("tern_clients_kicked_total", "Clients disconnected by an administrator.", func(s *statsJSON) int64 { return s.Kicked }),
	}
	receivedDesc = prometheus.NewDesc("tern_messages_received_total", "PUBLISH packets received from clients, by QoS.", []string{"qos"}, nil)
	sentDesc     = prometheus.NewDesc("tern_messages_sent_total", "PUBLISH packets sent to clients, by QoS.", []string{"qos"}, nil)
	droppedDesc  = prometheus.NewDesc("tern_dropped_messages_total", "Messages not delivered, by reason.", []string{"reason"}, nil)
	refusedDesc  = prometheus.NewDesc("tern_refused_connections_total", "Connections refused, by reason.", []string{"reason"}, nil)
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range plainMetrics {
		ch <- m.desc
	}
	ch <- receivedDesc
	ch <- sentDesc
	ch <- droppedDesc
	ch <- refusedDesc
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := statsView(c.b.Stats())
	for _, m := range plainMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(m.value(&s)))
	}
	for q := range 3 {
		l := strconv.Itoa(q)
		ch <- prometheus.MustNewConstMetric(receivedDesc, prometheus.CounterValue, float64(s.MessagesReceivedQoS[q]), l)
		ch <- prometheus.MustNewConstMetric(sentDesc, prometheus.CounterValue, float64(s.MessagesSentQoS[q]), l)
	}
	for _, r := range s.Dropped.byReason() {
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(r.value), r.label)
	}
	for _, r := range s.RefusedConnects.byReason() {
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(r.value), r.label)
	}
}
