package pebble

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ternmq/tern/store"
)

// countKeys counts the committed records of one kind.
func countKeys(t *testing.T, st *Store, kind byte) int {
	t.Helper()
	it, err := st.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

func wait(t *testing.T, st *Store, tk store.Ticket) {
	t.Helper()
	if err := st.Wait(tk); err != nil {
		t.Fatal(err)
	}
}

func loadAll(t *testing.T, st *Store) map[string]store.SessionState {
	t.Helper()
	states, _, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	byID := make(map[string]store.SessionState)
	for _, s := range states {
		byID[s.Session.ClientID] = s
	}
	return byID
}

func bigMessage(topic string) *store.Message {
	return &store.Message{Topic: topic, Payload: make([]byte, 4096), QoS: 1}
}

// sessions stores n sessions c0000... and returns their ids.
func sessions(t *testing.T, st *Store, n int) []string {
	t.Helper()
	ids := make([]string, n)
	var tk store.Ticket
	for i := range ids {
		ids[i] = fmt.Sprintf("c%04d", i)
		tk = st.PutSession(store.Session{ClientID: ids[i], Version: 4, ExpiryInterval: 0xFFFFFFFF})
	}
	wait(t, st, tk)
	return ids
}

// fanOut queues m for every id as the broker does, in one Atomic group.
func fanOut(st *Store, ids []string, seq uint64, m *store.Message) (tk store.Ticket) {
	st.Atomic(func() {
		for _, id := range ids {
			tk = st.PutOutbound(id, store.Outbound{Seq: seq, QoS: 1, Message: m})
		}
	})
	return tk
}

// record returns the stored outbound record (client, seq) decoded, with
// the id of the body it refers to.
func record(t *testing.T, st *Store, client string, seq uint64) (store.Outbound, uint64, bool) {
	t.Helper()
	v, closer, err := st.db.Get(appendSeqKey(nil, client, seq))
	if errors.Is(err, pebble.ErrNotFound) {
		return store.Outbound{}, 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	o, ref, err := decodeOutbound(v)
	if err != nil {
		t.Fatal(err)
	}
	return o, ref, true
}

// TestFanOutStoresOneBody: a message queued for 1000 sessions is one
// record, the message and its members, a few bytes each; moving every
// copy to in flight adds to the members' log (a record per commit), not
// the message again; after a restart the 1000 outbound messages share one
// *Message, which later writes recognize.
func TestFanOutStoresOneBody(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, nil)
	ids := sessions(t, st, 1000)
	m := bigMessage("fan/out")
	before := st.Stats()
	wait(t, st, fanOut(st, ids, 1, m))
	queued := st.Stats()
	if n := countKeys(t, st, kindBody); n != 1 {
		t.Fatalf("%d bodies stored, want 1", n)
	}
	if n := countKeys(t, st, kindOutbound); n != 0 {
		t.Fatalf("%d outbound records, want 0: the body lists its members", n)
	}
	// The message once, then at most 8 bytes per session (c0000 after
	// c0001 shares 4 bytes of its id).
	if b := queued.Bytes - before.Bytes; b > 4096+uint64(len(ids))*8 {
		t.Errorf("queueing wrote %d bytes", b)
	}
	if r := queued.Records - before.Records; r != 1 {
		t.Errorf("queueing wrote %d records, want 1", r)
	}
	var tk store.Ticket
	for i, id := range ids {
		tk = st.PutOutbound(id, store.Outbound{Seq: 1, PacketID: uint16(i + 1), State: store.Sent, QoS: 1, Message: m})
	}
	wait(t, st, tk)
	sent := st.Stats()
	if b := sent.Bytes - queued.Bytes; b > uint64(len(ids))*8 {
		t.Errorf("moving to in flight wrote %d bytes: the message again?", b)
	}
	// One log record per commit that held some of the changes.
	if r, c := sent.Records-queued.Records, sent.Commits-queued.Commits; r != c || countKeys(t, st, kindLog) != int(c) {
		t.Errorf("moving to in flight in %d commits wrote %d records, %d logs", c, r, countKeys(t, st, kindLog))
	}
	st.Close()

	st = open(t, dir, nil)
	defer st.Close()
	states := loadAll(t, st)
	var shared *store.Message
	for i, id := range ids {
		o := states[id].Outbound
		if len(o) != 1 || o[0].State != store.Sent || o[0].PacketID != uint16(i+1) {
			t.Fatalf("%s: outbound %+v", id, o)
		}
		if shared == nil {
			shared = o[0].Message
			if !reflect.DeepEqual(shared, m) {
				t.Fatalf("loaded %+v, want %+v", shared, m)
			}
		}
		if o[0].Message != shared {
			t.Fatalf("%s: a message of its own, not the shared one", id)
		}
	}
	// The loaded message is known: queuing it for one more session, in
	// a commit of its own, writes only the reference; acknowledging every
	// copy deletes it.
	extra := sessions(t, st, 1001)[1000]
	before = st.Stats()
	wait(t, st, st.PutOutbound(extra, store.Outbound{Seq: 1, QoS: 1, Message: shared}))
	if r := st.Stats().Records - before.Records; r != 1 || countKeys(t, st, kindBody) != 1 {
		t.Fatalf("queueing the loaded message wrote %d records, %d bodies", r, countKeys(t, st, kindBody))
	}
	for _, id := range append(ids, extra) {
		tk = st.DeleteOutbound(id, 1)
	}
	wait(t, st, tk)
	if n, logs := countKeys(t, st, kindBody), countKeys(t, st, kindLog); n != 0 || logs != 0 {
		t.Fatalf("%d bodies, %d logs left after the last acknowledgement", n, logs)
	}
}

// TestUnsharedMessageInline: a message for one session is one record
// with the message inline, as before bodies existed, and so is each copy
// of a message whose records are written in commits of their own.
func TestUnsharedMessageInline(t *testing.T) {
	st := open(t, t.TempDir(), nil)
	defer st.Close()
	ids := sessions(t, st, 3)
	m := bigMessage("one")
	o := store.Outbound{Seq: 1, QoS: 1, Message: m}
	before := st.Stats()
	wait(t, st, st.PutOutbound(ids[0], o))
	after := st.Stats()
	k, v := appendSeqKey(nil, ids[0], 1), appendOutbound(nil, &o, 0)
	if r, b := after.Records-before.Records, after.Bytes-before.Bytes; r != 1 || b != uint64(len(k)+len(v)) {
		t.Fatalf("wrote %d records, %d bytes; want 1, %d", r, b, len(k)+len(v))
	}
	if got, ref, ok := record(t, st, ids[0], 1); !ok || ref != 0 || !reflect.DeepEqual(got, o) {
		t.Fatalf("stored %+v, ref %d", got, ref)
	}
	o.State, o.PacketID = store.Sent, 1
	wait(t, st, st.PutOutbound(ids[0], o))
	for _, id := range ids[1:] {
		wait(t, st, st.PutOutbound(id, store.Outbound{Seq: 1, QoS: 1, Message: m}))
	}
	if n := countKeys(t, st, kindBody); n != 0 {
		t.Fatalf("%d bodies for a message never shared within a commit", n)
	}
	for _, id := range ids {
		if got, ref, ok := record(t, st, id, 1); !ok || ref != 0 || !reflect.DeepEqual(got.Message, m) {
			t.Fatalf("%s: stored %+v, ref %d", id, got, ref)
		}
	}
}

// TestBodyLastReference: a body stays while any record refers to it and
// goes with the last one, whether acknowledged, released (PUBREC: the
// message no longer kept) or replaced by another message.
func TestBodyLastReference(t *testing.T) {
	st := open(t, t.TempDir(), nil)
	defer st.Close()
	ids := sessions(t, st, 3)
	m, m2 := bigMessage("a"), bigMessage("b")
	wait(t, st, fanOut(st, ids, 5, m))
	steps := []struct {
		do     func() store.Ticket
		bodies int
	}{
		{func() store.Ticket { return st.DeleteOutbound(ids[0], 5) }, 1},
		{func() store.Ticket { return st.DeleteOutbound(ids[0], 5) }, 1}, // again: nothing to drop
		{func() store.Ticket {
			return st.PutOutbound(ids[1], store.Outbound{Seq: 5, PacketID: 1, State: store.Released, QoS: 2})
		}, 1},
		{func() store.Ticket { return st.PutOutbound(ids[2], store.Outbound{Seq: 5, QoS: 2, Message: m2}) }, 0}, // m goes, m2 inline
		{func() store.Ticket { return fanOut(st, ids[:2], 6, m2) }, 1},
		{func() store.Ticket { return st.DeleteOutbound(ids[2], 5) }, 1},
		{func() store.Ticket { return st.DeleteOutbound(ids[0], 6) }, 1},
		{func() store.Ticket { return st.DeleteOutbound(ids[1], 6) }, 0},
	}
	for i, s := range steps {
		wait(t, st, s.do())
		if n := countKeys(t, st, kindBody); n != s.bodies {
			t.Fatalf("step %d: %d bodies, want %d", i, n, s.bodies)
		}
	}
	states := loadAll(t, st)
	if o := states[ids[1]].Outbound; len(o) != 1 || o[0].State != store.Released || o[0].Message != nil {
		t.Fatalf("%s: %+v", ids[1], o)
	}
	// The same *Message queued again after its body went gets a new one.
	wait(t, st, fanOut(st, ids[:2], 7, m))
	if n := countKeys(t, st, kindBody); n != 1 {
		t.Fatalf("%d bodies, want 1", n)
	}
	if o := loadAll(t, st)[ids[0]].Outbound; len(o) != 1 || !reflect.DeepEqual(o[0].Message, m) {
		t.Fatalf("%s: %+v", ids[0], o)
	}
}

// TestDeleteSessionFreesBodies: deleting a session drops its references
// in the same commit as its records; a body another session refers to
// stays, also for a session whose id has the deleted one as a prefix.
func TestDeleteSessionFreesBodies(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, nil)
	for _, id := range []string{"a", "ab"} {
		st.PutSession(store.Session{ClientID: id, Version: 4, ExpiryInterval: 0xFFFFFFFF})
	}
	shared, own := bigMessage("shared"), bigMessage("own")
	var tk store.Ticket
	st.Atomic(func() {
		st.PutOutbound("a", store.Outbound{Seq: 1, QoS: 1, Message: shared})
		st.PutOutbound("a", store.Outbound{Seq: 2, QoS: 1, Message: own})
		st.PutOutbound("a", store.Outbound{Seq: 3, QoS: 1, Message: own})
		tk = st.PutOutbound("ab", store.Outbound{Seq: 1, QoS: 1, Message: shared})
	})
	wait(t, st, tk)
	if n := countKeys(t, st, kindBody); n != 2 {
		t.Fatalf("%d bodies, want 2", n)
	}
	wait(t, st, st.DeleteSession("a"))
	if n := countKeys(t, st, kindBody); n != 1 {
		t.Fatalf("%d bodies after deleting a, want 1", n)
	}
	st.Close()
	st = open(t, dir, nil)
	states := loadAll(t, st)
	if o := states["ab"].Outbound; len(states) != 1 || len(o) != 1 || !reflect.DeepEqual(o[0].Message, shared) {
		t.Fatalf("loaded %+v", states)
	}
	wait(t, st, st.DeleteSession("ab"))
	if n := countKeys(t, st, kindBody); n != 0 {
		t.Fatalf("%d bodies after deleting every session", n)
	}
	st.Close()
}

