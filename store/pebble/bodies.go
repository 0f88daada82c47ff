package pebble

import (
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ternmq/tern/store"
)

// Message bodies. The broker hands PutOutbound the same *store.Message for
// every session it queues a message for, in one Atomic group when a client
// publishes it. A message shared by several outbound records is stored
// once, as a body record m<id> with an id the store assigns.
//
// Members. The records of a message submitted to one batch are held back
// until the batch is committed. If there is one, it is written as an
// outbound record with the message inline, as before bodies existed. If
// there are more, the body record lists them: each member is the
// session's client id, the record's seq and its other fields in a byte or
// a few (codec.go), so that queueing a message for 1000 sessions is one
// record of a few KB, not 1001 records. A later change to a member (its
// state and packet id when sent, its deletion when acknowledged) goes to
// the body's member log, x<id><n>: one record per body and batch, with
// every change the batch makes to its members, in order. Load applies
// the log to the members. A record of a message whose body was stored by
// an earlier batch is an outbound record that refers to the body by id,
// and so is the record of a member replaced by another message.
//
// Which wins. A member (client, seq) is made only for a seq above every
// seq the store has written for the session (hwm), so no outbound record
// (client, seq) exists then; every later write of (client, seq) goes to
// the member's log or, for another message, deletes the member in the log
// and writes an outbound record. DeleteSession deletes the session's
// members in their logs with its range deletes. Until Load has read what
// is stored, a reopened store does not know which seqs are used: it makes
// no members, and Load drops the members of the sessions deleted
// meanwhile. Load resolves what can only come from damage (a member and
// an outbound record, or two members, for one seq) in favour of the
// record, then of the newer body, and deletes the loser.
//
// Crash consistency: everything here happens in committer.submit and
// committer.loop's seal, with the pending batch's lock held. A body is
// written in the batch of its first references, its log records in the
// batches of the changes, and it is deleted, with its log (one range
// delete), in the batch of its last reference: after a crash every
// member and reference has its body, and every member its log. A body
// nobody refers to is deleted by the next Load.
//
// Memory: the index holds, for every stored member or record that refers
// to a body, 24 bytes in its session's list (by seq), and for every body
// one struct and one entry by *Message. The broker keeps each of those
// outbound messages in memory itself (its queues and in-flight windows,
// bounded by MaxQueued, MaxQueuedBytes and the window), so the index adds
// a small share to what those limits bound; a message for one session has
// no entry at all once its batch is committed.

// body is a stored message and the number of records that refer to it.
type body struct {
	id   uint64 // 0 until the batch of its first records is sealed
	msg  *store.Message
	refs int    // members and records that refer to it, once stored
	logN uint32 // number of its next log record; > 0: it has a log

	// In its first batch: the records of the message, in order; heads
	// holds their heads (appendHead for a member, appendOutboundHead
	// otherwise).
	pend  []pending
	heads []byte
	live  int // pend entries not dead
	// Changes to members submitted to the pending batch, as a member log
	// record holds them.
	log     []byte
	touched bool // in bodyIndex.touched
}

// pending is one record of a message in the message's first batch.
type pending struct {
	client   string
	seq      uint64
	off, end int32 // its head in body.heads
	member   bool  // a member; else a record that refers to the body
	dead     bool  // superseded within the batch
}

// ref says how a record refers to a body: as its member idx, or (member
// false, once the body is stored) as an outbound record.
type ref struct {
	seq    uint64
	bd     *body
	idx    int32
	member bool
}

// sessionRefs is what the index knows of one session's records.
type sessionRefs struct {
	// hwm is the highest seq written for the session since it was
	// (last) deleted: no record has a higher one.
	hwm  uint64
	refs []ref // the records that refer to a body, by seq; refs[:head] are gone
	head int
}

func (s *sessionRefs) live() []ref { return s.refs[s.head:] }

// find returns the index in refs of seq's entry, or -1.
func (s *sessionRefs) find(seq uint64) int {
	r := s.live()
	n := len(r)
	if n == 0 || r[n-1].seq < seq { // a new one, the common case
		return -1
	}
	if r[n-1].seq == seq {
		return s.head + n - 1
	}
	if i, ok := slices.BinarySearchFunc(r, seq, cmpRef); ok {
		return s.head + i
	}
	return -1
}

