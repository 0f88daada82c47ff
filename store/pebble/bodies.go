package pebble

import (
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ternmq/tern/store"
)

// Message bodies. The broker hands PutOutbound the same *store.Message for
// every session it queues a message for, in one Atomic group when a client
// publishes it. A message shared by several outbound records is stored
// once, as a body record m<id> with an id the store assigns, which the
// records refer to by id; rewriting a record (its state or packet id
// changes) rewrites only the small record. The body is deleted with the
// last record that refers to it: DeleteOutbound, DeleteSession, or a
// PutOutbound that drops or replaces the message.
//
// A message most often goes to one session, and a body and a reference
// would then cost two records instead of one (and two deletes). So the
// first record of a message not yet stored is held back until its batch
// is committed: if no other record refers to the message by then, it is
// written with the message inline, as before bodies existed (and so is
// each rewrite of that record, unless the message has a body by then);
// if another one does, the body is written and both records refer to
// it, and so do all later records of the message while the body lives.
// A message whose
// records are spread over several commits (routed outside an Atomic
// group) gets a copy of its own in each commit that holds just one of
// them before it has a body: as many copies as before bodies, at worst.
//
// Crash consistency: everything here happens in committer.submit and
// committer.loop's seal, with the pending batch's lock held, and a body
// is written in the batch of its first reference and deleted in the batch
// of its last, so that one commit holds both: after a crash every
// reference has its body. A body nobody refers to (records deleted before
// Load ran in this process, or a damaged record dropped) is deleted by
// the next Load.
//
// Memory: the index holds, for every stored record that refers to a
// body, one entry (seq -> body) in its session's map, and for every body
// one struct and one entry by *Message. The broker keeps each of those
// outbound messages in memory itself (its queues and in-flight windows,
// bounded by MaxQueued, MaxQueuedBytes and the window), so the index adds
// a small share (tens of bytes per record) to what those limits bound; a
// message for one session has no entry at all once its batch is
// committed. The records held back are those of one pending batch.

// body is a stored message and the number of records that refer to it.
type body struct {
	id   uint64
	msg  *store.Message
	refs int
}

// outKey names an outbound record.
type outKey struct {
	client string
	seq    uint64
}

// heldRecord is an outbound record held back until its batch is
// committed: heads[off:off+klen] is its key, heads[off+klen:end] its
// value without the message (appendOutboundHead). m is nil once it is
// written or superseded.
type heldRecord struct {
	m              *store.Message
	key            outKey
	off, klen, end int
}

// bodyIndex is guarded by committer.mu: it changes in the order of the
// writes that record the changes.
type bodyIndex struct {
	next      uint64 // id of the next body; ids start at 1
	byMsg     map[*store.Message]*body
	bySession map[string]map[uint64]*body // client id -> seq -> body

	// The pending batch's records held back, and where.
	held   []heldRecord
	heldBy map[*store.Message]int // index in held
	heldAt map[outKey]int
	heads  []byte
}

func (x *bodyIndex) init(next uint64) {
	x.next = max(next, 1)
	x.byMsg = make(map[*store.Message]*body)
	x.bySession = make(map[string]map[uint64]*body)
	x.heldBy = make(map[*store.Message]int)
	x.heldAt = make(map[outKey]int)
	x.held, x.heads = nil, nil
}

// put writes (or holds back) the record of o under client.
func (x *bodyIndex) put(w writer, buf []byte, client string, o *store.Outbound) []byte {
	key := outKey{client, o.Seq}
	x.unhold(key) // superseded within its batch
	m := o.Message
	var bd *body
	if m != nil {
		if bd = x.byMsg[m]; bd == nil {
			i, ok := x.heldBy[m]
			if !ok {
				// Seen first: held back, unless another record refers to
				// m before the batch is committed.
				buf = x.point(w, buf, key, nil)
				x.hold(client, o)
				return buf
			}
			// The second record of m in this batch: m gets a body, and
			// the held record refers to it.
			h := x.held[i]
			x.unhold(h.key)
			bd = &body{id: x.next, msg: m}
			x.next++
			x.byMsg[m] = bd
			buf = appendBodyKey(buf[:0], bd.id)
			k := len(buf)
			buf = appendMessageRecord(buf, m)
			w.set(buf[:k], buf[k:])
			buf = x.writeHeld(w, buf, h, bd.id)
			buf = x.point(w, buf, h.key, bd)
		}
	}
	var ref uint64
	if bd != nil {
		ref = bd.id
	}
	buf = appendSeqKey(buf[:0], client, o.Seq)
	k := len(buf)
	buf = appendOutbound(buf, o, ref)
	w.set(buf[:k], buf[k:])
	return x.point(w, buf, key, bd)
}

