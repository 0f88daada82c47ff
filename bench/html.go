package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
)

// A Report is an HTML page of runs: one run's (Result.WriteHTML, tern
// bench --report) or several side by side (compare.sh --report). The page
// stands alone: inline CSS and SVG charts, no script, nothing fetched.
type Report struct {
	Title    string
	Subtitle string // under the title: when, where
	Sections []ReportSection
	Notes    []string // paragraphs at the end: how to read it
}

// A ReportSection is one scenario: its runs side by side, with their
// parameters, counts, throughput over time and latency histograms.
type ReportSection struct {
	Title string
	Runs  []ReportRun
}

// A ReportRun is one column of a section: a run and what to call it (the
// broker it ran against).
type ReportRun struct {
	Name   string
	Result *Result
	// Extra are more rows for the page's summary table and the section's
	// results, measured outside the run (the broker's CPU and memory).
	Extra []ReportField
}

// ReportField is a named value for a report's tables.
type ReportField struct {
	Name, Value string
}

// WriteHTML writes the page of one run (tern bench --report).
func (res *Result) WriteHTML(w io.Writer) error {
	text := res.text()
	title, _, _ := strings.Cut(text, "\n") // the summary's first line
	r := Report{Title: title, Subtitle: "Started " + res.Started.Format("2006-01-02 15:04:05 MST"),
		Sections: []ReportSection{{Runs: []ReportRun{{Result: res}}}},
		Notes:    []string{"The summary as tern bench printed it:"}}
	return r.write(w, text)
}

// WriteHTML writes the page.
func (r *Report) WriteHTML(w io.Writer) error {
	return r.write(w, "")
}