// TestInlineRecordsLoad: outbound records written before bodies existed,
// with their message inline, still load; a loaded message that goes to
// another session as well moves to a body.
func TestInlineRecordsLoad(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, nil)
	sessions(t, st, 2)
	old := store.Outbound{Seq: 9, PacketID: 4, State: store.Sent, QoS: 1, SubIDs: []uint32{3}, Message: bigMessage("old")}
	st.db.Set(appendSeqKey(nil, "c0000", 9), appendOutbound(nil, &old, 0), pebble.Sync)
	released := store.Outbound{Seq: 10, PacketID: 5, State: store.Released, QoS: 2}
	st.db.Set(appendSeqKey(nil, "c0000", 10), appendOutbound(nil, &released, 0), pebble.Sync)
	st.Close()

	st = open(t, dir, nil)
	defer st.Close()
	o := loadAll(t, st)["c0000"].Outbound
	if !reflect.DeepEqual(o, []store.Outbound{old, released}) {
		t.Fatalf("loaded\n %+v\nwant\n %+v", o, []store.Outbound{old, released})
	}
	if countKeys(t, st, kindBody) != 0 {
		t.Fatal("loading wrote a body")
	}
	o[0].PacketID = 6
	var tk store.Ticket
	st.Atomic(func() {
		st.PutOutbound("c0000", o[0])
		tk = st.PutOutbound("c0001", store.Outbound{Seq: 1, QoS: 1, Message: o[0].Message})
	})
	wait(t, st, tk)
	if countKeys(t, st, kindBody) != 1 {
		t.Fatal("the shared message has no body")
	}
	states := loadAll(t, st)
	if got := states["c0000"].Outbound; !reflect.DeepEqual(got, o) {
		t.Fatalf("reloaded\n %+v\nwant\n %+v", got, o)
	}
	if got := states["c0001"].Outbound; len(got) != 1 || got[0].Message != states["c0000"].Outbound[0].Message {
		t.Fatalf("c0001: %+v, not sharing c0000's message", got)
	}
	wait(t, st, st.DeleteOutbound("c0000", 9))
	wait(t, st, st.DeleteSession("c0001"))
	if countKeys(t, st, kindBody) != 0 {
		t.Fatal("body left after its records went")
	}
}