// delete deletes the record (client, seq).
func (x *bodyIndex) delete(w writer, buf []byte, client string, seq uint64) []byte {
	key := outKey{client, seq}
	x.unhold(key)
	buf = appendSeqKey(buf[:0], client, seq)
	w.delete(buf)
	return x.point(w, buf, key, nil)
}

// hold keeps o's record back until its batch is committed.
func (x *bodyIndex) hold(client string, o *store.Outbound) {
	h := heldRecord{m: o.Message, key: outKey{client, o.Seq}, off: len(x.heads)}
	x.heads = appendSeqKey(x.heads, client, o.Seq)
	h.klen = len(x.heads) - h.off
	x.heads = appendOutboundHead(x.heads, o)
	h.end = len(x.heads)
	x.heldBy[h.m] = len(x.held)
	x.heldAt[h.key] = len(x.held)
	x.held = append(x.held, h)
}

// unhold forgets the record held back under key, if any.
func (x *bodyIndex) unhold(key outKey) {
	if len(x.heldAt) == 0 {
		return
	}
	i, ok := x.heldAt[key]
	if !ok {
		return
	}
	delete(x.heldAt, key)
	delete(x.heldBy, x.held[i].m)
	x.held[i].m = nil
}

// writeHeld writes a held record, its message inline or by reference.
func (x *bodyIndex) writeHeld(w writer, buf []byte, h heldRecord, ref uint64) []byte {
	buf = append(buf[:0], x.heads[h.off:h.end]...)
	buf = finishOutbound(buf, h.klen, h.m, ref)
	w.set(buf[:h.klen], buf[h.klen:])
	return buf
}

// seal writes the records still held back, each with its message inline:
// no other record of the batch shares it. The committer calls it before
// it takes the pending batch.
func (x *bodyIndex) seal(w writer, buf []byte) []byte {
	for _, h := range x.held {
		if h.m != nil {
			buf = x.writeHeld(w, buf, h, 0)
		}
	}
	// One large batch must not pin its memory: past a bound, start anew.
	if len(x.held) > 4096 {
		x.held, x.heads = nil, nil
		x.heldBy = make(map[*store.Message]int)
		x.heldAt = make(map[outKey]int)
	} else {
		clear(x.held)
		x.held, x.heads = x.held[:0], x.heads[:0]
		clear(x.heldBy)
		clear(x.heldAt)
	}
	return buf
}

// point records that the record key refers to bd, or to no body when bd
// is nil, and releases the body it referred to before.
func (x *bodyIndex) point(w writer, buf []byte, key outKey, bd *body) []byte {
	refs := x.bySession[key.client]
	old := refs[key.seq]
	if old == bd {
		return buf
	}
	if bd != nil {
		if refs == nil {
			refs = make(map[uint64]*body)
			x.bySession[key.client] = refs
		}
		refs[key.seq] = bd
		bd.refs++
	} else {
		delete(refs, key.seq)
		if len(refs) == 0 {
			delete(x.bySession, key.client)
		}
	}
	if old != nil {
		buf = x.release(w, buf, old)
	}
	return buf
}

// dropSession forgets client's held records and releases every body its
// records refer to.
func (x *bodyIndex) dropSession(w writer, buf []byte, client string) []byte {
	for _, h := range x.held {
		if h.m != nil && h.key.client == client {
			x.unhold(h.key)
		}
	}
	for _, bd := range x.bySession[client] {
		buf = x.release(w, buf, bd)
	}
	delete(x.bySession, client)
	return buf
}

// release drops one reference to bd, and deletes bd with the last.
func (x *bodyIndex) release(w writer, buf []byte, bd *body) []byte {
	if bd.refs--; bd.refs > 0 {
		return buf
	}
	delete(x.byMsg, bd.msg)
	buf = appendBodyKey(buf[:0], bd.id)
	w.delete(buf)
	return buf
}

// lastBodyID returns the highest body id in db, 0 when there is none.
func lastBodyID(db *pebble.DB) (uint64, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindBody}, UpperBound: []byte{kindBody + 1}})
	if err != nil {
		return 0, err
	}
	var id uint64
	for it.Last(); it.Valid(); it.Prev() {
		if k := it.Key(); len(k) == 9 {
			id = binary.BigEndian.Uint64(k[1:])
			break
		}
	}
	return id, it.Close()
}
