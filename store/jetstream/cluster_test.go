package jsstore_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
	jsstore "github.com/ternmq/tern/store/jetstream"
	"github.com/ternmq/tern/store/storetest"
)

// TestClusterStore runs the conformance suite on three servers with
// three replicas, with single writes and with every group batched; each
// reopen goes through another server.
func TestClusterStore(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server cluster")
	}
	ss := startServers(t, 3)
	js := []jetstream.JetStream{ss.connect(t, 0), ss.connect(t, 1), ss.connect(t, 2)}
	for _, batching := range []jsstore.Batching{jsstore.BatchAtomic, jsstore.BatchAll} {
		t.Run(fmt.Sprint("batching=", batching), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) storetest.Opener {
				b := bucket()
				n := 0
				return func(t *testing.T) store.Store {
					n++
					return mustOpen(t, js[n%3], jsstore.Options{Bucket: b, Replicas: 3, Batching: batching})
				}
			})
		})
	}
}

// leader returns the index of the server leading the bucket's stream.
func leader(t *testing.T, ss *servers, js jetstream.JetStream, b string) int {
	t.Helper()
	var i int
	waitFor(t, 30*time.Second, "the stream has a leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, "KV_"+b)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
			return false
		}
		i = ss.index(info.Cluster.Leader)
		return i >= 0
	})
	return i
}

// TestClusterNodeLoss: with three replicas, what Wait acknowledged
// survives the loss of the server leading the stream, which the writing
// store was connected to; the store goes on through another server
// (resending what was in flight), and a store opened elsewhere loads
// everything. With two of three servers gone, Wait fails within
// WriteTimeout and later writes are refused: no silent acceptance.
func TestClusterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server cluster")
	}
	ss := startServers(t, 3)
	b := bucket()
	o := jsstore.Options{Bucket: b, Replicas: 3, AttemptTimeout: time.Second, WriteTimeout: 30 * time.Second}
	first := mustOpen(t, ss.connect(t, 0), o)
	first.Close()
	lead := leader(t, ss, ss.connect(t, 0), b)
	st := mustOpen(t, ss.connect(t, lead), o)
	defer st.Close()

	m := &store.Message{Topic: "a/b", Payload: []byte("acknowledged"), QoS: 1}
	sub := store.Subscription{Subscription: packet.Subscription{Filter: "a/#", QoS: 2}}
	const sessions = 20
	var tk store.Ticket
	for i := range sessions {
		id := fmt.Sprintf("c%02d", i)
		st.PutSession(persistent(id))
		st.PutSubscription(id, sub)
		st.Atomic(func() {
			st.PutOutbound(id, store.Outbound{Seq: 1, QoS: 1, Message: m})
			tk = st.PutInboundQoS2(id, store.Inbound{PacketID: 9, Token: 3})
		})
	}
	mustWait(t, st, tk)

	// Writes in flight while the leader goes.
	for i := range sessions {
		tk = st.PutOutbound(fmt.Sprintf("c%02d", i), store.Outbound{Seq: 2, QoS: 1, Message: m})
	}
	ss.shutdown(lead)
	start := time.Now()
	mustWait(t, st, tk)
	// And after.
	mustWait(t, st, st.PutOutbound("c00", store.Outbound{Seq: 1, PacketID: 3, State: store.Sent, QoS: 1, Message: m}))
	t.Logf("writes went on %v after the leader's server stopped (%d resends)", time.Since(start).Round(time.Millisecond), st.Stats().Resends)

	other := (lead + 1) % 3
	re := mustOpen(t, ss.connect(t, other), o)
	defer re.Close()
	states := mustLoad(t, re)
	if len(states) != sessions {
		t.Fatalf("loaded %d sessions, want %d", len(states), sessions)
	}
	for _, s := range states {
		if len(s.Subscriptions) != 1 || s.Subscriptions[0] != sub || !reflect.DeepEqual(s.InboundQoS2, []store.Inbound{{PacketID: 9, Token: 3}}) ||
			len(s.Outbound) != 2 || !reflect.DeepEqual(s.Outbound[0].Message, m) || !reflect.DeepEqual(s.Outbound[1].Message, m) {
			t.Fatalf("%s: %+v", s.Session.ClientID, s)
		}
		if s.Session.ClientID == "c00" && (s.Outbound[0].State != store.Sent || s.Outbound[0].PacketID != 3) {
			t.Errorf("c00's state change is lost: %+v", s.Outbound[0])
		}
	}

	// A majority gone: refusals within the write timeout.
	st.Close()
	re.Close()
	o.WriteTimeout = 3 * time.Second
	last := mustOpen(t, ss.connect(t, other), o)
	defer last.Close()
	mustWait(t, last, last.PutSession(persistent("before")))
	ss.shutdown(3 - lead - other)
	start = time.Now()
	err := last.Wait(last.PutSession(persistent("after")))
	took := time.Since(start)
	if err == nil {
		t.Fatal("a write was acknowledged with two of three servers down")
	}
	if took > 10*time.Second {
		t.Errorf("the refusal took %v", took)
	}
	t.Logf("refused after %v: %v", took.Round(time.Millisecond), err)
	if last.Wait(last.PutSession(persistent("later"))) == nil {
		t.Error("a later write was acknowledged")
	}
}

// TestCloseWithoutQuorum: a store whose writes no quorum acknowledges
// any more (the other servers stopped first) stops after CloseTimeout,
// saying so, not after WriteTimeout.
func TestCloseWithoutQuorum(t *testing.T) {
	ss := startServers(t, 3)
	js := ss.connect(t, 0)
	st := mustOpen(t, js, jsstore.Options{Bucket: bucket(), Replicas: 3, WriteTimeout: time.Hour,
		CloseTimeout: time.Second, AttemptTimeout: 500 * time.Millisecond})
	mustWait(t, st, st.PutSession(persistent("before")))
	ss.shutdown(1)
	ss.shutdown(2)
	st.PutSession(persistent("after"))
	start := time.Now()
	err := st.Close()
	if err == nil {
		t.Fatal("Close reported no unacknowledged write")
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("Close took %v", d)
	}
}
