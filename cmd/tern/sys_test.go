package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/admin"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// TestServeSysMosquittoSub: `tern serve` with sys_interval 1s publishes
// $SYS/broker/... as retained messages that mosquitto_sub reads, with
// the values of a known workload.
func TestServeSysMosquittoSub(t *testing.T) {
	sub := mosquitto(t, "mosquitto_sub")
	cfg := defaultConfig()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.SysInterval = new(time.Second)
	addr := startServe(t, cfg)

	// The workload: one client subscribed to what it publishes, 3 QoS 0
	// and 2 QoS 1 messages, all 5 back before the test goes on.
	c := mt.Dial(t, addr, packet.V311)
	c.Connect("worker", true)
	c.Subscribe(1, 1, "work/#")
	for i := range 5 {
		p := &packet.Publish{Topic: fmt.Sprint("work/", i), Payload: []byte("x")}
		if i >= 3 {
			p.QoS, p.PacketID = 1, uint16(i)
		}
		c.Send(p)
	}
	for acks, back := 0, 0; acks < 2 || back < 5; {
		switch p := c.Read().(type) {
		case *packet.Puback:
			acks++
		case *packet.Publish:
			back++
			if p.QoS == 1 {
				c.Send(&packet.Puback{PacketID: p.PacketID})
			}
		default:
			t.Fatalf("worker got %v", p)
		}
	}
	// Two updates after the workload: the second has the retained $SYS
	// topics of the first to count.
	time.Sleep(2500 * time.Millisecond)

	h, port := hostPort(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// -F: topic and payload apart by a tab, since a topic ("retained
	// messages/count") and payloads ("12 seconds") have spaces.
	// --retained-only: the stored values only, not an update arriving
	// while they are read.
	out, err := exec.CommandContext(ctx, sub, "-h", h, "-p", port, "-t", "$SYS/broker/#", "-F", `%t\t%p`,
		"-C", fmt.Sprint(admin.SysTopics), "-W", "5", "--retained-only").Output()
	if err != nil {
		t.Fatalf("mosquitto_sub: %v (output %q)", err, out)
	}
	got := make(map[string]string)
	for line := range strings.Lines(string(out)) {
		topic, payload, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		if !ok {
			t.Fatalf("line %q", line)
		}
		got[strings.TrimPrefix(topic, admin.SysPrefix)] = payload
	}
	if len(got) != admin.SysTopics {
		t.Errorf("%d topics, want %d: %v", len(got), admin.SysTopics, got)
	}
	for topic, want := range map[string]string{
		"version": "tern " + versionString(),
		// Tern counts PUBLISH packets; $SYS's own publications are not
		// received from a client.
		"messages/received":         "5",
		"publish/messages/received": "5",
		"messages/sent":             "5", // back to the worker; nobody read $SYS yet
		"publish/messages/sent":     "5",
		// The worker: mosquitto_sub came after the update read here.
		"clients/connected":    "1",
		"clients/total":        "1",
		"clients/disconnected": "0",
		"subscriptions/count":  "1",
		// The workload retained nothing: what is retained is $SYS itself,
		// every topic from the first update on, counted from the second.
		"retained messages/count": fmt.Sprint(admin.SysTopics),
	} {
		if got[topic] != want {
			t.Errorf("%s = %q, want %q", topic, got[topic], want)
		}
	}
	if up := got["uptime"]; !strings.HasSuffix(up, " seconds") || up == "0 seconds" {
		t.Errorf("uptime %q", up)
	}
	// Whether the 5 messages fell between two updates or before the
	// first depends on timing; the arithmetic has a unit test (sys_test
	// in admin). Here: a rate, formatted.
	if l := got["load/publish/received/1min"]; !strings.Contains(l, ".") {
		t.Errorf("load/publish/received/1min %q: not a rate", l)
	}
}

// TestServeSysOff: sys_interval 0 publishes nothing.
func TestServeSysOff(t *testing.T) {
	cfg := defaultConfig()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.SysInterval = new(time.Duration(0))
	addr := startServe(t, cfg)
	c := mt.Dial(t, addr, packet.V311)
	c.Connect("reader", true)
	c.Subscribe(1, 0, "$SYS/#")
	c.ExpectNothing(1500 * time.Millisecond)
}

func TestSysIntervalConfig(t *testing.T) {
	for _, tc := range []struct {
		text string
		want time.Duration
	}{
		{"log_level: info\n", 10 * time.Second},
		{"sys_interval: 30s\n", 30 * time.Second},
		{"sys_interval: 0s\n", 0},
		{"sys_interval: -1s\n", 0},
	} {
		cfg := defaultConfig()
		if err := loadConfig(writeConfig(t, tc.text), &cfg); err != nil {
			t.Fatal(err)
		}
		if got := cfg.sysInterval(); got != tc.want {
			t.Errorf("%q: sys interval %v, want %v", tc.text, got, tc.want)
		}
	}
}
