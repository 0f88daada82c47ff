package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ternmq/tern/packet"
)

// benchResult is the summary of a run; its JSON form is what --json prints.
// Counts are of what happened, never of what should have: received counts
// arrivals, and loss is what the publishers sent that no arrival matched.
type benchResult struct {
	Scenario    string  `json:"scenario"`
	URL         string  `json:"url"`
	Protocol    string  `json:"protocol"`
	QoS         int     `json:"qos"`
	PayloadSize int     `json:"payload_size"`
	Publishers  int     `json:"publishers"`
	Subscribers int     `json:"subscribers"`
	Shared      string  `json:"shared_group,omitempty"`
	RatePerPub  float64 `json:"rate_per_publisher"` // 0: unlimited

	Connections    benchConnCounts `json:"connections"`
	ConnectRate    float64         `json:"connect_rate"` // handshakes completed per second
	ConnectLatency benchLatency    `json:"connect_latency"`

	DurationS float64 `json:"duration_s"` // publishing (or holding, for conn and sub)
	DrainS    float64 `json:"drain_s"`    // waiting for the last acks and deliveries

	Sent     uint64  `json:"sent"`
	Acked    uint64  `json:"acked"`   // QoS 1: PUBACK, QoS 2: PUBCOMP (success codes)
	Refused  uint64  `json:"refused"` // acks with a failure reason code (v5)
	Unacked  uint64  `json:"unacked"` // QoS > 0: sent, neither acked nor refused
	Received uint64  `json:"received"`
	SentRate float64 `json:"sent_rate"` // msg/s over the publishing time
	RecvRate float64 `json:"recv_rate"` // msg/s from the start to the last arrival

	// Expected and Loss are null when the publishers are unknown (sub).
	Expected          *uint64 `json:"expected"`
	Loss              *uint64 `json:"loss"`
	LossPct           float64 `json:"loss_pct"`
	Duplicates        uint64  `json:"duplicates"`
	Foreign           uint64  `json:"foreign"` // arrivals not from this run's expected publishers
	Receivers         int     `json:"receivers"`
	ReceiversWithLoss int     `json:"receivers_with_loss"`

	Latency benchLatency `json:"latency"`
	Errors  []benchError `json:"errors,omitempty"`
}

type benchConnCounts struct {
	Attempted int `json:"attempted"`
	OK        int `json:"ok"`     // handshake (and SUBACK) completed
	Failed    int `json:"failed"` // never connected
	Lost      int `json:"lost"`   // connected, then closed by the broker or the network before the end
}

// benchLatency is in microseconds.
type benchLatency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	Max   float64 `json:"max_us"`
}

type benchError struct {
	Error string `json:"error"`
	Count int    `json:"count"`
}

func latencyOf(h *latencyHist) benchLatency {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return benchLatency{Count: h.n, Mean: us(h.mean()), P50: us(h.quantile(0.5)), P90: us(h.quantile(0.9)),
		P99: us(h.quantile(0.99)), P999: us(h.quantile(0.999)), Max: us(time.Duration(h.max))}
}

func protocolName(level byte) string {
	switch level {
	case packet.V31:
		return "3.1"
	case packet.V5:
		return "5.0"
	}
	return "3.1.1"
}

// lostConns counts the connections that ended before we closed them, by
// reason. It must run before closeAll, which ends them all.
func (r *benchRunner) lostConns() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	lost := map[string]int{}
	for _, c := range r.conns {
		if err := c.lost(); err != nil {
			lost["connection lost: "+err.Error()]++
		}
	}
	return lost
}

