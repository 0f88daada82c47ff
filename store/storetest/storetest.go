// Package storetest checks that a store.Store keeps what the broker
// relies on; every implementation runs it.
package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

// Opener opens the store under test. Called again after Close, it must
// return a store with the same contents (a reopened database, or the same
// memory).
type Opener func(t *testing.T) store.Store

// Run runs every check; newOpener gives each test a fresh, empty store.
func Run(t *testing.T, newOpener func(t *testing.T) Opener) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newOpener(t)) })
	t.Run("Deletes", func(t *testing.T) { testDeletes(t, newOpener(t)) })
	t.Run("LaterWriteWins", func(t *testing.T) { testLaterWriteWins(t, newOpener(t)) })
	t.Run("ConcurrentWriters", func(t *testing.T) { testConcurrent(t, newOpener(t)) })
	t.Run("FanOut", func(t *testing.T) { testFanOut(t, newOpener(t)) })
}

func u8(v byte) *byte { return &v }

// at drops the monotonic reading so reloaded times compare equal.
func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.Round(0)
}

func fullMessage(topic string) *store.Message {
	return &store.Message{
		Topic: topic, Payload: []byte("payload"), QoS: 2, Retain: true,
		Expiry: at("2030-01-02T03:04:05.123456789Z"),
		Properties: packet.Properties{
			PayloadFormat: u8(1), ContentType: "text/plain", ResponseTopic: "reply/here",
			CorrelationData: []byte{0, 1, 2},
			User:            []packet.UserProperty{{Key: "k", Value: "v"}, {Key: "k", Value: "w"}},
		},
	}
}

func reopen(t *testing.T, open Opener, st store.Store) store.Store {
	t.Helper()
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return open(t)
}

func load(t *testing.T, st store.Store) ([]store.SessionState, map[string]*store.Message) {
	t.Helper()
	states, retained, err := st.Load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	byTopic := make(map[string]*store.Message)
	for _, m := range retained {
		byTopic[m.Topic] = m
	}
	return states, byTopic
}

func mustWait(t *testing.T, st store.Store, tk store.Ticket) {
	t.Helper()
	if err := st.Wait(tk); err != nil {
		t.Fatalf("wait: %v", err)
	}
}

func testRoundTrip(t *testing.T, open Opener) {
	st := open(t)
	will := fullMessage("will/topic")
	sess := store.Session{ClientID: "c1", Username: "alice", UsernameFlag: true, CertUsername: true, Version: 5, ExpiryInterval: 3600,
		Expiry: at("2031-05-06T07:08:09Z"), Will: will, WillAt: at("2031-05-06T07:08:10Z")}
	sub := store.Subscription{Subscription: packet.Subscription{Filter: "a/+/#", QoS: 2, NoLocal: true,
		RetainAsPublished: true, RetainHandling: 1}, SubscriptionID: 77}
	outs := []store.Outbound{
		{Seq: 1, PacketID: 10, State: store.Sent, QoS: 1, Message: fullMessage("a/b")},
		{Seq: 2, PacketID: 11, State: store.Released, QoS: 2},
		{Seq: 300, State: store.Queued, QoS: 2, Retain: true, SubIDs: []uint32{1, 268435455},
			SharedGroup: "g", SharedFilter: "a/#", Message: &store.Message{Topic: "a/c", QoS: 1}},
	}
	st.PutSession(sess)
	st.PutSubscription("c1", sub)
	for _, o := range []int{2, 0, 1} { // submission order must not matter
		st.PutOutbound("c1", outs[o])
	}
	st.PutInboundQoS2("c1", store.Inbound{PacketID: 65535, Token: 1<<64 - 1})
	st.PutInboundQoS2("c1", store.Inbound{PacketID: 1}) // loaded in packet id order
	st.PutSession(store.Session{ClientID: "c2", Version: 4, ExpiryInterval: 0xFFFFFFFF})
	mustWait(t, st, st.PutRetained(fullMessage("r/1")))

	st = reopen(t, open, st)
	defer st.Close()
	states, retained := load(t, st)
	if len(states) != 2 {
		t.Fatalf("loaded %d sessions, want 2", len(states))
	}
	var c1 store.SessionState
	for _, s := range states {
		if s.Session.ClientID == "c1" {
			c1 = s
		}
	}
	if !reflect.DeepEqual(c1.Session, sess) {
		t.Errorf("session:\n got %+v\nwant %+v", c1.Session, sess)
	}
	if len(c1.Subscriptions) != 1 || !reflect.DeepEqual(c1.Subscriptions[0], sub) {
		t.Errorf("subscriptions: got %+v", c1.Subscriptions)
	}
	if !reflect.DeepEqual(c1.Outbound, outs) {
		t.Errorf("outbound:\n got %+v\nwant %+v", c1.Outbound, outs)
	}
	if !reflect.DeepEqual(c1.InboundQoS2, []store.Inbound{{PacketID: 1}, {PacketID: 65535, Token: 1<<64 - 1}}) {
		t.Errorf("inbound QoS 2: got %v", c1.InboundQoS2)
	}
	if m := retained["r/1"]; len(retained) != 1 || !reflect.DeepEqual(m, fullMessage("r/1")) {
		t.Errorf("retained: got %+v", retained)
	}
}