func cmpRef(r ref, seq uint64) int { return cmp.Compare(r.seq, seq) }

// insert adds r, whose seq has no entry.
func (s *sessionRefs) insert(r ref) {
	live := s.live()
	if n := len(live); n == 0 || live[n-1].seq < r.seq {
		s.refs = append(s.refs, r)
		return
	}
	i, _ := slices.BinarySearchFunc(live, r.seq, cmpRef)
	s.refs = slices.Insert(s.refs, s.head+i, r)
}

// remove drops entry i: at the front (acknowledged in order) in O(1).
func (s *sessionRefs) remove(i int) {
	if i != s.head {
		s.refs = slices.Delete(s.refs, i, i+1)
		return
	}
	s.refs[i] = ref{}
	s.head++
	switch {
	case s.head == len(s.refs):
		s.refs, s.head = s.refs[:0], 0
	case s.head >= 256 && 2*s.head >= len(s.refs):
		n := copy(s.refs, s.refs[s.head:])
		clear(s.refs[n:])
		s.refs, s.head = s.refs[:n], 0
	}
}

// bodyIndex is guarded by committer.mu: it changes in the order of the
// writes that record the changes.
type bodyIndex struct {
	next     uint64 // id of the next body; ids start at 1
	byMsg    map[*store.Message]*body
	sessions map[string]*sessionRefs
	// loaded: the index knows every stored outbound record (Load ran, or
	// the store was empty), so members may be made.
	loaded bool
	// Sessions deleted before Load: their stored members are stale.
	early map[string]bool

	touched []*body // bodies with writes held for the seal
	last    *body   // the body of the latest put, for a fan-out's next
	// Bodies of messages that went to one record (or none), kept with
	// their first-batch buffers for the next message: no allocation per
	// message that is not shared.
	free    []*body
	entries []byte // scratch for member entries
}

func (x *bodyIndex) init(next uint64, loaded bool) {
	x.next = max(next, 1)
	x.byMsg = make(map[*store.Message]*body)
	x.sessions = make(map[string]*sessionRefs)
	x.loaded = loaded
	x.early = make(map[string]bool)
	x.touched, x.last = nil, nil
}

func (x *bodyIndex) session(client string) *sessionRefs {
	s := x.sessions[client]
	if s == nil {
		s = &sessionRefs{}
		x.sessions[client] = s
	}
	return s
}

func (x *bodyIndex) touch(bd *body) {
	if !bd.touched {
		bd.touched = true
		x.touched = append(x.touched, bd)
	}
}

// forget drops bd from the index by message.
func (x *bodyIndex) forget(bd *body) {
	if x.byMsg[bd.msg] == bd {
		delete(x.byMsg, bd.msg)
	}
	if x.last == bd {
		x.last = nil
	}
}

// put writes (or holds back) the record of o under client.
func (x *bodyIndex) put(w writer, buf []byte, client string, o *store.Outbound) []byte {
	s := x.session(client)
	m := o.Message
	if i := s.find(o.Seq); i >= 0 {
		r := s.refs[i]
		bd := r.bd
		switch {
		case bd.id == 0: // superseded within its first batch
			x.kill(bd, r.idx)
			if m == bd.msg {
				s.refs[i].idx = x.addPending(bd, client, o, r.member && headable(o))
				s.refs[i].member = r.member && headable(o)
				return buf
			}
			s.remove(i)
		case m == bd.msg && r.member && headable(o):
			bd.log = appendLogSet(bd.log, int(r.idx), o)
			x.touch(bd)
			return buf
		case m == bd.msg && !r.member:
			return x.writeRecord(w, buf, client, o, bd.id)
		default: // another message now, or none
			if r.member {
				bd.log = appendLogDelete(bd.log, int(r.idx))
				x.touch(bd)
			}
			s.remove(i)
			buf = x.release(w, buf, bd)
		}
	}
	member := x.loaded && o.Seq > s.hwm && client != "" && headable(o)
	s.hwm = max(s.hwm, o.Seq)
	if m == nil {
		return x.writeRecord(w, buf, client, o, 0)
	}
	bd := x.last
	if bd == nil || bd.msg != m {
		if bd = x.byMsg[m]; bd == nil {
			bd = x.newBody(m)
		}
		x.last = bd
	}
	if bd.id == 0 {
		idx := x.addPending(bd, client, o, member)
		s.insert(ref{seq: o.Seq, bd: bd, idx: idx, member: member})
		return buf
	}
	bd.refs++
	s.insert(ref{seq: o.Seq, bd: bd, idx: -1})
	return x.writeRecord(w, buf, client, o, bd.id)
}

