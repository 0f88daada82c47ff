package main

import (
	"context"
	"io"
	"net/http"
	"testing"

	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// TestServeStoreMetrics: with persistence and the admin server, /metrics
// counts the records the store commits and the bytes of their keys and
// values; a QoS 1 message queued for two persistent sessions is one
// record, its message and both sessions.
func TestServeStoreMetrics(t *testing.T) {
	mqttAddr, adminAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr mt.SyncBuffer
	done := make(chan int, 1)
	// No $SYS messages: their retained writes would count too.
	args := []string{"serve", "--listen", mqttAddr, "--data-dir", t.TempDir(), "--admin", adminAddr,
		"--config", writeConfig(t, "sys_interval: 0s\n")}
	go func() { done <- run(ctx, args, nil, io.Discard, &stderr) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	}()
	mt.Eventually(t, "readyz 200", func() bool {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	for _, id := range []string{"s1", "s2"} {
		c := mt.Dial(t, mqttAddr, packet.V311)
		c.Connect(id, false)
		c.Subscribe(1, 1, "m/#")
	}
	scrape := func() map[string]float64 {
		code, body := adminDo(t, "GET", "http://"+adminAddr+"/metrics", "")
		if code != 200 {
			t.Fatalf("metrics %d: %s", code, body)
		}
		return parseMetrics(t, body)
	}
	pub := mt.Dial(t, mqttAddr, packet.V311)
	pub.Connect("pub", true)
	payload := make([]byte, 1000)
	// The first PUBACK follows the commit of everything before it too.
	pub.Send(&packet.Publish{Topic: "m/1", QoS: 1, PacketID: 1, Payload: payload})
	mt.Expect[*packet.Puback](pub)
	before := scrape()
	pub.Send(&packet.Publish{Topic: "m/1", QoS: 1, PacketID: 2, Payload: payload})
	mt.Expect[*packet.Puback](pub)
	after := scrape()
	records := after["tern_store_committed_records_total"] - before["tern_store_committed_records_total"]
	bytes := after["tern_store_committed_bytes_total"] - before["tern_store_committed_bytes_total"]
	if records != 1 || bytes < float64(len(payload)) || bytes > float64(len(payload))+100 {
		t.Fatalf("publishing to two sessions committed %v records, %v bytes", records, bytes)
	}
}