func testDeletes(t *testing.T, open Opener) {
	st := open(t)
	for _, id := range []string{"a", "ab"} { // "ab" shares a prefix with "a"
		st.PutSession(store.Session{ClientID: id, Version: 4, ExpiryInterval: 0xFFFFFFFF})
		st.PutSubscription(id, store.Subscription{Subscription: packet.Subscription{Filter: "x"}})
		st.PutSubscription(id, store.Subscription{Subscription: packet.Subscription{Filter: "y"}})
		st.PutOutbound(id, store.Outbound{Seq: 1, QoS: 1, Message: &store.Message{Topic: "x"}})
		st.PutOutbound(id, store.Outbound{Seq: 2, QoS: 1, Message: &store.Message{Topic: "x"}})
		st.PutInboundQoS2(id, store.Inbound{PacketID: 2, Token: 7})
		st.PutInboundQoS2(id, store.Inbound{PacketID: 1})
	}
	st.PutRetained(&store.Message{Topic: "r", Payload: []byte("1")})
	st.DeleteSession("a")
	st.DeleteSubscription("ab", "x")
	st.DeleteOutbound("ab", 1)
	st.DeleteInboundQoS2("ab", 1)
	mustWait(t, st, st.DeleteRetained("r"))

	st = reopen(t, open, st)
	defer st.Close()
	states, retained := load(t, st)
	if len(retained) != 0 {
		t.Errorf("retained after delete: %v", retained)
	}
	if len(states) != 1 || states[0].Session.ClientID != "ab" {
		t.Fatalf("sessions: got %+v, want only ab", states)
	}
	ab := states[0]
	if len(ab.Subscriptions) != 1 || ab.Subscriptions[0].Filter != "y" {
		t.Errorf("subscriptions: %+v", ab.Subscriptions)
	}
	if len(ab.Outbound) != 1 || ab.Outbound[0].Seq != 2 {
		t.Errorf("outbound: %+v", ab.Outbound)
	}
	if !reflect.DeepEqual(ab.InboundQoS2, []store.Inbound{{PacketID: 2, Token: 7}}) {
		t.Errorf("inbound: %v", ab.InboundQoS2)
	}
}

// testLaterWriteWins: writes land in submission order, also across a
// delete and re-creation of the same session.
func testLaterWriteWins(t *testing.T, open Opener) {
	st := open(t)
	st.PutSession(store.Session{ClientID: "c", Version: 4})
	st.PutOutbound("c", store.Outbound{Seq: 1, QoS: 1, Message: &store.Message{Topic: "old"}})
	st.DeleteSession("c")
	st.PutSession(store.Session{ClientID: "c", Version: 5})
	st.PutOutbound("c", store.Outbound{Seq: 2, State: store.Sent, QoS: 1, Message: &store.Message{Topic: "new"}})
	mustWait(t, st, st.PutOutbound("c", store.Outbound{Seq: 2, State: store.Released, QoS: 2}))

	st = reopen(t, open, st)
	defer st.Close()
	states, _ := load(t, st)
	if len(states) != 1 || states[0].Session.Version != 5 {
		t.Fatalf("sessions: %+v", states)
	}
	if o := states[0].Outbound; len(o) != 1 || o[0].Seq != 2 || o[0].State != store.Released {
		t.Errorf("outbound: %+v", o)
	}
}