// result counts what the run did, after the readers have stopped, so that
// every count and the latency histogram cover the same arrivals; lost is
// from lostConns.
func (r *benchRunner) result(lost map[string]int) *benchResult {
	cfg := r.cfg
	res := &benchResult{Scenario: cfg.scenario, URL: cfg.target.String(), Protocol: protocolName(cfg.level),
		QoS: cfg.qos, PayloadSize: cfg.size, Publishers: len(r.plan.pubs), Subscribers: len(r.plan.subs),
		Shared: cfg.shared, RatePerPub: cfg.rate}
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Connections.Attempted = len(r.plan.idle) + len(r.plan.pubs) + len(r.plan.subs)
	res.Connections.Failed = r.failed
	res.Connections.OK = int(r.connected.Load())
	for e, n := range lost {
		res.Connections.Lost += n
		r.errs[e] += n
	}
	if d := r.connEnd.Sub(r.connStart).Seconds(); d > 0 {
		res.ConnectRate = float64(res.Connections.OK) / d
	}
	res.ConnectLatency = latencyOf(&r.connHist)
	res.DurationS = r.pubEnd.Sub(r.pubStart).Seconds()
	res.DrainS = r.drainEnd.Sub(r.pubEnd).Seconds()
	for _, p := range r.pubs {
		if p == nil {
			continue
		}
		res.Sent += p.sent.Load()
		res.Acked += p.acked.Load()
		res.Refused += p.refused.Load()
		if n := p.bogus.Load(); n > 0 {
			r.errs["acks for packet ids not in flight"] += int(n)
		}
	}
	if cfg.qos > 0 {
		res.Unacked = res.Sent - res.Acked - res.Refused
	}
	if res.DurationS > 0 {
		res.SentRate = float64(res.Sent) / res.DurationS
	}
	if len(r.recvs) > 0 {
		var exp, uniq, loss uint64
		for i, rc := range r.recvs {
			if !rc.subscribed.Load() {
				continue
			}
			res.Receivers++
			e, u := r.expectedOf(i), r.uniqueOf(rc)
			exp, uniq = exp+e, uniq+u
			if u < e {
				loss += e - u
				res.ReceiversWithLoss++
			}
		}
		res.Expected, res.Loss = &exp, &loss
		if exp > 0 {
			res.LossPct = 100 * float64(loss) / float64(exp)
		}
	}
	for _, s := range r.subs {
		if s == nil {
			continue
		}
		res.Received += s.received.Load()
		res.Duplicates += s.dups.Load()
		res.Foreign += s.foreign.Load()
	}
	for e, n := range r.errs {
		res.Errors = append(res.Errors, benchError{e, n})
	}
	sort.Slice(res.Errors, func(i, j int) bool {
		if res.Errors[i].Count != res.Errors[j].Count {
			return res.Errors[i].Count > res.Errors[j].Count
		}
		return res.Errors[i].Error < res.Errors[j].Error
	})
	if len(res.Errors) > 10 {
		res.Errors = res.Errors[:10]
	}

	// What the readers kept to themselves: latencies and arrival times.
	var h latencyHist
	var first, last int64
	for _, s := range r.subs {
		if s == nil {
			continue
		}
		h.merge(&s.hist)
		if s.first != 0 && (first == 0 || s.first < first) {
			first = s.first
		}
		last = max(last, s.last)
	}
	res.Latency = latencyOf(&h)
	// Receive rate: from the start of publishing (or the first arrival,
	// when the publishers are not ours) to the last arrival.
	from := r.pubStart.UnixNano()
	if len(r.plan.pubs) == 0 {
		from = first
	}
	if d := float64(last-from) / 1e9; last > 0 && d > 0 {
		res.RecvRate = float64(res.Received) / d
	}
	return res
}

func (res *benchResult) writeJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(res)
}

