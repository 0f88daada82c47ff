package bench

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// page is what a test reads of an HTML report: it must parse as XML
// (every element closed, attributes quoted, only XML's entities).
type page struct {
	text     string         // all character data, space-joined
	elements map[string]int // element name -> count
	attrs    []xml.Attr
}

func parsePage(t *testing.T, doc string) page {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = true
	p := page{elements: map[string]int{}}
	var text []string
	depth := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the report is not well-formed: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			p.elements[tok.Name.Local]++
			p.attrs = append(p.attrs, tok.Attr...)
		case xml.EndElement:
			depth--
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); s != "" {
				text = append(text, s)
			}
		}
	}
	if depth != 0 || p.elements["html"] != 1 {
		t.Fatalf("the report is not one html element (depth %d)", depth)
	}
	p.text = strings.Join(text, " ")
	// Self-contained: nothing to fetch, nothing to run.
	for _, el := range []string{"script", "link", "img", "iframe", "object", "embed", "image", "use"} {
		if p.elements[el] > 0 {
			t.Errorf("the report has a %s element", el)
		}
	}
	for _, a := range p.attrs {
		if a.Name.Local == "href" || a.Name.Local == "src" || strings.HasPrefix(a.Name.Local, "on") {
			t.Errorf("the report has an attribute %s=%q", a.Name.Local, a.Value)
		}
	}
	for _, s := range []string{"http://", "https://", "url(", "@import"} {
		if strings.Contains(doc, s) {
			t.Errorf("the report mentions %q", s)
		}
	}
	return p
}

func (p page) has(t *testing.T, what ...string) {
	t.Helper()
	for _, w := range what {
		if !strings.Contains(p.text, w) {
			t.Errorf("the report lacks %q", w)
		}
	}
}

// One run's page shows its parameters, counts, percentiles, throughput
// over time and latency histogram.
func TestResultHTML(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	cases := []struct {
		name     string
		scenario string
		set      func(c *Config)
		want     []string
	}{
		{"fanout QoS 1", "fanout", func(c *Config) { c.Clients, c.QoS, c.Count, c.Rate = 3, 1, 300, 250 },
			[]string{"fanout: 1 publisher -> 3 subscribers", "MQTT 3.1.1", "300 messages per publisher", "250 msg/s", "bench/%i"}},
		{"p2p v5 for a duration", "p2p", func(c *Config) { c.Clients, c.Duration, c.Version, c.Size = 2, 300*time.Millisecond, packet.V5, 64 },
			[]string{"p2p: 2 pairs", "MQTT 5.0", "0.3 s", "64 bytes", "unlimited"}},
		{"conn", "conn", func(c *Config) { c.Clients, c.Duration = 5, time.Millisecond },
			[]string{"conn: 5 connections", "Connect latency histogram"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, conf(tc.scenario, b.Addr, tc.set))
			var doc strings.Builder
			if err := res.WriteHTML(&doc); err != nil {
				t.Fatal(err)
			}
			p := parsePage(t, doc.String())
			p.has(t, tc.want...)
			p.has(t, "tcp://"+b.Addr, "Parameters", "Results")
			lat := res.Latency
			if tc.scenario == "conn" {
				lat = res.ConnectLatency
			} else {
				p.has(t, "Throughput", "Latency histogram", "messages per second over time")
				if p.elements["polyline"] == 0 {
					t.Error("no throughput line")
				}
			}
			// The percentiles, as the summary prints them.
			p.has(t, durText(lat.P50), durText(lat.P90), durText(lat.P99), durText(lat.P999), durText(lat.Max))
			if charts := strings.Count(doc.String(), "<svg width=\"760\""); charts != map[bool]int{true: 1, false: 2}[tc.scenario == "conn"] || p.elements["rect"] == 0 {
				t.Errorf("charts: %d, histogram bars: %d", charts, p.elements["rect"])
			}
			// The summary as printed is on the page too.
			var text strings.Builder
			_ = res.WriteText(&text)
			for _, line := range strings.Split(strings.TrimSpace(text.String()), "\n") {
				p.has(t, line)
			}
		})
	}
}

// A report of several runs puts them side by side, with a summary table
// and the ratio of the first to the second.
func TestReportSideBySide(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	fast := run(t, conf("p2p", b.Addr, func(c *Config) { c.Clients, c.QoS, c.Count = 2, 1, 200 }))
	slow := run(t, conf("p2p", b.Addr, func(c *Config) { c.Clients, c.QoS, c.Count, c.Rate = 2, 1, 100, 400 }))
	conn := run(t, conf("conn", b.Addr, func(c *Config) { c.Clients, c.Duration = 3, time.Millisecond }))
	r := Report{Title: "Tern & Mosquitto <side by side>", Subtitle: "on loopback",
		Sections: []ReportSection{
			{Title: "p2p-q1", Runs: []ReportRun{{Name: "tern", Result: fast, Extra: []ReportField{{"cpu%", "42"}}}, {Name: "mosquitto", Result: slow}}},
			{Title: "conn", Runs: []ReportRun{{Name: "tern", Result: conn}, {Name: "mosquitto"}}},
		},
		Notes: []string{"cpu%: the broker's"}}
	var doc strings.Builder
	if err := r.WriteHTML(&doc); err != nil {
		t.Fatal(err)
	}
	p := parsePage(t, doc.String())
	p.has(t, "Tern & Mosquitto <side by side>", "on loopback", "p2p-q1", "conn", "tern", "mosquitto", "tern / mosquitto",
		"cpu%", "42", "cpu%: the broker's", "mosquitto: no result.",
		durText(fast.Latency.P99), durText(slow.Latency.P99), rateText(fast.RecvRate), rateText(slow.RecvRate),
		durText(conn.ConnectLatency.P50), "3/3 connected")
	if slow.RecvRate > 0 {
		p.has(t, fmt.Sprintf("%.2fx", fast.RecvRate/slow.RecvRate))
	}
	if !strings.Contains(doc.String(), "Tern &amp; Mosquitto &lt;side by side&gt;") {
		t.Error("the title is not escaped")
	}
}
