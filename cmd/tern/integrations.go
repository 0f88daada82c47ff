package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternmq/tern/bridge"
	"github.com/ternmq/tern/webhook"
)

// integrations exposes the bridges' and webhooks' counters on /metrics,
// read at each scrape. admin knows neither package; tern serve, which
// runs all three, joins them here.
type integrations struct {
	bridges  func() []bridge.Stats
	webhooks []*webhook.Webhook
}

var (
	bridgeConnected  = prometheus.NewDesc("tern_bridge_connected", "1 while the bridge's remote connection is up.", []string{"bridge"}, nil)
	bridgeQueued     = prometheus.NewDesc("tern_bridge_queued_messages", "Messages waiting for the bridge's remote.", []string{"bridge"}, nil)
	bridgeSent       = prometheus.NewDesc("tern_bridge_sent_total", "Messages forwarded to the remote and acknowledged by it.", []string{"bridge"}, nil)
	bridgeReceived   = prometheus.NewDesc("tern_bridge_received_total", "Messages forwarded from the remote and published here.", []string{"bridge"}, nil)
	bridgeDropped    = prometheus.NewDesc("tern_bridge_dropped_total", "Messages the bridge could not forward.", []string{"bridge"}, nil)
	bridgeSuppressed = prometheus.NewDesc("tern_bridge_suppressed_total", "Echoes from a pre-5 remote dropped (loop prevention).", []string{"bridge"}, nil)
	webhookEvents    = prometheus.NewDesc("tern_webhook_events_total", "Events by outcome: sent, failed (given up) or dropped (queue full).", []string{"url", "outcome"}, nil)
	webhookRetries   = prometheus.NewDesc("tern_webhook_retries_total", "POSTs sent again.", []string{"url"}, nil)
	webhookQueued    = prometheus.NewDesc("tern_webhook_queued_events", "Events waiting to be sent.", []string{"url"}, nil)
)

func (i integrations) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{bridgeConnected, bridgeQueued, bridgeSent, bridgeReceived, bridgeDropped,
		bridgeSuppressed, webhookEvents, webhookRetries, webhookQueued} {
		ch <- d
	}
}

func (i integrations) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, s := range i.bridges() {
		up := int64(0)
		if s.Connected {
			up = 1
		}
		gauge(bridgeConnected, up, s.Name)
		gauge(bridgeQueued, s.Queued, s.Name)
		counter(bridgeSent, s.Sent, s.Name)
		counter(bridgeReceived, s.Received, s.Name)
		counter(bridgeDropped, s.Dropped, s.Name)
		counter(bridgeSuppressed, s.Suppressed, s.Name)
	}
	for _, w := range i.webhooks {
		s, u := w.Stats(), w.URL()
		counter(webhookEvents, s.Sent, u, "sent")
		counter(webhookEvents, s.Failed, u, "failed")
		counter(webhookEvents, s.Dropped, u, "dropped")
		counter(webhookRetries, s.Retried, u)
		gauge(webhookQueued, s.Queued, u)
	}
}
