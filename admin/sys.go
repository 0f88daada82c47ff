package admin

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/ternmq/tern/broker"
)

// SysSource is what the $SYS publisher needs of the broker.
type SysSource interface {
	Stats() broker.Stats
	Publish(*broker.Message) error
}

// SysPrefix is where the $SYS publisher puts its topics.
const SysPrefix = "$SYS/broker/"

// SysTopics is how many topics the publisher keeps under SysPrefix, all
// of them retained: 19 values and 21 load averages; a node of a cluster
// (SetCluster) keeps one more, cluster/nodes.
const SysTopics = 40

// loadWindows are the averaging windows of the load topics, with their
// topic suffixes: Mosquitto's 1, 5 and 15 minutes.
var loadWindows = [3]struct {
	name string
	span float64 // seconds
}{{"1min", 60}, {"5min", 300}, {"15min", 900}}

// loadCounters are the counters whose rates the load topics average,
// by topic (under load/).
var loadCounters = []struct {
	topic string
	value func(broker.Stats) int64
}{
	{"messages/received", func(s broker.Stats) int64 { return s.MessagesIn }},
	{"messages/sent", func(s broker.Stats) int64 { return s.MessagesOut }},
	{"publish/received", func(s broker.Stats) int64 { return s.MessagesIn }},
	{"publish/sent", func(s broker.Stats) int64 { return s.MessagesOut }},
	{"bytes/received", func(s broker.Stats) int64 { return s.BytesReceived }}, // [contract]
	{"bytes/sent", func(s broker.Stats) int64 { return s.BytesSent }},         // [contract]
	{"connections", func(s broker.Stats) int64 { return s.ConnectionsTotal }},
}

// Sys publishes the broker's counters as retained messages under
// $SYS/broker/ with Mosquitto's topic names and formats. Like Mosquitto,
// it publishes at every interval only the values that changed since the
// last one (uptime always changes), except at its first update, which
// publishes everything so that stale values a store kept from an earlier
// run are replaced.
//
// Tern counts PUBLISH packets, not every packet, so messages/received and
// messages/sent (Mosquitto: packets of any type) carry the same values as
// publish/messages/received and publish/messages/sent.
type Sys struct {
	src      SysSource
	version  string
	started  time.Time
	interval time.Duration
	log      *slog.Logger
	cluster  Cluster // nil: a single node

	sent  map[string]string // topic -> payload last published
	last  time.Time         // of the previous update; zero before the first
	prev  []int64           // loadCounters' values at the previous update
	loads [][3]float64      // per load counter, per window: the average
}

// NewSys returns a publisher that reads src every interval (which must be
// positive). version is the server's version, started when it started
// (uptime counts from it).
func NewSys(src SysSource, version string, started time.Time, interval time.Duration, log *slog.Logger) *Sys {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sys{src: src, version: version, started: started, interval: interval, log: log,
		sent: make(map[string]string), loads: make([][3]float64, len(loadCounters))}
}

// SetCluster makes the publisher a cluster node's: cluster/nodes carries
// the names of the nodes c hears from, sorted and comma-separated
// (ClusterNodeNames). $SYS stays on each node: every node publishes its
// own. Call it before Run.
func (s *Sys) SetCluster(c Cluster) { s.cluster = c }

// Run publishes at once and then every interval until ctx ends.
func (s *Sys) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	s.update(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.update(now)
		}
	}
}

// update publishes the values of now that changed since the last update
// (all of them the first time). A value whose publication failed is
// tried again at the next update.
func (s *Sys) update(now time.Time) {
	st := s.src.Stats()
	first := s.last.IsZero()
	failed := 0
	var firstErr error
	for _, v := range s.values(st, now) {
		if !first && !v.always && s.sent[v.topic] == v.payload {
			continue
		}
		err := s.src.Publish(&broker.Message{Topic: SysPrefix + v.topic, Payload: []byte(v.payload), Retain: true})
		if err != nil {
			failed++
			firstErr = err
			delete(s.sent, v.topic)
			continue
		}
		s.sent[v.topic] = v.payload
	}
	if failed > 0 {
		// One line per update, not one per topic.
		s.log.Warn("$SYS: values not published", "failed", failed, "err", firstErr)
	}
}