// reportCSS styles the page; it is in a style element, so no < or &.
const reportCSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin: 1.2em 0 0.3em; }
p.sub { color: #666; margin-top: -0.5em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: right; vertical-align: top; }
th:first-child, td.name { text-align: left; }
thead th { background: #f3f3f3; }
td.err { text-align: left; color: #a00; }
svg { display: block; margin: 0.3em 0; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
.legend { margin: 0; color: #333; }
.legend svg { display: inline; vertical-align: middle; margin: 0 0.3em 0 1em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
`

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

func (r *Report) write(w io.Writer, pre string) error {
	var b strings.Builder
	e := html.EscapeString
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n")
	fmt.Fprintf(&b, "<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n", e(r.Title), reportCSS)
	fmt.Fprintf(&b, "<h1>%s</h1>\n", e(r.Title))
	if r.Subtitle != "" {
		fmt.Fprintf(&b, "<p class=\"sub\">%s</p>\n", e(r.Subtitle))
	}
	if len(r.Sections) > 1 || (len(r.Sections) == 1 && len(r.Sections[0].Runs) > 1) {
		r.summary(&b)
	}
	for _, s := range r.Sections {
		section(&b, s)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "<p>%s</p>\n", e(n))
	}
	if pre != "" {
		fmt.Fprintf(&b, "<pre>%s</pre>\n", e(pre))
	}
	b.WriteString("</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// headline is a run's main figures: its rate (and what it counts), its
// latency and its loss, as compare.sh's table has them.
func (res *Result) headline() (rate float64, unit string, lat Latency, loss string) {
	switch {
	case res.Scenario == "conn":
		return res.ConnectRate, "connections/s", res.ConnectLatency,
			fmt.Sprintf("%d/%d connected", res.Connections.OK, res.Connections.Attempted)
	case res.Subscribers == 0:
		n := res.Sent
		if res.QoS > 0 {
			n = res.Acked
		}
		if res.DurationS > 0 {
			rate = float64(n) / res.DurationS
		}
		return rate, "msg/s acknowledged", res.Latency, "-"
	}
	loss = "-"
	if res.Loss != nil {
		loss = fmt.Sprintf("%.3f%%", res.LossPct)
	}
	return res.RecvRate, "msg/s received", res.Latency, loss
}

// summary is the table of every section's headline figures.
func (r *Report) summary(b *strings.Builder) {
	e := html.EscapeString
	var names []string // the runs' names, in the order first seen
	var extras []string
	for _, s := range r.Sections {
		for _, run := range s.Runs {
			if !slices.Contains(names, run.Name) {
				names = append(names, run.Name)
			}
			for _, f := range run.Extra {
				if !slices.Contains(extras, f.Name) {
					extras = append(extras, f.Name)
				}
			}
		}
	}
	cols := append([]string{"rate", "p50", "p99", "loss"}, extras...)
	b.WriteString("<table class=\"summary\">\n<thead><tr><th rowspan=\"2\">scenario</th>")
	for _, n := range names {
		fmt.Fprintf(b, "<th colspan=\"%d\">%s</th>", len(cols), e(n))
	}
	ratio := len(names) == 2
	if ratio {
		fmt.Fprintf(b, "<th rowspan=\"2\">%s</th>", e(names[0]+" / "+names[1]))
	}
	b.WriteString("</tr>\n<tr>")
	for range names {
		for _, c := range cols {
			fmt.Fprintf(b, "<th>%s</th>", e(c))
		}
	}
	b.WriteString("</tr></thead>\n<tbody>\n")
	for _, s := range r.Sections {
		fmt.Fprintf(b, "<tr><td class=\"name\">%s</td>", e(s.Title))
		rates := map[string]float64{}
		for _, n := range names {
			run, ok := findRun(s.Runs, n)
			if !ok || run.Result == nil {
				for range cols {
					b.WriteString("<td>-</td>")
				}
				continue
			}
			rate, unit, lat, loss := run.Result.headline()
			rates[n] = rate
			fmt.Fprintf(b, "<td title=\"%s\">%s</td><td>%s</td><td>%s</td><td>%s</td>",
				e(unit), e(rateText(rate)), e(latText(lat, lat.P50)), e(latText(lat, lat.P99)), e(loss))
			for _, x := range extras {
				v := "-"
				for _, f := range run.Extra {
					if f.Name == x {
						v = f.Value
					}
				}
				fmt.Fprintf(b, "<td>%s</td>", e(v))
			}
		}
		if ratio {
			v := "-"
			if d := rates[names[1]]; d > 0 {
				v = fmt.Sprintf("%.2fx", rates[names[0]]/d)
			}
			fmt.Fprintf(b, "<td>%s</td>", v)
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody>\n</table>\n")
	b.WriteString("<p class=\"sub\">rate: messages received per second (pub: acknowledged; conn: connections per second, " +
		"connect latency, loss = connected/attempted).</p>\n")
}

func findRun(runs []ReportRun, name string) (ReportRun, bool) {
	for _, r := range runs {
		if r.Name == name {
			return r, true
		}
	}
	return ReportRun{}, false
}

func latText(l Latency, v float64) string {
	if l.Count == 0 {
		return "-"
	}
	return durText(v)
}

// section writes one scenario: parameters, results, charts.
func section(b *strings.Builder, s ReportSection) {
	e := html.EscapeString
	if s.Title != "" {
		fmt.Fprintf(b, "<h2>%s</h2>\n", e(s.Title))
	}
	var runs []ReportRun
	for _, r := range s.Runs {
		if r.Result != nil {
			runs = append(runs, r)
		} else {
			fmt.Fprintf(b, "<p>%s: no result.</p>\n", e(r.Name))
		}
	}
	if len(runs) == 0 {
		return
	}
	named := len(runs) > 1 || runs[0].Name != ""
	table := func(title string, rows [][]string) {
		fmt.Fprintf(b, "<h3>%s</h3>\n<table>\n", e(title))
		if named {
			b.WriteString("<thead><tr><th></th>")
			for _, r := range runs {
				fmt.Fprintf(b, "<th>%s</th>", e(r.Name))
			}
			b.WriteString("</tr></thead>\n")
		}
		b.WriteString("<tbody>\n")
		for _, row := range rows {
			fmt.Fprintf(b, "<tr><td class=\"name\">%s</td>", e(row[0]))
			for _, v := range row[1:] {
				fmt.Fprintf(b, "<td>%s</td>", e(v))
			}
			b.WriteString("</tr>\n")
		}
		b.WriteString("</tbody>\n</table>\n")
	}
	row := func(name string, f func(*Result) string) []string {
		out := []string{name}
		for _, r := range runs {
			out = append(out, f(r.Result))
		}
		return out
	}
	table("Parameters", paramRows(runs, row))
	table("Results", resultRows(runs, row))
	for _, r := range runs {
		for _, er := range r.Result.Errors {
			who := ""
			if named {
				who = r.Name + ": "
			}
			fmt.Fprintf(b, "<p class=\"legend\"><span style=\"color:#a00\">%s%dx %s</span></p>\n", e(who), er.Count, e(er.Error))
		}
	}

	b.WriteString("<h3>Throughput</h3>\n")
	throughputChart(b, runs)
	title := "Latency histogram"
	if runs[0].Result.Scenario == "conn" {
		title = "Connect latency histogram"
	}
	fmt.Fprintf(b, "<h3>%s</h3>\n", e(title))
	latencyChart(b, runs)
}

func paramRows(runs []ReportRun, row func(string, func(*Result) string) []string) [][]string {
	rows := [][]string{
		row("scenario", func(r *Result) string { return r.Scenario + ": " + r.shape() }),
		row("broker", func(r *Result) string { return r.URL }),
		row("protocol", func(r *Result) string { return "MQTT " + r.Protocol }),
		row("publishers", func(r *Result) string { return fmt.Sprint(r.Publishers) }),
		row("subscribers", func(r *Result) string { return fmt.Sprint(r.Subscribers) }),
	}
	if runs[0].Result.Scenario != "conn" {
		rows = append(rows,
			row("QoS", func(r *Result) string { return fmt.Sprint(r.QoS) }),
			row("payload", func(r *Result) string { return fmt.Sprintf("%d bytes", r.PayloadSize) }),
			row("topic", func(r *Result) string {
				if r.Shared != "" {
					return r.Topic + " (shared group " + r.Shared + ")"
				}
				return r.Topic
			}),
			row("rate per publisher", func(r *Result) string {
				if r.RatePerPub == 0 {
					return "unlimited"
				}
				return fmt.Sprintf("%g msg/s", r.RatePerPub)
			}),
			row("window (QoS 1/2)", func(r *Result) string { return fmt.Sprint(r.Window) }))
	} else {
		rows = append(rows, row("connections", func(r *Result) string { return fmt.Sprint(r.Connections.Attempted) }),
			row("subscription", func(r *Result) string {
				if r.Topic == "" {
					return "none"
				}
				return fmt.Sprintf("%s, QoS %d", r.Topic, r.QoS)
			}))
	}
	rows = append(rows,
		row("length", func(r *Result) string {
			if r.Count > 0 {
				return fmt.Sprintf("%d messages per publisher", r.Count)
			}
			return fmt.Sprintf("%g s", r.DurationSet)
		}),
		row("connect rate", func(r *Result) string {
			if r.ConnectRateSet == 0 {
				return "unlimited"
			}
			return fmt.Sprintf("%g/s", r.ConnectRateSet)
		}),
		row("keep alive", func(r *Result) string { return fmt.Sprintf("%d s", r.KeepAlive) }),
		row("sessions", func(r *Result) string {
			if r.Persistent {
				return "persistent"
			}
			return "clean"
		}),
		row("started", func(r *Result) string { return r.Started.Format("2006-01-02 15:04:05") }))
	return rows
}

func resultRows(runs []ReportRun, row func(string, func(*Result) string) []string) [][]string {
	res0 := runs[0].Result
	rows := [][]string{
		row("connections", func(r *Result) string {
			c := r.Connections
			return fmt.Sprintf("%d ok, %d failed, %d lost (of %d)", c.OK, c.Failed, c.Lost, c.Attempted)
		}),
		row("connect rate", func(r *Result) string { return rateText(r.ConnectRate) + "/s" }),
		row("connect latency", func(r *Result) string { return r.ConnectLatency.short() }),
		row("duration", func(r *Result) string { return fmt.Sprintf("%.2f s, then %.2f s draining", r.DurationS, r.DrainS) }),
	}
	if res0.Publishers > 0 {
		rows = append(rows,
			row("sent", func(r *Result) string { return fmt.Sprintf("%d (%s msg/s)", r.Sent, rateText(r.SentRate)) }))
		if res0.QoS > 0 {
			rows = append(rows, row("acked", func(r *Result) string {
				return fmt.Sprintf("%d (refused %d, unacked %d)", r.Acked, r.Refused, r.Unacked)
			}))
		}
	}
	if res0.Subscribers > 0 {
		rows = append(rows,
			row("received", func(r *Result) string { return fmt.Sprintf("%d (%s msg/s)", r.Received, rateText(r.RecvRate)) }),
			row("expected", func(r *Result) string {
				if r.Expected == nil {
					return "- (publishers unknown)"
				}
				return fmt.Sprint(*r.Expected)
			}),
			row("loss", func(r *Result) string {
				if r.Loss == nil {
					return "-"
				}
				return fmt.Sprintf("%d (%.3f%%) at %d of %d receivers", *r.Loss, r.LossPct, r.ReceiversWithLoss, r.Receivers)
			}),
			row("duplicates", func(r *Result) string { return fmt.Sprint(r.Duplicates) }))
	}
	lat := func(r *Result) Latency {
		if r.Scenario == "conn" {
			return r.ConnectLatency
		}
		return r.Latency
	}
	if res0.Scenario == "conn" || res0.Subscribers > 0 {
		for _, p := range []struct {
			name string
			v    func(Latency) float64
		}{
			{"latency p50", func(l Latency) float64 { return l.P50 }},
			{"latency p90", func(l Latency) float64 { return l.P90 }},
			{"latency p99", func(l Latency) float64 { return l.P99 }},
			{"latency p99.9", func(l Latency) float64 { return l.P999 }},
			{"latency max", func(l Latency) float64 { return l.Max }},
			{"latency mean", func(l Latency) float64 { return l.Mean }},
		} {
			rows = append(rows, row(p.name, func(r *Result) string { return latText(lat(r), p.v(lat(r))) }))
		}
		rows = append(rows, row("latency samples", func(r *Result) string { return fmt.Sprint(lat(r).Count) }))
	}
	var extras []string
	for _, r := range runs {
		for _, f := range r.Extra {
			if !slices.Contains(extras, f.Name) {
				extras = append(extras, f.Name)
			}
		}
	}
	for _, x := range extras {
		out := []string{x}
		for _, r := range runs {
			v := "-"
			for _, f := range r.Extra {
				if f.Name == x {
					v = f.Value
				}
			}
			out = append(out, v)
		}
		rows = append(rows, out)
	}
	return rows
}

// Chart geometry, in pixels.
const (
	chartW, chartH = 760, 260
	padL, padR     = 64, 28
	padT, padB     = 14, 38
	plotW, plotH   = chartW - padL - padR, chartH - padT - padB
)

type series struct {
	name, color string
	dashed      bool
	pts         [][2]float64 // x, y in data units
}

// throughputChart draws messages per second over time: one step line per
// series, each sample's count over its interval.
func throughputChart(b *strings.Builder, runs []ReportRun) {
	var ss []series
	for i, run := range runs {
		res := run.Result
		kinds := []struct {
			name string
			n    func(Sample) uint64
			show bool
		}{
			{"sent", func(s Sample) uint64 { return s.Sent }, res.Publishers > 0},
			{"acked", func(s Sample) uint64 { return s.Acked }, res.Publishers > 0 && res.QoS > 0 && len(runs) == 1},
			{"received", func(s Sample) uint64 { return s.Received }, res.Subscribers > 0},
		}
		for k, kind := range kinds {
			if !kind.show {
				continue
			}
			s := series{name: kind.name, color: palette[k%len(palette)], pts: steps(res.Timeline, kind.n), dashed: kind.name == "acked"}
			if len(runs) > 1 {
				s.name = run.Name + " " + kind.name
				s.color = palette[i%len(palette)]
				s.dashed = kind.name == "sent" && res.Subscribers > 0
			}
			ss = append(ss, s)
		}
	}
	if len(ss) == 0 {
		b.WriteString("<p>No messages in this scenario.</p>\n")
		return
	}
	lineChart(b, "messages per second over time", "seconds since publishing started", "msg/s", ss)
}

// steps turns a timeline into a step line of rates. An interval shorter
// than a quarter second (the last, cut short by the end of the run) is
// merged into the one before, so that a few messages in a few
// milliseconds do not draw a spike.
func steps(tl []Sample, n func(Sample) uint64) [][2]float64 {
	type iv struct {
		t0, t1 float64
		n      uint64
	}
	var ivs []iv
	prev := 0.0
	for _, s := range tl {
		if len(ivs) > 0 && s.T-prev < 0.25 {
			ivs[len(ivs)-1].t1 = s.T
			ivs[len(ivs)-1].n += n(s)
		} else if s.T > prev {
			ivs = append(ivs, iv{prev, s.T, n(s)})
		}
		prev = max(prev, s.T)
	}
	var pts [][2]float64
	for _, v := range ivs {
		r := float64(v.n) / (v.t1 - v.t0)
		pts = append(pts, [2]float64{v.t0, r}, [2]float64{v.t1, r})
	}
	return pts
}

// lineChart draws series on linear axes from 0.
func lineChart(b *strings.Builder, title, xLabel, yLabel string, ss []series) {
	var xMax, yMax float64
	for _, s := range ss {
		for _, p := range s.pts {
			xMax, yMax = max(xMax, p[0]), max(yMax, p[1])
		}
	}
	xTicks, xTop := niceTicks(xMax)
	if xMax <= 0 {
		xMax = xTop
	}
	for len(xTicks) > 1 && xTicks[len(xTicks)-1] > xMax*1.0001 {
		xTicks = xTicks[:len(xTicks)-1] // the axis ends with the data
	}
	yTicks, yMax := niceTicks(yMax * 1.05) // room above the highest line
	x := func(v float64) float64 { return padL + v/xMax*plotW }
	y := func(v float64) float64 { return padT + plotH - v/yMax*plotH }
	svgOpen(b, title)
	for _, t := range yTicks {
		fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>", padL, y(t), padL+plotW, y(t))
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", padL-4, y(t)+4, html.EscapeString(siText(t)))
	}
	for _, t := range xTicks {
		fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#999\"/>", x(t), padT+plotH, x(t), padT+plotH+4)
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x(t), padT+plotH+16, html.EscapeString(siText(t)))
	}
	axes(b, xLabel, yLabel)
	for _, s := range ss {
		var pts []string
		for _, p := range s.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		dash := ""
		if s.dashed {
			dash = " stroke-dasharray=\"6 4\""
		}
		fmt.Fprintf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"%s\"><title>%s</title></polyline>\n",
			s.color, dash, strings.Join(pts, " "), html.EscapeString(s.name))
	}
	b.WriteString("</svg>\n")
	legend(b, ss)
}

func svgOpen(b *strings.Builder, title string) {
	fmt.Fprintf(b, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">\n<title>%s</title>\n",
		chartW, chartH, chartW, chartH, html.EscapeString(title), html.EscapeString(title))
}

func axes(b *strings.Builder, xLabel, yLabel string) {
	fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>", padL, padT+plotH, padL+plotW, padT+plotH)
	fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>\n", padL, padT, padL, padT+plotH)
	fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", padL+plotW/2, chartH-4, html.EscapeString(xLabel))
	fmt.Fprintf(b, "<text x=\"12\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 12 %d)\">%s</text>\n",
		padT+plotH/2, padT+plotH/2, html.EscapeString(yLabel))
}

func legend(b *strings.Builder, ss []series) {
	b.WriteString("<p class=\"legend\">")
	for _, s := range ss {
		dash := ""
		if s.dashed {
			dash = " stroke-dasharray=\"6 4\""
		}
		fmt.Fprintf(b, "<svg width=\"28\" height=\"10\"><line x1=\"0\" y1=\"5\" x2=\"28\" y2=\"5\" stroke=\"%s\" stroke-width=\"3\"%s/></svg>%s",
			s.color, dash, html.EscapeString(s.name))
	}
	b.WriteString("</p>\n")
}

// niceTicks returns ticks from 0 at a step of 1, 2 or 5 times a power of
// ten, about five of them, and the axis maximum (the last tick).
func niceTicks(v float64) ([]float64, float64) {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		v = 1
	}
	raw := v / 5
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := p
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	var ticks []float64
	for t := 0.0; ; t += step {
		ticks = append(ticks, t)
		if t >= v-step*1e-9 {
			return ticks, t
		}
	}
}

// tickText prints a latency axis value (µs) of 1, 2 or 5 times a power
// of ten: 5µs, 100µs, 2ms, 10s.
func tickText(us float64) string {
	switch {
	case us >= 1e6:
		return siText(us/1e6) + "s"
	case us >= 1e3:
		return siText(us/1e3) + "ms"
	case us >= 1:
		return siText(us) + "µs"
	}
	return siText(us*1e3) + "ns"
}

// siText prints an axis value: 12, 1.5, 25k, 1.2M.
func siText(v float64) string {
	switch {
	case v >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case v >= 1e3:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	}
	return trimZero(fmt.Sprintf("%.2f", v))
}

func trimZero(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// latencyChart draws the latency histograms on a logarithmic axis: the
// share of samples in each bucket (8 per power of two), with the
// percentiles marked. One run's are bars; several runs' are outlines.
func latencyChart(b *strings.Builder, runs []ReportRun) {
	type hs struct {
		name, color string
		buckets     []Bucket
		lat         Latency
	}
	var hss []hs
	lo, hi := math.Inf(1), 0.0
	for i, run := range runs {
		res := run.Result
		h := hs{name: run.Name, color: palette[i%len(palette)], buckets: res.LatencyHistogram, lat: res.Latency}
		if res.Scenario == "conn" {
			h.buckets, h.lat = res.ConnectHistogram, res.ConnectLatency
		}
		if len(runs) == 1 {
			h.color = palette[0]
		}
		if len(h.buckets) == 0 {
			continue
		}
		hss = append(hss, h)
		lo = min(lo, max(h.buckets[0].Lo, 0.001))
		hi = max(hi, h.buckets[len(h.buckets)-1].Hi+0.001)
	}
	if len(hss) == 0 {
		b.WriteString("<p>No latency samples.</p>\n")
		return
	}
	// Whole decades around the samples, so the ticks are 1, 10, 100 ...
	lgLo, lgHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if lgHi <= lgLo {
		lgHi = lgLo + 1
	}
	x := func(us float64) float64 {
		return padL + (math.Log10(max(us, 0.001))-lgLo)/(lgHi-lgLo)*plotW
	}
	var yMax float64
	share := func(h hs, c uint64) float64 {
		var n uint64
		for _, b := range h.buckets {
			n += b.Count
		}
		return 100 * float64(c) / float64(n)
	}
	for _, h := range hss {
		for _, bk := range h.buckets {
			yMax = max(yMax, share(h, bk.Count))
		}
	}
	// Room above the bars for the percentiles' labels.
	yTicks, yMax := niceTicks(yMax * (1 + 0.2*float64(len(hss))))
	y := func(v float64) float64 { return padT + plotH - v/yMax*plotH }
	svgOpen(b, "latency histogram")
	for _, t := range yTicks {
		fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>", padL, y(t), padL+plotW, y(t))
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s%%</text>\n", padL-4, y(t)+4, siText(t))
	}
	for d := lgLo; d <= lgHi; d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if d == lgHi && m > 1 {
				break
			}
			label := ""
			if m == 1 || lgHi-lgLo <= 2 {
				label = tickText(v)
			}
			fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#999\"/>", x(v), padT+plotH, x(v), padT+plotH+4)
			if label != "" {
				fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x(v), padT+plotH+16, html.EscapeString(label))
			}
		}
	}
	axes(b, "latency (logarithmic)", "% of samples")
	for i, h := range hss {
		if len(hss) == 1 {
			for _, bk := range h.buckets {
				if bk.Count == 0 {
					continue
				}
				x0, x1 := x(max(bk.Lo, 0.001)), x(bk.Hi+0.001)
				fmt.Fprintf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"0.75\"><title>%s to %s: %d</title></rect>\n",
					x0, y(share(h, bk.Count)), max(x1-x0, 0.5), y(0)-y(share(h, bk.Count)), h.color,
					html.EscapeString(durText(bk.Lo)), html.EscapeString(durText(bk.Hi)), bk.Count)
			}
		} else {
			pts := []string{fmt.Sprintf("%.1f,%.1f", x(max(h.buckets[0].Lo, 0.001)), y(0))}
			for _, bk := range h.buckets {
				v := y(share(h, bk.Count))
				pts = append(pts, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x(max(bk.Lo, 0.001)), v, x(bk.Hi+0.001), v))
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(h.buckets[len(h.buckets)-1].Hi+0.001), y(0)))
			fmt.Fprintf(b, "<polyline fill=\"%s\" fill-opacity=\"0.12\" stroke=\"%s\" stroke-width=\"1.4\" points=\"%s\"><title>%s</title></polyline>\n",
				h.color, h.color, strings.Join(pts, " "), html.EscapeString(h.name))
		}
		// The percentiles, labelled at the top, a row each (then each run's).
		for k, m := range []struct {
			name string
			v    float64
		}{{"p50", h.lat.P50}, {"p99", h.lat.P99}, {"p99.9", h.lat.P999}} {
			xv := x(m.v)
			fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" stroke-dasharray=\"3 3\"/>", xv, padT, xv, padT+plotH, h.color)
			fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" style=\"fill:%s\">%s %s</text>\n", xv+3, padT+10+12*(k+3*i), h.color, m.name, html.EscapeString(durText(m.v)))
		}
	}
	b.WriteString("</svg>\n")
	if len(hss) > 1 {
		var ss []series
		for _, h := range hss {
			ss = append(ss, series{name: h.name, color: h.color})
		}
		legend(b, ss)
	}
}
