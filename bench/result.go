package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ternmq/tern/packet"
)

// Result is the summary of a run; its JSON form is what tern bench --json
// prints. Counts are of what happened, never of what should have:
// received counts arrivals, and loss is what the publishers sent that no
// arrival matched.
type Result struct {
	Scenario       string    `json:"scenario"`
	URL            string    `json:"url"`                // where: the URL, or who went where when there are several
	URLs           []string  `json:"urls"`               // Config.URLs (publishers, idle connections)
	SubURLs        []string  `json:"sub_urls,omitempty"` // Config.SubURLs (subscribers), when set
	Protocol       string    `json:"protocol"`
	QoS            int       `json:"qos"`
	PayloadSize    int       `json:"payload_size"`
	Publishers     int       `json:"publishers"`
	Subscribers    int       `json:"subscribers"`
	Shared         string    `json:"shared_group,omitempty"`
	RatePerPub     float64   `json:"rate_per_publisher"`         // 0: unlimited
	Topic          string    `json:"topic"`                      // the pattern, %i the client index (conn: each subscribed to it; "": none)
	Persistent     bool      `json:"persistent,omitempty"`       // sessions outlive their connections (--persistent)
	Window         int       `json:"window"`                     // QoS 1/2 messages in flight per publisher
	Count          int       `json:"count,omitempty"`            // messages per publisher asked for (-n); 0: for a duration
	DurationSet    float64   `json:"duration_set_s,omitempty"`   // the duration asked for (-d), seconds
	ConnectRateSet float64   `json:"connect_rate_set,omitempty"` // --connect-rate; 0: unlimited
	KeepAlive      int       `json:"keepalive_s"`
	Started        time.Time `json:"started"`

	Connections    ConnCounts    `json:"connections"`
	Servers        []ServerConns `json:"servers,omitempty"` // per URL, when there are several
	ConnectRate    float64       `json:"connect_rate"`      // handshakes completed per second
	ConnectLatency Latency       `json:"connect_latency"`

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

	Latency Latency      `json:"latency"`
	Errors  []ErrorCount `json:"errors,omitempty"`

	// Timeline is what happened each second from the start of publishing
	// (or holding) to the end of the drain; its counts add up to Sent,
	// Acked and Received.
	Timeline []Sample `json:"timeline"`
	// LatencyHistogram and ConnectHistogram are the latencies' histograms
	// at 8 buckets per power of two, from the first bucket with a sample
	// to the last.
	LatencyHistogram []Bucket `json:"latency_histogram,omitempty"`
	ConnectHistogram []Bucket `json:"connect_latency_histogram,omitempty"`
}

// ConnCounts counts the connections of a run.
type ConnCounts struct {
	Attempted int `json:"attempted"`
	OK        int `json:"ok"`     // handshake (and SUBACK) completed
	Failed    int `json:"failed"` // never connected
	Lost      int `json:"lost"`   // connected, then closed by the broker or the network before the end
}

// ServerConns counts the connections made to one URL.
type ServerConns struct {
	URL    string `json:"url"`
	OK     int    `json:"ok"`     // handshake (and SUBACK) completed
	Failed int    `json:"failed"` // dial, handshake or SUBSCRIBE failed
}

// Latency is a latency distribution's summary, in microseconds.
// Percentiles are nearest-rank.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_us"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p999_us"`
	Max   float64 `json:"max_us"`
}

// ErrorCount is one reason connections failed or were lost, and how
// often.
type ErrorCount struct {
	Error string `json:"error"`
	Count int    `json:"count"`
}

// Sample is one interval of the timeline: what was sent, acknowledged and
// received from the previous sample's T to T.
type Sample struct {
	T        float64 `json:"t"` // seconds from the start of publishing
	Sent     uint64  `json:"sent"`
	Acked    uint64  `json:"acked"`
	Received uint64  `json:"received"`
}

// Bucket is a histogram bucket: Count samples from Lo to Hi
// microseconds, both included.
type Bucket struct {
	Lo    float64 `json:"lo_us"`
	Hi    float64 `json:"hi_us"`
	Count uint64  `json:"count"`
}