type sysValue struct {
	topic, payload string
	always         bool // published at every update
}

// values are the topics and payloads of st at now; it also advances the
// load averages.
func (s *Sys) values(st broker.Stats, now time.Time) []sysValue {
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	// Marked [contract]: Stats fields added by the broker's observability
	// work (BytesReceived, BytesSent, ConnectionsMax, SessionsExpired,
	// Queued, Inflight, RetainedBytes, Dropped); the rest predate it.
	stored := st.Retained + st.Queued + st.Inflight // [contract] Queued, Inflight
	vals := []sysValue{
		{"version", "tern " + s.version, false},
		{"uptime", strconv.FormatInt(int64(now.Sub(s.started)/time.Second), 10) + " seconds", true},
		{"clients/connected", n(st.Connections), false},
		// Offline sessions: only a session that outlives its connection
		// stays in Sessions without one.
		{"clients/disconnected", n(max(st.Sessions-st.Connections, 0)), false},
		{"clients/maximum", n(st.ConnectionsMax), false}, // [contract]
		{"clients/total", n(st.Sessions), false},
		{"clients/expired", n(st.SessionsExpired), false}, // [contract]
		{"messages/received", n(st.MessagesIn), false},
		{"messages/sent", n(st.MessagesOut), false},
		{"messages/stored", n(stored), false},
		{"publish/messages/received", n(st.MessagesIn), false},
		{"publish/messages/sent", n(st.MessagesOut), false},
		{"publish/messages/dropped", n(droppedTotal(st.Dropped)), false}, // [contract]
		{"bytes/received", n(st.BytesReceived), false},                   // [contract]
		{"bytes/sent", n(st.BytesSent), false},                           // [contract]
		{"subscriptions/count", n(st.Subscriptions), false},
		{"retained messages/count", n(st.Retained), false},
		{"store/messages/count", n(stored), false},
		{"store/messages/bytes", n(st.RetainedBytes + st.QueuedBytes), false}, // [contract]
	}
	if s.cluster != nil {
		vals = append(vals, sysValue{"cluster/nodes", ClusterNodeNames(s.cluster), false})
	}
	s.advanceLoads(st, now)
	for i, c := range loadCounters {
		for w, win := range loadWindows {
			vals = append(vals, sysValue{"load/" + c.topic + "/" + win.name, strconv.FormatFloat(s.loads[i][w], 'f', 2, 64), false})
		}
	}
	return vals
}

// advanceLoads moves the load averages to now, as Mosquitto's sys_tree
// does: the rate of a counter over the last interval, per minute, enters
// an exponentially decayed average over each window,
//
//	load = rate + e^(-elapsed/window) * (load - rate)
//
// so that a steady rate r makes every window converge on r, the 1-minute
// one fastest. The first update only takes the counters' starting values.
func (s *Sys) advanceLoads(st broker.Stats, now time.Time) {
	cur := make([]int64, len(loadCounters))
	for i, c := range loadCounters {
		cur[i] = c.value(st)
	}
	if !s.last.IsZero() {
		if elapsed := now.Sub(s.last).Seconds(); elapsed > 0 {
			for i := range loadCounters {
				rate := float64(cur[i]-s.prev[i]) * 60 / elapsed
				for w, win := range loadWindows {
					e := math.Exp(-elapsed / win.span)
					s.loads[i][w] = rate + e*(s.loads[i][w]-rate)
				}
			}
		}
	}
	s.prev, s.last = cur, now
}

// droppedTotal is what $SYS calls dropped: messages that were meant for a
// subscriber and never reached it. Deliveries withheld by the ACL, and
// retained messages delivered but not kept, are not counted.
func droppedTotal(d broker.DroppedCounts) int64 {
	return d.QueueFull + d.Slow + d.Expired + d.NoSharedMember + d.TooLarge + d.QueueRefused
}