// TestBodiesAcrossOpens: writes made before Load on a reopened store
// (which then knows no bodies) get ids of their own, never those of
// stored bodies, and what they leave unreferenced Load deletes; a
// reference whose body is missing is dropped as damaged.
func TestBodiesAcrossOpens(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, nil)
	ids := sessions(t, st, 2)
	wait(t, st, fanOut(st, ids, 1, bigMessage("one")))
	st.Close()

	st = open(t, dir, nil)
	wait(t, st, fanOut(st, ids, 2, bigMessage("two")))
	wait(t, st, st.DeleteSession(ids[1])) // before Load: its references are not known
	st.db.Set(appendSeqKey(nil, ids[0], 3), appendOutbound(nil, &store.Outbound{Seq: 3, QoS: 1}, 1<<40), pebble.Sync)
	st.db.Set(appendBodyKey(nil, 1<<41), appendMessageRecord(nil, bigMessage("orphan")), pebble.Sync)
	if n := countKeys(t, st, kindBody); n != 3 {
		t.Fatalf("%d bodies, want 3", n)
	}
	o := loadAll(t, st)[ids[0]].Outbound
	if len(o) != 2 || o[0].Message.Topic != "one" || o[1].Message.Topic != "two" {
		t.Fatalf("loaded %+v", o)
	}
	if n := countKeys(t, st, kindBody); n != 2 {
		t.Fatalf("%d bodies after Load, want 2", n)
	}
	// The index Load built frees bodies; ids go on after the highest
	// stored one.
	wait(t, st, st.DeleteOutbound(ids[0], 1))
	if n := countKeys(t, st, kindBody); n != 1 {
		t.Fatalf("%d bodies, want 1", n)
	}
	var tk store.Ticket
	st.Atomic(func() {
		st.PutOutbound(ids[0], store.Outbound{Seq: 4, QoS: 1, Message: bigMessage("four")})
		tk = st.PutOutbound(ids[0], store.Outbound{Seq: 5, QoS: 1, Message: o[1].Message})
	})
	wait(t, st, tk)
	st.Close()
	st = open(t, dir, nil)
	defer st.Close()
	o = loadAll(t, st)[ids[0]].Outbound
	if len(o) != 3 || o[0].Message.Topic != "two" || o[1].Message.Topic != "four" || o[2].Message != o[0].Message {
		t.Fatalf("loaded %+v", o)
	}
}