func latencyOf(h *latencyHist) Latency {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return Latency{Count: h.n, Mean: us(h.mean()), P50: us(h.quantile(0.5)), P90: us(h.quantile(0.9)),
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
func (r *benchRunner) result(lost map[string]int) *Result {
	cfg := r.cfg
	res := &Result{Scenario: cfg.scenario, URLs: cfg.urls, SubURLs: cfg.subURLs, Protocol: protocolName(cfg.level),
		QoS: cfg.qos, PayloadSize: cfg.size, Publishers: len(r.plan.pubs), Subscribers: len(r.plan.subs),
		Shared: cfg.shared, RatePerPub: cfg.rate, Topic: cfg.topic, Persistent: cfg.persistent, Window: cfg.window, Count: cfg.count,
		DurationSet: cfg.duration.Seconds(), ConnectRateSet: cfg.connectRate, KeepAlive: cfg.keepAlive,
		Started: r.connStart}
	if cfg.scenario == "conn" && !cfg.idleSub {
		res.Topic = ""
	}
	res.URL = res.where(cfg.targets, cfg.subTargets, len(r.plan.idle))
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.servers) > 1 {
		for _, sc := range r.servers {
			res.Servers = append(res.Servers, *sc)
		}
		sort.Slice(res.Servers, func(i, j int) bool { return res.Servers[i].URL < res.Servers[j].URL })
	}
	res.Timeline = append([]Sample{}, r.timeline...)
	res.ConnectHistogram = r.connHist.buckets()
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
		res.Errors = append(res.Errors, ErrorCount{e, n})
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
	res.LatencyHistogram = h.buckets()
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

// where says where the connections went: the URL when there is one.
func (res *Result) where(targets, subTargets []benchTarget, idle int) string {
	names := func(ts []benchTarget) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = t.String()
		}
		return strings.Join(s, ", ")
	}
	pubs, subs := names(targets), names(subTargets)
	switch {
	case res.Subscribers == 0 || pubs == subs:
		return pubs
	case res.Publishers == 0 && idle == 0:
		return subs
	}
	return "publishers on " + pubs + "; subscribers on " + subs
}

// WriteJSON writes res as one JSON object and a newline (tern bench --json).
func (res *Result) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(res)
}

// WriteText writes the summary tern bench prints.
func (res *Result) WriteText(w io.Writer) error {
	_, err := io.WriteString(w, res.text())
	return err
}

func (res *Result) text() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	sessions := ""
	if res.Persistent {
		sessions = ", persistent sessions"
	}
	if res.Scenario == "conn" {
		sub := ""
		if res.Topic != "" {
			sub = fmt.Sprintf(", each subscribed to %s at QoS %d", res.Topic, res.QoS)
		}
		p("tern bench conn: %s%s, MQTT %s%s, %s\n", res.shape(), sub, res.Protocol, sessions, res.URL)
	} else {
		p("tern bench %s: %s, QoS %d, %d-byte payloads, MQTT %s%s, %s\n", res.Scenario, res.shape(), res.QoS, res.PayloadSize, res.Protocol, sessions, res.URL)
	}
	c := res.Connections
	p("connections  %d ok, %d failed, %d lost (of %d); %.0f/s; connect %s\n", c.OK, c.Failed, c.Lost, c.Attempted, res.ConnectRate, res.ConnectLatency.short())
	if len(res.Servers) > 0 {
		var s []string
		for _, sc := range res.Servers {
			t := fmt.Sprintf("%s %d ok", sc.URL, sc.OK)
			if sc.Failed > 0 {
				t += fmt.Sprintf(", %d failed", sc.Failed)
			}
			s = append(s, t)
		}
		p("servers      %s\n", strings.Join(s, "; "))
	}
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
	return b.String()
}

// shape describes who talked to whom.
func (res *Result) shape() string {
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

func (l Latency) short() string {
	if l.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s p99 %s max %s", durText(l.P50), durText(l.P99), durText(l.Max))
}

func (l Latency) long() string {
	if l.Count == 0 {
		return "- (no stamped messages arrived)"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, %d samples)",
		durText(l.P50), durText(l.P90), durText(l.P99), durText(l.P999), durText(l.Max), durText(l.Mean), l.Count)
}

// progress prints a live line on Config.Progress once a second while the
// run goes. The counts are sums of per-connection atomics:
// no counter is shared by the hot paths.
func (r *benchRunner) progress() (stop func()) {
	w := r.cfg.progress
	if w == nil {
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
				fmt.Fprint(w, "\r\x1b[K")
				return
			case now := <-t.C:
				sent, acked, recv := r.totals()
				phase, _ := r.phase.Load().(string)
				fmt.Fprintf(w, "\r\x1b[K%4.0fs %-10s conns %d/%d  sent %d (%s/s)  acked %d  recv %d (%s/s)",
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