// testConcurrent: many writers, each waiting on its own tickets, and
// atomic groups, all land.
func testConcurrent(t *testing.T, open Opener) {
	st := open(t)
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			id := string(rune('a' + w))
			st.PutSession(store.Session{ClientID: id, Version: 4, ExpiryInterval: 0xFFFFFFFF})
			for i := range each {
				var tk store.Ticket
				st.Atomic(func() {
					st.PutOutbound(id, store.Outbound{Seq: uint64(i + 1), QoS: 1, Message: &store.Message{Topic: id}})
					tk = st.PutInboundQoS2(id, store.Inbound{PacketID: uint16(i + 1)})
				})
				if err := st.Wait(tk); err != nil {
					t.Errorf("wait: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	st = reopen(t, open, st)
	defer st.Close()
	states, _ := load(t, st)
	if len(states) != writers {
		t.Fatalf("sessions: %d, want %d", len(states), writers)
	}
	for _, s := range states {
		if len(s.Outbound) != each || len(s.InboundQoS2) != each {
			t.Errorf("%s: %d outbound, %d inbound, want %d each", s.Session.ClientID, len(s.Outbound), len(s.InboundQoS2), each)
		}
		for i, o := range s.Outbound {
			if o.Seq != uint64(i+1) {
				t.Errorf("%s: outbound %d has seq %d", s.Session.ClientID, i, o.Seq)
				break
			}
		}
	}
}

// testFanOut: one *Message queued for many sessions, as the broker queues
// a publication for every subscriber, then each copy taken its own way
// (sent, released, acknowledged, its session deleted, replaced by
// another message); every session loads exactly what is left of it, also
// after further writes with the messages Load returned.
func testFanOut(t *testing.T, open Opener) {
	st := open(t)
	m, m2, m3 := fullMessage("f/1"), &store.Message{Topic: "f/2", Payload: []byte("two"), QoS: 1}, &store.Message{Topic: "f/3", QoS: 2}
	const n = 50
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%02d", i)
		st.PutSession(store.Session{ClientID: ids[i], Version: 5, ExpiryInterval: 0xFFFFFFFF})
		st.PutOutbound(ids[i], store.Outbound{Seq: 1, QoS: 1, Message: m})
		st.PutOutbound(ids[i], store.Outbound{Seq: 2, QoS: 1, SubIDs: []uint32{uint32(i + 1)}, Message: m2})
	}
	// What each session should load, by seq.
	want := make(map[string]map[uint64]store.Outbound)
	for i, id := range ids {
		want[id] = map[uint64]store.Outbound{
			1: {Seq: 1, QoS: 1, Message: m},
			2: {Seq: 2, QoS: 1, SubIDs: []uint32{uint32(i + 1)}, Message: m2},
		}
	}
	var tk store.Ticket
	for i, id := range ids {
		switch i / 10 {
		case 0: // sent
			o := store.Outbound{Seq: 1, PacketID: uint16(i + 1), State: store.Sent, QoS: 1, Message: m}
			tk = st.PutOutbound(id, o)
			want[id][1] = o
		case 1: // released: the message is no longer needed
			o := store.Outbound{Seq: 1, PacketID: uint16(i + 1), State: store.Released, QoS: 2}
			tk = st.PutOutbound(id, o)
			want[id][1] = o
		case 2: // acknowledged
			tk = st.DeleteOutbound(id, 1)
			delete(want[id], 1)
		case 3: // session ended
			tk = st.DeleteSession(id)
			delete(want, id)
		case 4: // another message under the same seq
			o := store.Outbound{Seq: 2, QoS: 2, Message: m3}
			tk = st.PutOutbound(id, o)
			want[id][2] = o
		}
	}
	mustWait(t, st, tk)
	check := func(st store.Store) []store.SessionState {
		t.Helper()
		states, _ := load(t, st)
		if len(states) != len(want) {
			t.Fatalf("loaded %d sessions, want %d", len(states), len(want))
		}
		for _, s := range states {
			w := want[s.Session.ClientID]
			if len(s.Outbound) != len(w) {
				t.Errorf("%s: %d outbound, want %d", s.Session.ClientID, len(s.Outbound), len(w))
			}
			for _, o := range s.Outbound {
				if !reflect.DeepEqual(o, w[o.Seq]) {
					t.Errorf("%s: outbound %d:\n got %+v\nwant %+v", s.Session.ClientID, o.Seq, o, w[o.Seq])
				}
			}
		}
		return states
	}
	st = reopen(t, open, st)
	states := check(st)
	// Writes with the loaded messages: the rest of the copies of m are
	// sent, then those of m2 acknowledged.
	for _, s := range states {
		for _, o := range s.Outbound {
			id := s.Session.ClientID
			switch {
			case o.Seq == 1 && o.State == store.Queued:
				o.State, o.PacketID = store.Sent, 100
				tk = st.PutOutbound(id, o)
				want[id][1] = o
			case o.Seq == 2 && o.QoS == 1:
				tk = st.DeleteOutbound(id, 2)
				delete(want[id], 2)
			}
		}
	}
	mustWait(t, st, tk)
	st = reopen(t, open, st)
	defer st.Close()
	check(st)
}
