package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternmq/tern/bridge"
	"github.com/ternmq/tern/webhook"
)

// TestIntegrationMetrics: the bridges' and webhooks' counters reach the
// registry behind /metrics with their labels.
func TestIntegrationMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	w, err := webhook.New(webhook.Config{URL: srv.URL + "/hook"}, webhook.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(t.Context())
	bridges := func() []bridge.Stats {
		return []bridge.Stats{{Name: "cloud", Connected: true, Queued: 3, Sent: 10, Received: 4, Dropped: 1, Suppressed: 2}}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(integrations{bridges: bridges, webhooks: []*webhook.Webhook{w}})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				got[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			}
		}
	}
	url := w.URL()
	want := map[string]float64{
		"tern_bridge_connected,bridge=cloud":                   1,
		"tern_bridge_queued_messages,bridge=cloud":             3,
		"tern_bridge_sent_total,bridge=cloud":                  10,
		"tern_bridge_received_total,bridge=cloud":              4,
		"tern_bridge_dropped_total,bridge=cloud":               1,
		"tern_bridge_suppressed_total,bridge=cloud":            2,
		"tern_webhook_events_total,outcome=sent,url=" + url:    0,
		"tern_webhook_events_total,outcome=failed,url=" + url:  0,
		"tern_webhook_events_total,outcome=dropped,url=" + url: 0,
		"tern_webhook_retries_total,url=" + url:                0,
		"tern_webhook_queued_events,url=" + url:                0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}