// TestHeldRecordSuperseded: a record held back for the end of its batch
// that a later write of the same batch deletes or replaces is not
// written: a deleted session is not brought back.
func TestHeldRecordSuperseded(t *testing.T) {
	st := open(t, t.TempDir(), nil)
	defer st.Close()
	ids := sessions(t, st, 5)
	m, m2 := bigMessage("m"), bigMessage("m2")
	st.hold.Lock() // one batch
	st.PutOutbound(ids[0], store.Outbound{Seq: 1, QoS: 1, Message: m})
	st.DeleteSession(ids[0])
	st.PutOutbound(ids[1], store.Outbound{Seq: 1, QoS: 1, Message: m})
	st.DeleteOutbound(ids[1], 1)
	st.PutOutbound(ids[2], store.Outbound{Seq: 1, QoS: 1, Message: m})
	st.PutOutbound(ids[2], store.Outbound{Seq: 1, PacketID: 3, State: store.Sent, QoS: 1, Message: m})
	st.PutOutbound(ids[3], store.Outbound{Seq: 1, QoS: 1, Message: m2})
	st.PutOutbound(ids[3], store.Outbound{Seq: 1, QoS: 1, Message: m}) // m2 dropped before it was written
	tk := st.PutOutbound(ids[4], store.Outbound{Seq: 1, QoS: 1, Message: m2})
	st.hold.Unlock()
	wait(t, st, tk)
	states := loadAll(t, st)
	if _, ok := states[ids[0]]; ok || len(states) != 4 {
		t.Fatalf("sessions %v: %s deleted and back", len(states), ids[0])
	}
	want := map[string][]store.Outbound{
		ids[1]: nil,
		ids[2]: {{Seq: 1, PacketID: 3, State: store.Sent, QoS: 1, Message: m}},
		ids[3]: {{Seq: 1, QoS: 1, Message: m}},
		ids[4]: {{Seq: 1, QoS: 1, Message: m2}},
	}
	for id, w := range want {
		if got := states[id].Outbound; !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", id, got, w)
		}
	}
	// m went to ids[2] and ids[3] (a body), m2 only to ids[4] (inline).
	if n := countKeys(t, st, kindBody); n != 1 {
		t.Fatalf("%d bodies, want 1", n)
	}
	if states[ids[2]].Outbound[0].Message != states[ids[3]].Outbound[0].Message {
		t.Fatal("m not shared")
	}
}