// delete deletes the record (client, seq).
func (x *bodyIndex) delete(w writer, buf []byte, client string, seq uint64) []byte {
	if s := x.sessions[client]; s != nil {
		if i := s.find(seq); i >= 0 {
			r := s.refs[i]
			s.remove(i)
			switch bd := r.bd; {
			case bd.id == 0:
				x.kill(bd, r.idx)
				if r.member {
					return buf // nothing stored under its key
				}
			case r.member:
				bd.log = appendLogDelete(bd.log, int(r.idx))
				x.touch(bd)
				return x.release(w, buf, bd)
			default:
				buf = x.release(w, buf, bd)
			}
		}
	}
	buf = appendSeqKey(buf[:0], client, seq)
	w.delete(buf)
	return buf
}

// dropSession forgets client's records, deleting its members in their
// bodies' logs, and releases every body they refer to.
func (x *bodyIndex) dropSession(w writer, buf []byte, client string) []byte {
	if !x.loaded {
		x.early[client] = true
	}
	s := x.sessions[client]
	if s == nil {
		return buf
	}
	delete(x.sessions, client)
	for _, r := range s.live() {
		switch bd := r.bd; {
		case bd.id == 0:
			x.kill(bd, r.idx)
		case r.member:
			bd.log = appendLogDelete(bd.log, int(r.idx))
			x.touch(bd)
			buf = x.release(w, buf, bd)
		default:
			buf = x.release(w, buf, bd)
		}
	}
	return buf
}

func (x *bodyIndex) newBody(m *store.Message) *body {
	var bd *body
	if n := len(x.free); n > 0 {
		bd, x.free = x.free[n-1], x.free[:n-1]
		bd.msg = m
	} else {
		bd = &body{msg: m}
	}
	x.byMsg[m] = bd
	x.touch(bd)
	return bd
}

// addPending holds o's record back in bd's first batch and returns its
// index.
func (x *bodyIndex) addPending(bd *body, client string, o *store.Outbound, member bool) int32 {
	off := len(bd.heads)
	if member {
		bd.heads = appendHead(bd.heads, o)
	} else {
		bd.heads = appendOutboundHead(bd.heads, o)
	}
	bd.pend = append(bd.pend, pending{client: client, seq: o.Seq, off: int32(off), end: int32(len(bd.heads)), member: member})
	bd.live++
	return int32(len(bd.pend) - 1)
}

func (x *bodyIndex) kill(bd *body, idx int32) {
	bd.pend[idx].dead = true
	bd.live--
}

// writeRecord writes o's outbound record, referring to body ref or, when
// ref is 0, with its message inline.
func (x *bodyIndex) writeRecord(w writer, buf []byte, client string, o *store.Outbound, ref uint64) []byte {
	buf = appendSeqKey(buf[:0], client, o.Seq)
	k := len(buf)
	buf = appendOutbound(buf, o, ref)
	w.set(buf[:k], buf[k:])
	return buf
}

// writePending writes a held record as an outbound record, referring to
// body ref or with the message inline.
func (x *bodyIndex) writePending(w writer, buf []byte, bd *body, p pending, ref uint64) []byte {
	if p.member {
		o := store.Outbound{Seq: p.seq, Message: bd.msg}
		d := decoder{B: bd.heads[p.off+1 : p.end]}
		decodeHead(&d, bd.heads[p.off], &o)
		return x.writeRecord(w, buf, p.client, &o, ref)
	}
	buf = appendSeqKey(buf[:0], p.client, p.seq)
	k := len(buf)
	buf = append(buf, bd.heads[p.off:p.end]...)
	buf = finishOutbound(buf, k, bd.msg, ref)
	w.set(buf[:k], buf[k:])
	return buf
}

