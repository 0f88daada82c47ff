package jsstore_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
	jsstore "github.com/ternmq/tern/store/jetstream"
	"github.com/ternmq/tern/store/storetest"
)

// TestStore runs the conformance suite against one server (replicas 1).
func TestStore(t *testing.T) {
	ss := startServers(t, 1)
	js := ss.connect(t, 0)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		b := bucket()
		return func(t *testing.T) store.Store { return mustOpen(t, js, jsstore.Options{Bucket: b}) }
	})
}

func mustWait(t testing.TB, st store.Store, tk store.Ticket) {
	t.Helper()
	if err := st.Wait(tk); err != nil {
		t.Fatalf("wait: %v", err)
	}
}

func mustLoad(t testing.TB, st *jsstore.Store) []store.SessionState {
	t.Helper()
	states, _, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	return states
}

func persistent(id string) store.Session {
	return store.Session{ClientID: id, Version: 5, ExpiryInterval: 0xFFFFFFFF}
}

// TestMessageStoredOnce: one message put for many sessions is written
// once; a state change rewrites only the small record; the message goes
// when the last reference does.
func TestMessageStoredOnce(t *testing.T) {
	ss := startServers(t, 1)
	js := ss.connect(t, 0)
	b := bucket()
	st := mustOpen(t, js, jsstore.Options{Bucket: b})
	m := &store.Message{Topic: "fan/out", Payload: make([]byte, 4096), QoS: 1}
	ids := []string{"a", "b", "c", "d"}
	for _, id := range ids {
		st.PutSession(persistent(id))
	}
	var tk store.Ticket
	for _, id := range ids {
		tk = st.PutOutbound(id, store.Outbound{Seq: 1, QoS: 1, Message: m})
	}
	mustWait(t, st, tk)
	if n := st.Stats().Messages; n != 1 {
		t.Errorf("messages written: %d, want 1", n)
	}
	if n := count(keys(t, js, b), "m."); n != 1 {
		t.Errorf("message keys: %d, want 1", n)
	}

	before := st.Stats().Bytes
	mustWait(t, st, st.PutOutbound("a", store.Outbound{Seq: 1, PacketID: 7, State: store.Sent, QoS: 1, Message: m}))
	if d := st.Stats().Bytes - before; d > 200 {
		t.Errorf("a state change published %d bytes: more than the small record", d)
	}

	// References go one by one; the message stays until the last.
	mustWait(t, st, st.DeleteOutbound("a", 1))
	mustWait(t, st, st.DeleteSession("b"))
	// QoS 2 released: the record no longer names the message.
	mustWait(t, st, st.PutOutbound("c", store.Outbound{Seq: 1, PacketID: 8, State: store.Released, QoS: 2}))
	if n := count(keys(t, js, b), "m."); n != 1 {
		t.Errorf("message keys with one reference left: %d, want 1", n)
	}
	mustWait(t, st, st.DeleteOutbound("d", 1))
	mustWait(t, st, st.PutSession(persistent("e"))) // the deletion follows the group
	waitFor(t, 5*time.Second, "the message is deleted", func() bool { return count(keys(t, js, b), "m.") == 0 })

	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = mustOpen(t, js, jsstore.Options{Bucket: b})
	defer st.Close()
	states := mustLoad(t, st)
	got := map[string]store.SessionState{}
	for _, s := range states {
		got[s.Session.ClientID] = s
	}
	if len(states) != 4 || got["b"].Session.ClientID != "" {
		t.Fatalf("sessions: %+v", states)
	}
	if o := got["c"].Outbound; len(o) != 1 || o[0].State != store.Released || o[0].Message != nil {
		t.Errorf("c: %+v", o)
	}
	if len(got["a"].Outbound) != 0 || len(got["d"].Outbound) != 0 {
		t.Errorf("a, d: %+v %+v", got["a"].Outbound, got["d"].Outbound)
	}
}

