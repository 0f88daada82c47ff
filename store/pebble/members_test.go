package pebble

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ternmq/tern/store"
)

// TestMemberLog: the changes to a body's members (sent, released,
// acknowledged, replaced by another message, their session deleted and
// made again) survive restarts, whether made in one commit or many; the
// body and its log go with the last member.
func TestMemberLog(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, nil)
	ids := sessions(t, st, 6)
	m, other := bigMessage("m"), bigMessage("other")
	wait(t, st, fanOut(st, ids, 3, m))
	want := map[string][]store.Outbound{}
	for _, id := range ids {
		want[id] = []store.Outbound{{Seq: 3, QoS: 1, Message: m}}
	}
	// mm is m as the store knows it: after a restart, as Load returned it.
	mm := m
	steps := []func() store.Ticket{
		func() store.Ticket {
			sent := store.Outbound{Seq: 3, PacketID: 9, State: store.Sent, QoS: 1, Retain: true, SubIDs: []uint32{4, 70000},
				SharedGroup: "g", SharedFilter: "f/#", Message: mm}
			want[ids[0]][0] = sent
			return st.PutOutbound(ids[0], sent)
		},
		func() store.Ticket {
			o := store.Outbound{Seq: 3, PacketID: 9, State: store.Released, QoS: 2}
			want[ids[1]][0] = o
			return st.PutOutbound(ids[1], o)
		},
		func() store.Ticket { want[ids[2]] = nil; return st.DeleteOutbound(ids[2], 3) },
		func() store.Ticket {
			o := store.Outbound{Seq: 3, QoS: 1, Message: other}
			want[ids[3]][0] = o
			return st.PutOutbound(ids[3], o)
		},
		func() store.Ticket {
			// Deleted and made again: none of its old members come back.
			st.DeleteSession(ids[4])
			st.PutSession(store.Session{ClientID: ids[4], Version: 4, ExpiryInterval: 0xFFFFFFFF})
			o := store.Outbound{Seq: 1, QoS: 1, Message: mm}
			want[ids[4]] = []store.Outbound{o}
			return st.PutOutbound(ids[4], o)
		},
	}
	check := func(when string) {
		t.Helper()
		states := loadAll(t, st)
		for _, id := range ids {
			got := states[id].Outbound
			if len(got) != len(want[id]) {
				t.Fatalf("%s: %s: %+v, want %+v", when, id, got, want[id])
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], want[id][i]) {
					t.Fatalf("%s: %s:\n got %+v\nwant %+v", when, id, got[i], want[id][i])
				}
			}
		}
		mm = states[ids[5]].Outbound[0].Message
	}
	for i, step := range steps {
		wait(t, st, step())
		st.Close()
		st = open(t, dir, nil)
		check(fmt.Sprintf("step %d", i))
	}
	// Again in one commit, on the loaded index.
	st.hold.Lock()
	st.PutOutbound(ids[5], store.Outbound{Seq: 3, PacketID: 2, State: store.Sent, QoS: 1, Message: mm})
	tk := st.DeleteOutbound(ids[0], 3)
	st.hold.Unlock()
	wait(t, st, tk)
	want[ids[5]][0].PacketID, want[ids[5]][0].State, want[ids[0]] = 2, store.Sent, nil
	st.Close()
	st = open(t, dir, nil)
	defer st.Close()
	check("one commit")
	if n, logs := countKeys(t, st, kindBody), countKeys(t, st, kindLog); n != 1 || logs == 0 {
		t.Fatalf("%d bodies, %d logs: want m's and its log", n, logs)
	}
	wait(t, st, st.DeleteOutbound(ids[5], 3))
	if n := countKeys(t, st, kindBody); n != 1 {
		t.Fatalf("%d bodies: want m's, for %s", n, ids[4])
	}
	wait(t, st, st.DeleteSession(ids[4]))
	if n, logs := countKeys(t, st, kindBody), countKeys(t, st, kindLog); n != 0 || logs != 0 {
		t.Fatalf("%d bodies, %d logs left", n, logs)
	}
}