func (res *benchResult) writeText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	if res.Scenario == "conn" {
		p("tern bench conn: %s, MQTT %s, %s\n", res.shape(), res.Protocol, res.URL)
	} else {
		p("tern bench %s: %s, QoS %d, %d-byte payloads, MQTT %s, %s\n", res.Scenario, res.shape(), res.QoS, res.PayloadSize, res.Protocol, res.URL)
	}
	c := res.Connections
	p("connections  %d ok, %d failed, %d lost (of %d); %.0f/s; connect %s\n", c.OK, c.Failed, c.Lost, c.Attempted, res.ConnectRate, res.ConnectLatency.short())
	if res.Publishers == 0 {
		p("held         %.2f s\n", res.DurationS)
	} else {
		p("duration     %.2f s, then %.2f s draining\n", res.DurationS, res.DrainS)
	}
	if res.Publishers > 0 {
		p("sent         %d  (%s msg/s)\n", res.Sent, rateText(res.SentRate))
		if res.QoS > 0 {
			p("acked        %d  (refused %d, unacked %d)\n", res.Acked, res.Refused, res.Unacked)
		}
	}
	if res.Subscribers > 0 {
		p("received     %d  (%s msg/s)\n", res.Received, rateText(res.RecvRate))
		if res.Expected != nil {
			p("expected     %d; loss %d (%.3f%%) at %d of %d receivers; duplicates %d\n",
				*res.Expected, *res.Loss, res.LossPct, res.ReceiversWithLoss, res.Receivers, res.Duplicates)
		}
		if res.Foreign > 0 {
			p("foreign      %d (not from this run's publishers; not counted)\n", res.Foreign)
		}
		p("latency      %s\n", res.Latency.long())
	}
	for _, e := range res.Errors {
		p("error        %dx %s\n", e.Count, e.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// shape describes who talked to whom.
func (res *benchResult) shape() string {
	plural := func(n int, s string) string {
		if n == 1 {
			return "1 " + s
		}
		return fmt.Sprintf("%d %ss", n, s)
	}
	switch res.Scenario {
	case "conn":
		return plural(res.Connections.Attempted, "connection")
	case "pub":
		return plural(res.Publishers, "publisher")
	case "sub":
		return plural(res.Subscribers, "subscriber")
	case "p2p":
		return plural(res.Publishers, "pair")
	}
	return plural(res.Publishers, "publisher") + " -> " + plural(res.Subscribers, "subscriber")
}

func rateText(r float64) string {
	return fmt.Sprintf("%.0f", r)
}

func durText(us float64) string {
	d := time.Duration(us * 1e3)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0fµs", float64(d)/1e3)
}

func (l benchLatency) short() string {
	if l.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s p99 %s max %s", durText(l.P50), durText(l.P99), durText(l.Max))
}

func (l benchLatency) long() string {
	if l.Count == 0 {
		return "- (no stamped messages arrived)"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, %d samples)",
		durText(l.P50), durText(l.P90), durText(l.P99), durText(l.P999), durText(l.Max), durText(l.Mean), l.Count)
}

// isTerminal reports whether w is a terminal, where a live progress line
// belongs; piped or redirected output stays quiet.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress prints a live line on stderr once a second while the run goes,
// when stderr is a terminal. The counts are sums of per-connection atomics:
// no counter is shared by the hot paths.
func (r *benchRunner) progress() (stop func()) {
	if !r.cfg.progress {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start := time.Now()
		var lastSent, lastRecv uint64
		for {
			select {
			case <-quit:
				fmt.Fprint(r.stderr, "\r\x1b[K")
				return
			case now := <-t.C:
				sent, acked, recv := r.totals()
				phase, _ := r.phase.Load().(string)
				fmt.Fprintf(r.stderr, "\r\x1b[K%4.0fs %-10s conns %d/%d  sent %d (%s/s)  acked %d  recv %d (%s/s)",
					now.Sub(start).Seconds(), phase, r.connected.Load(), len(r.plan.idle)+len(r.plan.pubs)+len(r.plan.subs),
					sent, rateText(float64(sent-lastSent)), acked, recv, rateText(float64(recv-lastRecv)))
				lastSent, lastRecv = sent, recv
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

func (r *benchRunner) totals() (sent, acked, recv uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.pubs {
		if p != nil {
			sent += p.sent.Load()
			acked += p.acked.Load()
		}
	}
	for _, s := range r.subs {
		if s != nil {
			recv += s.received.Load()
		}
	}
	return sent, acked, recv
}
