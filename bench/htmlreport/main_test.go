package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternmq/tern/bench"
)

func writeResult(t *testing.T, dir, name string, res *bench.Result) string {
	t.Helper()
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHTMLReport(t *testing.T) {
	dir := t.TempDir()
	loss := uint64(0)
	mk := func(rate, p99 float64) *bench.Result {
		return &bench.Result{Scenario: "p2p", URL: "tcp://127.0.0.1:1", Protocol: "3.1.1", QoS: 1, PayloadSize: 64,
			Publishers: 2, Subscribers: 2, Topic: "bench/%i", Window: 64, Count: 100, Connections: bench.ConnCounts{Attempted: 4, OK: 4},
			Sent: 200, Acked: 200, Received: 200, RecvRate: rate, Expected: &loss, Loss: &loss, Receivers: 2, DurationS: 1,
			Latency:          bench.Latency{Count: 200, P50: 100, P90: 200, P99: p99, P999: p99, Max: p99},
			Timeline:         []bench.Sample{{T: 1, Sent: 200, Acked: 200, Received: 200}},
			LatencyHistogram: []bench.Bucket{{Lo: 96, Hi: 103, Count: 150}, {Lo: 104, Hi: 111, Count: 50}}}
	}
	tern := writeResult(t, dir, "tern.json", mk(30000, 812))
	mosq := writeResult(t, dir, "mosq.json", mk(10000, 4321))
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "index.html")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-o", out, "-title", "Tern vs Mosquitto", "-subtitle", "loopback", "-note", "read me",
		"-section", "p2p-q1 (p2p -c 2 -q 1)", "tern=" + tern, "-x", "cpu%=150", "-x", "+RSS=3MiB", "mosquitto=" + mosq, "-x", "cpu%=99",
		"-section", "conn", "tern=" + filepath.Join(dir, "missing.json"), "mosquitto=" + empty}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
	}
	for _, want := range []string{"Tern vs Mosquitto", "loopback", "read me", "p2p-q1 (p2p -c 2 -q 1)", "3.00x", "812µs", "4.32ms",
		"cpu%", "150", "+RSS", "3MiB", "tern: no result.", "mosquitto: no result."} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if bytes.Contains(doc, []byte("http")) || bytes.Contains(doc, []byte("<script")) {
		t.Error("the page refers to something outside it")
	}
}

func TestHTMLReportUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"tern=x.json"},
		{"-section"},
		{"-section", "s", "-x", "cpu=1"},
		{"-section", "s", "noequals"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage:") {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}
