package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/internal/browsertest"
	mt "github.com/ternmq/tern/internal/mqtttest"
)

// uiTestdata holds the dashboard's browser scripts and their node_modules.
const uiTestdata = "../../admin/ui/testdata"

// TestDashboardEndToEnd drives Debian's chromium (headless, playwright-core
// on node: admin/ui/testdata/real.mjs) through the dashboard of a running
// tern serve, with tern sub and tern pub beside it: the page shows the
// subscriber, kicks it with the admin token it asks for, publishes to the
// subscriber that takes its place, and shows the message tern pub -r
// retained. It fails, never skips, when a tool is missing: `make deps`
// installs them.
func TestDashboardEndToEnd(t *testing.T) {
	node, chromium := browsertest.Require(t, uiTestdata)
	const (
		token    = "e2e-admin-token"
		clientID = "e2e-sub"
		topic    = "e2e/dash/hello"
		retained = "e2e/house/door"
		wsPath   = "/ws/mqtt" // not the default: the page must learn it
	)
	mqttAddr, wsAddr, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	host, port, _ := net.SplitHostPort(mqttAddr)
	base := "http://" + adminAddr
	// The page's origin is the admin server: the ws listener lets it in.
	cfgPath := writeConfig(t, "listeners:\n"+
		"  - address: "+mqttAddr+"\n"+
		"  - type: ws\n    address: "+wsAddr+"\n    path: "+wsPath+"\n    origins: [\""+adminAddr+"\"]\n"+
		"admin:\n  token: "+token+"\n")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	serveCtx, stopServe := context.WithCancel(ctx)
	var serveErr mt.SyncBuffer
	served := make(chan int, 1)
	go func() {
		served <- run(serveCtx, []string{"serve", "--no-persist", "--config", cfgPath, "--admin", adminAddr}, nil, &serveErr, &serveErr)
	}()
	defer func() {
		stopServe()
		if code := <-served; code != 0 {
			t.Errorf("serve exited %d", code)
		}
		if t.Failed() {
			t.Logf("tern serve:\n%s", serveErr.String())
		}
	}()
	mt.Eventually(t, "readyz 200", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	// The API as the broker's witness: reads need no token on loopback.
	getJSON := func(path string, v any) int {
		t.Helper()
		code, body := adminDo(t, "GET", base+path, "")
		if code == 200 {
			if err := json.Unmarshal([]byte(body), v); err != nil {
				t.Fatalf("GET %s: %v\n%s", path, err, body)
			}
		}
		return code
	}
	subscribed := func() bool {
		var c struct {
			Client struct {
				Connected     bool `json:"connected"`
				Subscriptions int  `json:"subscriptions"`
			} `json:"client"`
		}
		return getJSON("/api/v1/clients/"+clientID, &c) == 200 && c.Client.Connected && c.Client.Subscriptions == 1
	}
	// startSub runs tern sub in-process, printing "topic payload" lines.
	startSub := func() (lines chan string, stderr *mt.SyncBuffer, exited chan int) {
		lines, stderr, exited = make(chan string, 8), &mt.SyncBuffer{}, make(chan int, 1)
		go func() {
			exited <- runSub(ctx, []string{"-h", host, "-p", port, "-i", clientID, "-q", "1", "-v", "-t", "e2e/dash/#"},
				&lineWriter{lines: lines}, stderr)
		}()
		mt.Eventually(t, clientID+" connected and subscribed", subscribed)
		return lines, stderr, exited
	}

	_, sub1Err, sub1Exited := startSub()
	script := browsertest.Start(t, ctx, node, chromium, uiTestdata, "real.mjs",
		"TERN_UI_URL="+base+"/",
		"TERN_TOKEN="+token,
		"TERN_MQTT_ADDR="+mqttAddr,
		"TERN_WS_URL=ws://"+wsAddr+wsPath,
		"TERN_CLIENT="+clientID,
		"TERN_TOPIC="+topic,
		"TERN_RETAINED="+retained,
	)

	// The page kicked tern sub: it lost its connection, and the broker
	// counted one kick.
	script.Await(t, "kicked", 30*time.Second)
	select {
	case code := <-sub1Exited:
		if code != exitFail || !strings.Contains(sub1Err.String(), "tern sub:") {
			t.Fatalf("kicked tern sub exited %d: %s", code, sub1Err.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the kicked tern sub still runs")
	}
	var stats struct {
		Kicked      *int64 `json:"kicked"`
		Connections int64  `json:"connections"`
	}
	if getJSON("/api/v1/stats", &stats) != 200 || stats.Kicked == nil || *stats.Kicked != 1 || stats.Connections != 0 {
		t.Fatalf("stats after the kick: kicked %v, connections %d; want 1, 0", stats.Kicked, stats.Connections)
	}
	if code, body := adminDo(t, "GET", base+"/metrics", ""); code != 200 || !strings.Contains(body, "tern_clients_kicked_total 1\n") {
		t.Fatalf("metrics after the kick: %d, no tern_clients_kicked_total 1", code)
	}

	// A second tern sub with the same id receives what the page publishes.
	lines, sub2Err, sub2Exited := startSub()
	script.Tell(t, "subscribed again")
	script.Await(t, "published", 20*time.Second)
	select {
	case l := <-lines:
		if want := topic + " hello from the dashboard"; l != want {
			t.Fatalf("tern sub printed %q, want %q", l, want)
		}
	case code := <-sub2Exited:
		t.Fatalf("tern sub exited %d: %s", code, sub2Err.String())
	case <-time.After(10 * time.Second):
		t.Fatal("tern sub did not receive the page's message")
	}

	// tern pub -r leaves a retained message for the page's topic tree.
	var pubOut, pubErr bytes.Buffer
	if code := run(ctx, []string{"pub", "-h", host, "-p", port, "-q", "1", "-r", "-t", retained, "-m", "door open"}, nil, &pubOut, &pubErr); code != 0 {
		t.Fatalf("tern pub -r exited %d: %s", code, pubErr.String())
	}
	script.Tell(t, "retained")
	script.Wait(t, 30*time.Second)
	t.Logf("node real.mjs:\n%s", script.Output())

	// Nothing else went to the subscriber: the retained message is not
	// under e2e/dash/.
	select {
	case l := <-lines:
		t.Errorf("tern sub printed %q as well", l)
	default:
	}
}