// TestBodiesConcurrent: publishers fan messages out to every session
// while the sessions acknowledge; a restart in between loads each
// message once, shared; when everything is acknowledged no body is left.
func TestBodiesConcurrent(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, nil)
	ids := sessions(t, st, 8)
	const publishers, each = 4, 50
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			var tk store.Ticket
			for i := range each {
				m := &store.Message{Topic: fmt.Sprintf("m/%d/%d", p, i), Payload: []byte("x"), QoS: 1}
				seq := uint64(p*1000 + i + 1)
				tk = fanOut(st, ids, seq, m)
				if i%2 == 0 { // half of them sent to the first half of the sessions
					for j, id := range ids[:4] {
						tk = st.PutOutbound(id, store.Outbound{Seq: seq, PacketID: uint16(j + 1), State: store.Sent, QoS: 1, Message: m})
					}
				}
			}
			if err := st.Wait(tk); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st.Close()
	st = open(t, dir, nil)
	defer st.Close()
	states := loadAll(t, st)
	first := states[ids[0]].Outbound
	for _, id := range ids {
		o := states[id].Outbound
		if len(o) != publishers*each {
			t.Fatalf("%s: %d outbound, want %d", id, len(o), publishers*each)
		}
		for i := range o {
			if o[i].Message != first[i].Message || o[i].Message.Topic != fmt.Sprintf("m/%d/%d", o[i].Seq/1000, o[i].Seq%1000-1) {
				t.Fatalf("%s: message %d not shared or wrong: %+v", id, o[i].Seq, o[i].Message)
			}
		}
	}
	if n := countKeys(t, st, kindBody); n != publishers*each {
		t.Fatalf("%d bodies, want %d", n, publishers*each)
	}
	for _, id := range ids {
		wg.Go(func() {
			var tk store.Ticket
			for _, o := range states[id].Outbound {
				tk = st.DeleteOutbound(id, o.Seq)
			}
			if err := st.Wait(tk); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := countKeys(t, st, kindBody); n != 0 {
		t.Fatalf("%d bodies left", n)
	}
}

// pendingKinds returns the writes in the pending batch, with what it
// holds back for its end (as the committer takes it), as "SET m" (the
// operation and the record kind) in order.
func pendingKinds(t *testing.T, st *Store) []string {
	t.Helper()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.seal(writer{&st.committer})
	var out []string
	r := st.pending.Reader()
	for {
		kind, k, _, ok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, kind.String()+" "+string(k[:1]))
	}
}

// TestBodyCommitsWithReference: a body is written in the same commit as
// its first references (its members), a change to a member in the same
// commit as the change (its log), and the body is deleted with its log in
// the same commit as its last reference: however a crash falls between
// group commits, no stored member or record refers to a missing body.
func TestBodyCommitsWithReference(t *testing.T) {
	st := open(t, t.TempDir(), nil)
	defer st.Close()
	ids := sessions(t, st, 3)
	m := bigMessage("m")
	steps := []struct {
		do   func() store.Ticket
		want []string
	}{
		{func() store.Ticket {
			st.PutOutbound(ids[0], store.Outbound{Seq: 1, QoS: 1, Message: m})
			return st.PutOutbound(ids[1], store.Outbound{Seq: 1, QoS: 1, Message: m})
		}, []string{"SET m"}},
		{func() store.Ticket { return st.PutOutbound(ids[2], store.Outbound{Seq: 1, QoS: 1, Message: m}) }, []string{"SET o"}},
		{func() store.Ticket {
			return st.PutOutbound(ids[0], store.Outbound{Seq: 1, PacketID: 7, State: store.Sent, QoS: 1, Message: m})
		}, []string{"SET x"}},
		{func() store.Ticket {
			st.DeleteOutbound(ids[0], 1)
			return st.DeleteOutbound(ids[1], 1)
		}, []string{"SET x"}},
		{func() store.Ticket { return st.DeleteSession(ids[2]) },
			[]string{"DEL s", "RANGEDEL u", "RANGEDEL o", "RANGEDEL q", "DEL m", "RANGEDEL x"}},
		// Held back, then written inline as the batch is taken.
		{func() store.Ticket { return st.PutOutbound(ids[0], store.Outbound{Seq: 2, QoS: 1, Message: m}) }, []string{"SET o"}},
	}
	for i, s := range steps {
		// Holding hold keeps the committer from taking the pending batch.
		st.hold.Lock()
		tk := s.do()
		got := pendingKinds(t, st)
		st.hold.Unlock()
		wait(t, st, tk)
		if !reflect.DeepEqual(got, s.want) {
			t.Errorf("step %d: one commit holds %q, want %q", i, got, s.want)
		}
	}
	if o, ref, ok := record(t, st, ids[0], 2); !ok || ref != 0 || !reflect.DeepEqual(o.Message, m) {
		t.Fatalf("held record stored as %+v, ref %d", o, ref)
	}
}