// TestMembersBeforeLoad: a reopened store makes no members until Load
// has read which seqs are stored, and Load drops the members of a session
// deleted (and made again) before it ran.
func TestMembersBeforeLoad(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, nil)
	ids := sessions(t, st, 3)
	m := bigMessage("m")
	wait(t, st, fanOut(st, ids, 1, m))
	st.Close()

	st = open(t, dir, nil)
	st.DeleteSession(ids[0])
	st.PutSession(store.Session{ClientID: ids[0], Version: 4, ExpiryInterval: 0xFFFFFFFF})
	before := countKeys(t, st, kindOutbound)
	m2 := bigMessage("m2")
	wait(t, st, fanOut(st, ids, 2, m2))
	if n := countKeys(t, st, kindOutbound) - before; n != len(ids) {
		t.Fatalf("before Load: %d outbound records, want %d (no members)", n, len(ids))
	}
	states := loadAll(t, st)
	if o := states[ids[0]].Outbound; len(o) != 1 || o[0].Seq != 2 || o[0].Message.Topic != "m2" {
		t.Fatalf("%s: %+v: its old member is back", ids[0], o)
	}
	for _, id := range ids[1:] {
		if o := states[id].Outbound; len(o) != 2 || o[0].Message.Topic != "m" || o[1].Message.Topic != "m2" {
			t.Fatalf("%s: %+v", id, o)
		}
	}
	st.Close()
	st = open(t, dir, nil)
	defer st.Close()
	if o := loadAll(t, st)[ids[0]].Outbound; len(o) != 1 || o[0].Seq != 2 {
		t.Fatalf("%s after another restart: %+v", ids[0], o)
	}
}

// TestDamagedMembers: a member whose session is gone is deleted in its
// body's log; a member and a record for one seq (only damage makes them)
// load as the record; a damaged log record is dropped; each is reported
// once.
func TestDamagedMembers(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, nil)
	ids := sessions(t, st, 4)
	m := bigMessage("m")
	wait(t, st, fanOut(st, ids, 1, m))
	wait(t, st, st.PutOutbound(ids[3], store.Outbound{Seq: 1, PacketID: 5, State: store.Sent, QoS: 1, Message: m}))
	// Session 0's record goes without its members; session 1 gets a
	// record beside its member.
	st.db.Delete(appendKey(nil, kindSession, ids[0]), pebble.Sync)
	rec := store.Outbound{Seq: 1, PacketID: 3, State: store.Sent, QoS: 1, Message: &store.Message{Topic: "rec"}}
	st.db.Set(appendSeqKey(nil, ids[1], 1), appendOutbound(nil, &rec, 0), pebble.Sync)
	// Damage the log record of session 3's change.
	damage(t, st, appendLogKey(nil, 1, 0))
	st.Close()

	var logs strings.Builder
	st = open(t, dir, slog.New(slog.NewTextHandler(&logs, nil)))
	states := loadAll(t, st)
	if _, ok := states[ids[0]]; ok || len(states) != 3 {
		t.Fatalf("loaded %d sessions", len(states))
	}
	if o := states[ids[1]].Outbound; len(o) != 1 || !reflect.DeepEqual(o[0], rec) {
		t.Fatalf("%s: %+v, want the record", ids[1], o)
	}
	if o := states[ids[3]].Outbound; len(o) != 1 || o[0].State != store.Queued {
		t.Fatalf("%s: %+v, want queued (its log record dropped)", ids[3], o)
	}
	if !strings.Contains(logs.String(), "count=1 members=2") {
		t.Fatalf("not reported: %q", logs.String())
	}
	st.Close()
	logs.Reset()
	st = open(t, dir, slog.New(slog.NewTextHandler(&logs, nil)))
	defer st.Close()
	states = loadAll(t, st)
	if logs.Len() != 0 || len(states[ids[1]].Outbound) != 1 || len(states[ids[2]].Outbound) != 1 {
		t.Fatalf("second load: %+v, logs %q", states, logs.String())
	}
	for _, id := range ids[1:] {
		wait(t, st, st.DeleteSession(id))
	}
	if n, logs := countKeys(t, st, kindBody), countKeys(t, st, kindLog); n != 0 || logs != 0 {
		t.Fatalf("%d bodies, %d logs left", n, logs)
	}
}

// TestBodyIDReused: a body id freed before a restart may be given again;
// the log of the body that had it went with it.
func TestBodyIDReused(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, nil)
	ids := sessions(t, st, 2)
	m := bigMessage("m")
	wait(t, st, fanOut(st, ids, 1, m))
	for _, id := range ids {
		wait(t, st, st.PutOutbound(id, store.Outbound{Seq: 1, PacketID: 1, State: store.Sent, QoS: 1, Message: m}))
	}
	for _, id := range ids {
		wait(t, st, st.DeleteOutbound(id, 1))
	}
	st.Close()
	st = open(t, dir, nil)
	defer st.Close()
	if st.bodies.next != 1 {
		t.Fatalf("next body id %d, want 1 again", st.bodies.next)
	}
	loadAll(t, st)
	wait(t, st, fanOut(st, ids, 2, bigMessage("again")))
	for _, id := range ids {
		if o := loadAll(t, st)[id].Outbound; len(o) != 1 || o[0].State != store.Queued || o[0].Message.Topic != "again" {
			t.Fatalf("%s: %+v", id, o)
		}
	}
}