// seal writes what the pending batch held back: each new body with its
// members (or the one record of a message not shared, inline), and each
// body's member log record. The committer calls it before it takes the
// pending batch.
func (x *bodyIndex) seal(w writer, buf []byte) []byte {
	for _, bd := range x.touched {
		bd.touched = false
		if bd.id == 0 {
			buf = x.sealFirst(w, buf, bd)
			continue
		}
		if bd.refs > 0 && len(bd.log) > 0 {
			buf = appendLogKey(buf[:0], bd.id, bd.logN)
			k := len(buf)
			buf = seal(append(begin(buf), bd.log...), k)
			w.set(buf[:k], buf[k:])
			bd.logN++
		}
		bd.log = bd.log[:0]
		if cap(bd.log) > 4096 {
			bd.log = nil
		}
	}
	clear(x.touched)
	x.touched, x.last = x.touched[:0], nil
	if cap(x.touched) > 4096 {
		x.touched = nil
	}
	return buf
}

// sealFirst writes the records of bd's first batch.
func (x *bodyIndex) sealFirst(w writer, buf []byte, bd *body) []byte {
	switch bd.live {
	case 0:
		x.forget(bd)
	case 1: // not shared: inline, no body
		x.forget(bd)
		for _, p := range bd.pend {
			if !p.dead {
				if s := x.sessions[p.client]; s != nil {
					if i := s.find(p.seq); i >= 0 {
						s.remove(i)
					}
				}
				buf = x.writePending(w, buf, bd, p, 0)
			}
		}
	default:
		bd.id, bd.refs = x.next, bd.live
		x.next++
		var enc memberEncoder
		ents, members := x.entries[:0], 0
		for _, p := range bd.pend {
			if p.dead || !p.member {
				ents = enc.gone(ents)
				continue
			}
			ents = enc.member(ents, bd.heads[p.off:p.end], p.client, p.seq)
			members++
		}
		buf = appendBodyKey(buf[:0], bd.id)
		k := len(buf)
		n := len(bd.pend)
		if members == 0 {
			n = 0
		}
		buf = appendBodyRecord(buf, bd.msg, n, ents)
		w.set(buf[:k], buf[k:])
		if cap(ents) <= 256<<10 {
			x.entries = ents[:0]
		}
		if members < bd.live {
			for _, p := range bd.pend {
				if !p.dead && !p.member {
					buf = x.writePending(w, buf, bd, p, bd.id)
				}
			}
		}
	}
	// The first batch's buffers go to the next new body; with the body
	// itself when it is not stored (nothing refers to it any more).
	pend, heads := bd.pend, bd.heads
	bd.pend, bd.heads, bd.live = nil, nil, 0
	if cap(pend) > 4096 || len(x.free) >= 8 {
		return buf
	}
	clear(pend)
	if bd.id == 0 {
		*bd = body{pend: pend[:0], heads: heads[:0]}
		x.free = append(x.free, bd)
	} else {
		x.free = append(x.free, &body{pend: pend[:0], heads: heads[:0]})
	}
	return buf
}

// release drops one reference to bd, and deletes bd and its log with the
// last.
func (x *bodyIndex) release(w writer, buf []byte, bd *body) []byte {
	if bd.refs--; bd.refs > 0 {
		return buf
	}
	x.forget(bd)
	bd.log = bd.log[:0]
	buf = appendBodyKey(buf[:0], bd.id)
	w.delete(buf)
	if bd.logN > 0 {
		buf = appendLogRange(buf[:0], bd.id)
		w.deleteRange(buf[:9], buf[9:])
	}
	return buf
}

// lastBodyID returns the highest body id in db (of a body or of a member
// log), 0 when there is none.
func lastBodyID(db *pebble.DB) (uint64, error) {
	var id uint64
	for _, kind := range []byte{kindBody, kindLog} {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
		if err != nil {
			return 0, err
		}
		for it.Last(); it.Valid(); it.Prev() {
			if k := it.Key(); len(k) >= 9 {
				id = max(id, binary.BigEndian.Uint64(k[1:]))
				break
			}
		}
		if err := it.Close(); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// hasOutbound reports whether db holds any outbound record or body: if
// not, the index of an empty store is complete before Load.
func hasOutbound(db *pebble.DB) (bool, error) {
	for _, kind := range []byte{kindBody, kindOutbound} {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
		if err != nil {
			return false, err
		}
		found := it.First()
		if err := it.Close(); err != nil {
			return false, err
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}