// TestLoadSharesMessages: sessions loaded together share one *Message
// per stored message, and the store keeps counting their references.
func TestLoadSharesMessages(t *testing.T) {
	ss := startServers(t, 1)
	js := ss.connect(t, 0)
	b := bucket()
	st := mustOpen(t, js, jsstore.Options{Bucket: b})
	m := &store.Message{Topic: "t", Payload: []byte("x"), QoS: 1}
	for _, id := range []string{"a", "b"} {
		st.PutSession(persistent(id))
		st.PutOutbound(id, store.Outbound{Seq: 1, QoS: 1, Message: m})
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = mustOpen(t, js, jsstore.Options{Bucket: b})
	defer st.Close()
	states := mustLoad(t, st)
	if len(states) != 2 || states[0].Outbound[0].Message != states[1].Outbound[0].Message {
		t.Fatalf("loaded: %+v", states)
	}
	if !reflect.DeepEqual(states[0].Outbound[0].Message, m) {
		t.Errorf("message: %+v", states[0].Outbound[0].Message)
	}
	// Putting the loaded message again for another session writes no copy.
	before := st.Stats().Messages
	st.PutSession(persistent("c"))
	mustWait(t, st, st.PutOutbound("c", store.Outbound{Seq: 1, QoS: 1, Message: states[0].Outbound[0].Message}))
	if st.Stats().Messages != before {
		t.Error("a loaded message was written again")
	}
	for _, id := range []string{"a", "b", "c"} {
		st.DeleteOutbound(id, 1)
	}
	mustWait(t, st, st.PutSession(persistent("d")))
	waitFor(t, 5*time.Second, "the message is deleted", func() bool { return count(keys(t, js, b), "m.") == 0 })
}

// TestAtomicMoveKeepsMessage: taking a message from one session and
// giving it to another in one Atomic never deletes it.
func TestAtomicMoveKeepsMessage(t *testing.T) {
	ss := startServers(t, 1)
	js := ss.connect(t, 0)
	b := bucket()
	st := mustOpen(t, js, jsstore.Options{Bucket: b})
	defer st.Close()
	m := &store.Message{Topic: "share", Payload: []byte("x"), QoS: 1}
	st.PutSession(persistent("a"))
	st.PutSession(persistent("b"))
	mustWait(t, st, st.PutOutbound("a", store.Outbound{Seq: 1, QoS: 1, Message: m}))
	batches := st.Stats().Batches
	var tk store.Ticket
	st.Atomic(func() {
		st.DeleteOutbound("a", 1)
		tk = st.PutOutbound("b", store.Outbound{Seq: 9, QoS: 1, Message: m, SharedGroup: "g", SharedFilter: "share"})
	})
	mustWait(t, st, tk)
	mustWait(t, st, st.PutSession(persistent("c")))
	if st.Stats().Batches != batches+1 {
		t.Errorf("atomic batches: %d, want %d", st.Stats().Batches, batches+1)
	}
	ks := keys(t, js, b)
	if count(ks, "m.") != 1 {
		t.Errorf("keys after the move: %v", ks)
	}
	if st.Stats().Messages != 1 {
		t.Errorf("messages written: %d", st.Stats().Messages)
	}
}

// TestAtomicLargerThanBatch: a group larger than a batch may be still
// lands, in parts.
func TestAtomicLargerThanBatch(t *testing.T) {
	ss := startServers(t, 1)
	js := ss.connect(t, 0)
	b := bucket()
	st := mustOpen(t, js, jsstore.Options{Bucket: b, MaxBatch: 10})
	m := &store.Message{Topic: "t", QoS: 2}
	var tk store.Ticket
	st.Atomic(func() {
		for i := range 25 {
			id := string(rune('a' + i))
			st.PutSession(persistent(id))
			tk = st.PutOutbound(id, store.Outbound{Seq: 1, QoS: 2, Message: m})
		}
	})
	mustWait(t, st, tk)
	if n := st.Stats().Batches; n != 6 { // 51 writes: five batches of 10, and one of 1
		t.Errorf("batches: %d, want 6", n)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = mustOpen(t, js, jsstore.Options{Bucket: b})
	defer st.Close()
	if states := mustLoad(t, st); len(states) != 25 {
		t.Errorf("sessions: %d", len(states))
	}
}

// TestNoRetained: with NoRetained the store neither writes nor loads
// retained messages.
func TestNoRetained(t *testing.T) {
	ss := startServers(t, 1)
	js := ss.connect(t, 0)
	b := bucket()
	st := mustOpen(t, js, jsstore.Options{Bucket: b})
	mustWait(t, st, st.PutRetained(&store.Message{Topic: "kept", Payload: []byte("1"), Retain: true}))
	st.Close()

	st = mustOpen(t, js, jsstore.Options{Bucket: b, NoRetained: true})
	st.PutRetained(&store.Message{Topic: "r/1", Payload: []byte("1"), Retain: true})
	st.DeleteRetained("kept")
	mustWait(t, st, st.PutSession(persistent("a")))
	if _, retained, err := st.Load(); err != nil || len(retained) != 0 {
		t.Errorf("load: %v, %v", retained, err)
	}
	st.Close()
	if ks := keys(t, js, b); count(ks, "r.") != 1 {
		t.Errorf("retained keys: %v (want only the one written before)", ks)
	}

	st = mustOpen(t, js, jsstore.Options{Bucket: b})
	defer st.Close()
	if _, retained, err := st.Load(); err != nil || len(retained) != 1 || retained[0].Topic != "kept" {
		t.Errorf("load with retained: %v, %v", retained, err)
	}
}

// TestLoadSession: another store takes a session over with LoadSession
// and goes on writing it; the first one releases it.
func TestLoadSession(t *testing.T) {
	ss := startServers(t, 1)
	b := bucket()
	js1, js2 := ss.connect(t, 0), ss.connect(t, 0)
	a := mustOpen(t, js1, jsstore.Options{Bucket: b, Node: "n1"})
	defer a.Close()
	m := &store.Message{Topic: "t", Payload: []byte("p"), QoS: 1}
	sess := persistent("taken")
	sess.Username, sess.UsernameFlag = "alice", true
	sub := store.Subscription{Subscription: packet.Subscription{Filter: "t/#", QoS: 1}}
	a.PutSession(sess)
	a.PutSubscription("taken", sub)
	a.PutOutbound("taken", store.Outbound{Seq: 1, QoS: 1, Message: m})
	a.PutOutbound("taken", store.Outbound{Seq: 2, PacketID: 5, State: store.Sent, QoS: 1, Message: m})
	a.PutSession(persistent("stays"))
	a.PutOutbound("stays", store.Outbound{Seq: 1, QoS: 1, Message: m})
	mustWait(t, a, a.PutInboundQoS2("taken", store.Inbound{PacketID: 3}))

	bst := mustOpen(t, js2, jsstore.Options{Bucket: b, Node: "n2"})
	defer bst.Close()
	if got, err := bst.LoadSession("nobody"); got != nil || err != nil {
		t.Errorf("missing session: %+v, %v", got, err)
	}
	got, err := bst.LoadSession("taken")
	if err != nil || got == nil {
		t.Fatalf("load session: %v", err)
	}
	a.Release("taken")
	if !reflect.DeepEqual(got.Session, sess) || len(got.Subscriptions) != 1 || got.Subscriptions[0] != sub ||
		len(got.Outbound) != 2 || !reflect.DeepEqual(got.Outbound[1].Message, m) || got.Outbound[1].PacketID != 5 ||
		!reflect.DeepEqual(got.InboundQoS2, []store.Inbound{{PacketID: 3}}) {
		t.Fatalf("loaded: %+v", got)
	}
	// The new owner writes under the same generation.
	bst.DeleteOutbound("taken", 1)
	mustWait(t, bst, bst.PutOutbound("taken", store.Outbound{Seq: 2, PacketID: 5, State: store.Sent, QoS: 1, Message: got.Outbound[1].Message}))
	if bst.Stats().Messages != 0 {
		t.Error("the new owner wrote the message again")
	}
	// The old owner's reference counting no longer covers the session:
	// its last other reference going must not delete the message.
	mustWait(t, a, a.DeleteOutbound("stays", 1))
	mustWait(t, a, a.PutSession(persistent("x")))
	c := mustOpen(t, ss.connect(t, 0), jsstore.Options{Bucket: b, Node: "n3"})
	defer c.Close()
	states := mustLoad(t, c)
	for _, s := range states {
		if s.Session.ClientID == "taken" {
			if len(s.Outbound) != 1 || s.Outbound[0].Seq != 2 || !reflect.DeepEqual(s.Outbound[0].Message, m) {
				t.Errorf("taken, as loaded elsewhere: %+v", s.Outbound)
			}
			return
		}
	}
	t.Errorf("taken is gone: %+v", states)
}

// TestSweep: Load (and Sweep) delete messages an earlier run of this
// node left unreferenced, and, once old, whatever nothing refers to.
func TestSweep(t *testing.T) {
	defer jsstore.SetSweepGrace(0)()
	ss := startServers(t, 1)
	js := ss.connect(t, 0)
	b := bucket()
	st := mustOpen(t, js, jsstore.Options{Bucket: b, Node: "n1"})
	m := &store.Message{Topic: "t", QoS: 1}
	st.PutSession(persistent("a"))
	mustWait(t, st, st.PutOutbound("a", store.Outbound{Seq: 1, QoS: 1, Message: m}))
	st.Close()
	kv, err := js.KeyValue(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	// What a crash leaves: messages nothing names (written by an earlier
	// run of n1, and by another node), records of a generation no session
	// names.
	for _, k := range []string{"m.n1.earlier.1", "m.n9.other.1", "p.Yg.oldgen.q.1", "p.Yg.oldgen.q.2"} {
		if _, err := kv.Put(t.Context(), k, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	st = mustOpen(t, js, jsstore.Options{Bucket: b, Node: "n1"})
	if len(mustLoad(t, st)) != 1 {
		t.Fatal("session a is not loaded")
	}
	st.Close()
	ks := keys(t, js, b)
	if count(ks, "m.n1.earlier") != 0 || count(ks, "m.n9.other") != 1 || count(ks, "p.Yg.oldgen") != 2 || count(ks, "m.") != 2 {
		t.Errorf("after a load: %v", ks)
	}
	// Once old enough, whatever wrote them: a periodic Sweep.
	time.Sleep(20 * time.Millisecond)
	st = mustOpen(t, js, jsstore.Options{Bucket: b, Node: "n2", SweepAfter: 10 * time.Millisecond})
	defer st.Close()
	if err := st.Sweep(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "old generations are purged", func() bool {
		ks := keys(t, js, b)
		return count(ks, "m.n9.other") == 0 && count(ks, "p.Yg.oldgen") == 0 && count(ks, "m.") == 1
	})
	states := mustLoad(t, st)
	if len(states) != 1 || len(states[0].Outbound) != 1 || !reflect.DeepEqual(states[0].Outbound[0].Message, m) {
		t.Fatalf("loaded: %+v", states)
	}
}

// TestServerRestart: writes on their way while the (only) server
// restarts are sent again, in order, once it is back: none is lost, and
// the last write of a key wins.
func TestServerRestart(t *testing.T) {
	ss := startServers(t, 1)
	js := ss.connect(t, 0)
	b := bucket()
	st := mustOpen(t, js, jsstore.Options{Bucket: b, AttemptTimeout: 500 * time.Millisecond})
	st.PutSession(persistent("a"))
	m := &store.Message{Topic: "t", Payload: []byte("x"), QoS: 2}
	var tk store.Ticket
	for i := range 500 {
		st.PutOutbound("a", store.Outbound{Seq: uint64(i), QoS: 2, Message: m})
		st.PutOutbound("a", store.Outbound{Seq: uint64(i), PacketID: 1, State: store.Sent, QoS: 2, Message: m})
		tk = st.PutOutbound("a", store.Outbound{Seq: uint64(i), PacketID: 2, State: store.Released, QoS: 2})
	}
	ss.shutdown(0)
	time.Sleep(300 * time.Millisecond)
	ss.start(t, 0)
	mustWait(t, st, tk)
	t.Logf("resends: %d", st.Stats().Resends)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = mustOpen(t, js, jsstore.Options{Bucket: b})
	defer st.Close()
	states := mustLoad(t, st)
	if len(states) != 1 || len(states[0].Outbound) != 500 {
		t.Fatalf("loaded: %d sessions", len(states))
	}
	for i, o := range states[0].Outbound {
		if o.Seq != uint64(i) || o.State != store.Released || o.PacketID != 2 || o.Message != nil {
			t.Fatalf("outbound %d: %+v", i, o)
		}
	}
	waitFor(t, 5*time.Second, "the message is deleted", func() bool { return count(keys(t, js, b), "m.") == 0 })
}

// TestTooLarge: a record larger than the server takes fails the store
// with a clear error; MaxValueSize says the bound beforehand.
func TestTooLarge(t *testing.T) {
	ss := startServers(t, 1, func(o *server.Options) { o.MaxPayload = 64 << 10 })
	st := mustOpen(t, ss.connect(t, 0), jsstore.Options{Bucket: bucket()})
	defer st.Close()
	if n := st.MaxValueSize(); n <= 0 || n >= 64<<10 {
		t.Fatalf("MaxValueSize: %d", n)
	}
	mustWait(t, st, st.PutOutbound("a", store.Outbound{Seq: 1, QoS: 1, Message: &store.Message{Topic: "t", Payload: make([]byte, st.MaxValueSize()-100)}}))
	err := st.Wait(st.PutOutbound("a", store.Outbound{Seq: 2, QoS: 1, Message: &store.Message{Topic: "t", Payload: make([]byte, 64<<10)}}))
	if err == nil || !strings.Contains(err.Error(), "max_payload") {
		t.Errorf("oversized write: %v", err)
	}
}

// TestRefusedAfterClose: writes after Close are refused.
func TestRefusedAfterClose(t *testing.T) {
	ss := startServers(t, 1)
	st := mustOpen(t, ss.connect(t, 0), jsstore.Options{Bucket: bucket()})
	st.Close()
	if err := st.Wait(st.PutSession(persistent("a"))); err == nil {
		t.Error("a write after Close was acknowledged")
	}
}

// TestNames: client ids, filters and topics of any shape round-trip:
// empty, dotted, wildcards, non-ASCII, longer than a key token may be.
func TestNames(t *testing.T) {
	ss := startServers(t, 1)
	js := ss.connect(t, 0)
	b := bucket()
	st := mustOpen(t, js, jsstore.Options{Bucket: b})
	long := strings.Repeat("long/", 1000)
	ids := []string{"", "a.b", "*", ">", "ü ñ", long}
	filters := []string{"a/+/#", "#", "$share/g/x", "a.b c", long + "#"}
	for _, id := range ids {
		st.PutSession(persistent(id))
		for _, f := range filters {
			st.PutSubscription(id, store.Subscription{Subscription: packet.Subscription{Filter: f}})
		}
		st.PutOutbound(id, store.Outbound{Seq: 1, QoS: 1, Message: &store.Message{Topic: long, Payload: []byte(id)}})
	}
	mustWait(t, st, st.PutRetained(&store.Message{Topic: long, Payload: []byte("r"), Retain: true}))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = mustOpen(t, js, jsstore.Options{Bucket: b})
	defer st.Close()
	states, retained, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(retained) != 1 || retained[0].Topic != long {
		t.Errorf("retained: %d", len(retained))
	}
	if len(states) != len(ids) {
		t.Fatalf("sessions: %d, want %d", len(states), len(ids))
	}
	for _, s := range states {
		if len(s.Subscriptions) != len(filters) || len(s.Outbound) != 1 || string(s.Outbound[0].Message.Payload) != s.Session.ClientID {
			t.Errorf("%q: %d subscriptions, %+v", s.Session.ClientID, len(s.Subscriptions), s.Outbound)
		}
	}
	// Taken over by name, too.
	for _, id := range ids {
		if got, err := st.LoadSession(id); err != nil || got == nil || got.Session.ClientID != id {
			t.Errorf("LoadSession(%.20q): %v, %v", id, got, err)
		}
	}
}

// TestDeletesLeaveNothing: a delete's marker expires, so written and
// deleted keys cost nothing once MarkerTTL has passed.
func TestDeletesLeaveNothing(t *testing.T) {
	ss := startServers(t, 1)
	js := ss.connect(t, 0)
	b := bucket()
	st := mustOpen(t, js, jsstore.Options{Bucket: b, MarkerTTL: time.Second})
	defer st.Close()
	st.PutSession(persistent("a"))
	for i := range 100 {
		st.PutOutbound("a", store.Outbound{Seq: uint64(i), QoS: 1, Message: &store.Message{Topic: "t"}})
		st.PutInboundQoS2("a", store.Inbound{PacketID: uint16(i)})
	}
	for i := range 100 {
		st.DeleteOutbound("a", uint64(i))
		st.DeleteInboundQoS2("a", uint16(i))
	}
	mustWait(t, st, st.PutSession(persistent("a")))
	waitFor(t, 10*time.Second, "only the session is left in the stream", func() bool {
		s, err := js.Stream(t.Context(), "KV_"+b)
		if err != nil {
			return false
		}
		info, err := s.Info(t.Context())
		return err == nil && info.State.Msgs == 1
	})
}
