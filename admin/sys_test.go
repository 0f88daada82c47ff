package admin

import (
	"context"
	"errors"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
)

// fakeSource is a SysSource with settable Stats that records what is
// published.
type fakeSource struct {
	mu        sync.Mutex
	stats     broker.Stats
	published []*broker.Message
	fail      error
}

func (f *fakeSource) Stats() broker.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

func (f *fakeSource) Publish(m *broker.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.published = append(f.published, m)
	return nil
}

// take returns what was published since the last call, by topic.
func (f *fakeSource) take(t *testing.T) map[string]string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	got := make(map[string]string)
	for _, m := range f.published {
		if !m.Retain || m.QoS != 0 {
			t.Errorf("%s: retain %v QoS %d, want retained QoS 0", m.Topic, m.Retain, m.QoS)
		}
		if _, dup := got[m.Topic]; dup {
			t.Errorf("%s published twice in one update", m.Topic)
		}
		got[m.Topic] = string(m.Payload)
	}
	f.published = nil
	return got
}

func (f *fakeSource) set(fn func(*broker.Stats)) {
	f.mu.Lock()
	fn(&f.stats)
	f.mu.Unlock()
}

func TestSysFirstUpdatePublishesEverything(t *testing.T) {
	src := &fakeSource{stats: broker.Stats{
		Connections: 3, ConnectionsTotal: 10, ConnectionsMax: 7, Sessions: 5, SessionsExpired: 2,
		Subscriptions: 11, Retained: 4, RetainedBytes: 400, Queued: 6, Inflight: 1, QueuedBytes: 60,
		MessagesIn: 100, MessagesOut: 250, BytesReceived: 9000, BytesSent: 20000,
		Dropped: broker.DroppedCounts{QueueFull: 1, Slow: 2, Expired: 3, NoSharedMember: 4, TooLarge: 5, QueueRefused: 6,
			NotAuthorized: 100, RetainedFull: 100}, // not drops
	}}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewSys(src, "1.2.3", start, 10*time.Second, nil)
	s.update(start.Add(90*time.Second + 400*time.Millisecond))
	want := map[string]string{
		"$SYS/broker/version":                   "tern 1.2.3",
		"$SYS/broker/uptime":                    "90 seconds",
		"$SYS/broker/clients/connected":         "3",
		"$SYS/broker/clients/disconnected":      "2",
		"$SYS/broker/clients/maximum":           "7",
		"$SYS/broker/clients/total":             "5",
		"$SYS/broker/clients/expired":           "2",
		"$SYS/broker/messages/received":         "100",
		"$SYS/broker/messages/sent":             "250",
		"$SYS/broker/messages/stored":           "11",
		"$SYS/broker/publish/messages/received": "100",
		"$SYS/broker/publish/messages/sent":     "250",
		"$SYS/broker/publish/messages/dropped":  "21",
		"$SYS/broker/bytes/received":            "9000",
		"$SYS/broker/bytes/sent":                "20000",
		"$SYS/broker/subscriptions/count":       "11",
		"$SYS/broker/retained messages/count":   "4",
		"$SYS/broker/store/messages/count":      "11",
		"$SYS/broker/store/messages/bytes":      "460",
	}
	for _, c := range []string{"messages/received", "messages/sent", "publish/received", "publish/sent",
		"bytes/received", "bytes/sent", "connections"} {
		for _, w := range []string{"1min", "5min", "15min"} {
			want["$SYS/broker/load/"+c+"/"+w] = "0.00" // no interval yet
		}
	}
	got := src.take(t)
	if !maps.Equal(got, want) {
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if got[k] != want[k] {
				t.Errorf("%s = %q, want %q", k, got[k], want[k])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected topic %s = %q", k, got[k])
			}
		}
	}
	if len(want) != SysTopics {
		t.Errorf("%d topics, SysTopics says %d", len(want), SysTopics)
	}
}

