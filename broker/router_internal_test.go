package broker

import (
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

// raceEnabled reports whether the test binary runs under the race
// detector, which makes sync.Pool drop items and so allocation counts
// meaningless.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestRouterScratchShrinks: a router (one per connection) does not keep
// the scratch of one large fan-out, which would pin it to the publishing
// connection, but keeps the scratch of ordinary ones, so that routing
// allocates nothing in steady state.
func TestRouterScratchShrinks(t *testing.T) {
	br, err := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	subscribe := func(filter string, n int) {
		for i := range n {
			c := newConn(br, discardConn{})
			c.version = packet.V311
			c.client = &auth.Client{ClientID: fmt.Sprint(filter, "-", i)}
			if err := br.attach(c, c.client.ClientID, true, 0, br.opts().MaxInflight, &packet.Connack{}, false); err != nil {
				t.Fatal(err)
			}
			sub := store.Subscription{Subscription: packet.Subscription{Filter: filter}}
			c.sess.subs.put(sub)
			br.subs.Add(filter, c.sess, optsOf(sub))
		}
	}
	subscribe("f/t", 5000)
	subscribe("g/t", 10)

	for _, tc := range []struct {
		topic   string
		targets int
		keep    bool // the scratch survives the message
	}{
		{"f/t", 5000, false},
		{"g/t", 10, true},
	} {
		t.Run(fmt.Sprint(tc.targets, " targets"), func(t *testing.T) {
			m := &Message{Topic: tc.topic, Payload: []byte("x")}
			var r router
			r.route(br, m, "")
			if cap(r.targets) > maxKeptTargets || len(r.idx) > maxKeptTargets {
				t.Fatalf("after routing to %d: cap(targets) %d, len(idx) %d, want at most %d",
					tc.targets, cap(r.targets), len(r.idx), maxKeptTargets)
			}
			if !tc.keep {
				return
			}
			if cap(r.targets) < tc.targets {
				t.Fatalf("cap(targets) %d after routing to %d: the scratch was dropped", cap(r.targets), tc.targets)
			}
			kept := &r.targets[:1][0]
			for range 100 {
				r.route(br, m, "")
			}
			if &r.targets[:1][0] != kept {
				t.Fatal("the scratch was reallocated")
			}
			if raceEnabled() {
				t.Log("race detector on: allocation count not checked")
				return
			}
			if n := testing.AllocsPerRun(100, func() { r.route(br, m, "") }); n != 0 {
				t.Fatalf("%v allocations per message routed to %d", n, tc.targets)
			}
		})
	}
}