func TestSysPublishesOnlyChanges(t *testing.T) {
	src := &fakeSource{stats: broker.Stats{Connections: 1, Sessions: 1, Subscriptions: 2}}
	start := time.Now()
	s := NewSys(src, "dev", start, 10*time.Second, nil)
	s.update(start)
	if n := len(src.take(t)); n != SysTopics {
		t.Fatalf("first update published %d topics, want all %d", n, SysTopics)
	}
	// Nothing moved: only the uptime.
	s.update(start.Add(10 * time.Second))
	if got := src.take(t); !maps.Equal(got, map[string]string{"$SYS/broker/uptime": "10 seconds"}) {
		t.Fatalf("unchanged stats published %v", got)
	}
	// One new subscription: its count; no message moved, so no load.
	src.set(func(s *broker.Stats) { s.Subscriptions = 3 })
	s.update(start.Add(20 * time.Second))
	if got := src.take(t); !maps.Equal(got, map[string]string{"$SYS/broker/uptime": "20 seconds",
		"$SYS/broker/subscriptions/count": "3"}) {
		t.Fatalf("one change published %v", got)
	}
	// A failed publication is tried again at the next update.
	src.set(func(s *broker.Stats) { s.Connections, s.Sessions = 2, 2 })
	src.fail = errors.New("store down")
	s.update(start.Add(30 * time.Second))
	src.fail = nil
	src.take(t)
	s.update(start.Add(40 * time.Second))
	if got := src.take(t); !maps.Equal(got, map[string]string{"$SYS/broker/uptime": "40 seconds",
		"$SYS/broker/clients/connected": "2", "$SYS/broker/clients/total": "2"}) {
		t.Fatalf("after a failed update published %v", got)
	}
}

// TestSysLoadAverages: the load topics follow Mosquitto's
// load = rate + e^(-elapsed/window) * (load - rate), rate per minute.
func TestSysLoadAverages(t *testing.T) {
	src := &fakeSource{}
	start := time.Now()
	s := NewSys(src, "dev", start, 10*time.Second, nil)
	s.update(start)
	src.take(t)
	// 100 PUBLISH in 10 s: 600 a minute.
	src.set(func(s *broker.Stats) { s.MessagesIn, s.ConnectionsTotal = 100, 1 })
	s.update(start.Add(10 * time.Second))
	got := src.take(t)
	for _, tc := range []struct {
		topic string
		want  string
	}{
		{"load/messages/received/1min", "92.11"}, // 600 * (1 - e^(-10/60))
		{"load/messages/received/5min", "19.67"}, // 600 * (1 - e^(-10/300))
		{"load/messages/received/15min", "6.63"}, // 600 * (1 - e^(-10/900))
		{"load/publish/received/1min", "92.11"},
		{"load/connections/1min", "0.92"}, // 6 a minute
		{"load/connections/15min", "0.07"},
	} {
		if got[SysPrefix+tc.topic] != tc.want {
			t.Errorf("%s = %q, want %q", tc.topic, got[SysPrefix+tc.topic], tc.want)
		}
	}
	if _, ok := got[SysPrefix+"load/messages/sent/1min"]; ok {
		t.Error("an idle counter's load was published again")
	}
	// A steady rate: every window converges on it, the 1-minute one first.
	load := func(w string) float64 {
		f, _ := strconv.ParseFloat(s.sent["load/messages/received/"+w], 64)
		return f
	}
	for i := 2; i <= 360; i++ { // an hour at 600 a minute
		src.set(func(s *broker.Stats) { s.MessagesIn = int64(100 * i) })
		s.update(start.Add(time.Duration(i) * 10 * time.Second))
		if i == 30 && !(load("1min") > load("5min") && load("5min") > load("15min")) {
			t.Errorf("after 5 minutes: 1min %v, 5min %v, 15min %v: want decreasing", load("1min"), load("5min"), load("15min"))
		}
	}
	for w, span := range map[string]float64{"1min": 60, "5min": 300, "15min": 900} {
		// From 0, a steady rate r gives r * (1 - e^(-t/window)).
		if l, want := load(w), 600*(1-math.Exp(-3600/span)); math.Abs(l-want) > 0.01 {
			t.Errorf("%s load after an hour at 600/min: %v, want %.2f", w, l, want)
		}
	}
	// Then silence: the averages decay.
	before := load("1min")
	s.update(start.Add(3610 * time.Second))
	if after := load("1min"); !(after < before) {
		t.Errorf("1min load %v after an idle interval, was %v", after, before)
	}
}

func TestSysRunStopsWithContext(t *testing.T) {
	src := &fakeSource{}
	s := NewSys(src, "dev", time.Now(), 10*time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		src.mu.Lock()
		n := len(src.published)
		src.mu.Unlock()
		if n > SysTopics { // the first update and at least one more
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages published in 5 s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
