package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ternmq/tern/store"
)

// Durability says when a write counts as done.
type Durability int

const (
	// Sync: a write is done once fsynced. Group commit shares each fsync
	// among everything submitted meanwhile.
	Sync Durability = iota
	// Batch: a write is done once written; the log is fsynced every
	// SyncInterval, so a machine crash may lose that much.
	Batch
	// None: a write is done once written, and never fsynced by the broker.
	None
)

// ParseDurability reads "sync", "batch" or "none".
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "sync", "":
		return Sync, nil
	case "batch":
		return Batch, nil
	case "none":
		return None, nil
	}
	return 0, fmt.Errorf("durability %q: want sync, batch or none", s)
}

func (d Durability) String() string {
	return [...]string{"sync", "batch", "none"}[d]
}

// Options configure a Store.
type Options struct {
	Durability   Durability
	SyncInterval time.Duration // for Batch; default 100ms
	Logger       *slog.Logger  // default: discard
	// OnCommit, if not nil, is called by the committer after each group
	// commit that wrote something, with how long the commit took (with
	// its fsync at the Sync level) and how many records (sets and
	// deletes) it wrote. It runs after the waiting writers are woken and
	// before the next group is committed: it must be quick.
	OnCommit func(d time.Duration, records int)
}

// Store is a store.Store kept in a Pebble database.
type Store struct {
	db  *pebble.DB
	dir string
	log *slog.Logger
	committer
	bodies bodyIndex // guarded by committer.mu
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the store in dir.
func Open(dir string, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = 100 * time.Millisecond
	}
	db, err := pebble.Open(dir, &pebble.Options{
		Logger:             pebbleLogger{o.Logger},
		FormatMajorVersion: pebble.FormatNewest,
		// Queued messages are short-lived: a larger memtable lets most of
		// them be written and deleted before they reach an sstable.
		MemTableSize: 32 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	last, err := lastBodyID(db)
	var stored bool
	if err == nil {
		stored, err = hasOutbound(db)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, log: o.Logger}
	s.bodies.init(last+1, !stored)
	s.onCommit = o.OnCommit
	s.seal = func(w writer) {
		bp := bufPool.Get().(*[]byte)
		*bp = s.bodies.seal(w, *bp)
		bufPool.Put(bp)
	}
	s.start(db, o.Durability, o.SyncInterval)
	return s, nil
}

// Close commits what is pending and closes the database.
func (s *Store) Close() error {
	s.stop()
	return s.db.Close()
}

// Stats counts since Open: commits (groups written), fsyncs, and the
// records committed (sets, deletes and range deletes) with the bytes of
// their keys and values.
type Stats struct {
	Commits, Syncs uint64
	Records, Bytes uint64
}

func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Syncs: s.syncs.Load(),
		Records: s.records.Load(), Bytes: s.bytes.Load()}
}

func (s *Store) Wait(t store.Ticket) error { return s.wait(t) }
func (s *Store) Atomic(f func())           { s.atomic(f) }

// Scratch buffers for encoding: the batch copies what it is given.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// put encodes a record with key and value appenders and submits it.
func (s *Store) put(op int, key, value func([]byte) []byte) store.Ticket {
	bp := bufPool.Get().(*[]byte)
	b := key((*bp)[:0])
	k := len(b)
	if value != nil {
		b = value(b)
	}
	t := s.apply(op, b, k)
	*bp = b
	bufPool.Put(bp)
	return t
}

func (s *Store) PutSession(sess store.Session) store.Ticket {
	return s.put(opSet,
		func(b []byte) []byte { return appendKey(b, kindSession, sess.ClientID) },
		func(b []byte) []byte { return appendSession(b, &sess) })
}

// DeleteSession deletes the session's records, one range per kind, and
// the message bodies only they referred to, in one batch.
func (s *Store) DeleteSession(id string) store.Ticket {
	bp := bufPool.Get().(*[]byte)
	b := *bp
	t := s.submit(func(w writer) {
		b = appendKey(b[:0], kindSession, id)
		w.delete(b)
		for _, kind := range sessionKinds {
			b = appendPrefix(b[:0], kind, id)
			k := len(b)
			b = append(appendKey(b, kind, id), 1)
			w.deleteRange(b[:k], b[k:])
		}
		b = s.bodies.dropSession(w, b, id)
	})
	*bp = b
	bufPool.Put(bp)
	return t
}

func (s *Store) PutSubscription(id string, sub store.Subscription) store.Ticket {
	return s.put(opSet,
		func(b []byte) []byte { return append(appendPrefix(b, kindSubscription, id), sub.Filter...) },
		func(b []byte) []byte { return appendSubscription(b, &sub) })
}

func (s *Store) DeleteSubscription(id, filter string) store.Ticket {
	return s.put(opDelete, func(b []byte) []byte {
		return append(appendPrefix(b, kindSubscription, id), filter...)
	}, nil)
}

// PutOutbound writes o's record: its message inline, or a reference to
// the message's body when other records share it (bodies.go).
func (s *Store) PutOutbound(id string, o store.Outbound) store.Ticket {
	bp := bufPool.Get().(*[]byte)
	b := *bp
	t := s.submit(func(w writer) { b = s.bodies.put(w, b, id, &o) })
	*bp = b
	bufPool.Put(bp)
	return t
}

func (s *Store) DeleteOutbound(id string, seq uint64) store.Ticket {
	bp := bufPool.Get().(*[]byte)
	b := *bp
	t := s.submit(func(w writer) { b = s.bodies.delete(w, b, id, seq) })
	*bp = b
	bufPool.Put(bp)
	return t
}

func (s *Store) PutInboundQoS2(id string, in store.Inbound) store.Ticket {
	return s.put(opSet, func(b []byte) []byte { return appendInboundKey(b, id, in.PacketID) },
		func(b []byte) []byte { return appendInbound(b, in.Token) })
}

func (s *Store) DeleteInboundQoS2(id string, pid uint16) store.Ticket {
	return s.put(opDelete, func(b []byte) []byte { return appendInboundKey(b, id, pid) }, nil)
}

func (s *Store) PutRetained(m *store.Message) store.Ticket {
	return s.put(opSet,
		func(b []byte) []byte { return appendKey(b, kindRetained, m.Topic) },
		func(b []byte) []byte { return appendMessageRecord(b, m) })
}

func (s *Store) DeleteRetained(topic string) store.Ticket {
	return s.put(opDelete, func(b []byte) []byte { return appendKey(b, kindRetained, topic) }, nil)
}

// Load reads everything back. A record that fails its checksum or does
// not parse is reported, deleted and skipped, and so is a record whose
// session is gone or whose message body is missing, and a body no record
// refers to; a member whose session is gone is deleted in its body's log:
// the broker starts with what is valid, never with a guess. An error from
// the database itself fails the load.
//
// Each message body is decoded once: the outbound messages of its members
// and of the records that refer to it share one *store.Message, which
// PutOutbound then recognizes. Load rebuilds the index of bodies from
// what it reads, so it must not run while other writes are submitted (the
// broker loads before it starts).
func (s *Store) Load() ([]store.SessionState, []*store.Message, error) {
	if err := s.flush(); err != nil {
		return nil, nil, err
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	s.mu.Lock()
	early := s.bodies.early
	s.mu.Unlock()
	l := loader{sessions: make(map[string]*loadSession), bodies: make(map[uint64]*loadBody), early: early}
	l.index.init(0, true)
	for it.First(); it.Valid(); it.Next() {
		l.record(it.Key(), it.Value())
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, nil, fmt.Errorf("store: reading %s: %w", s.dir, err)
	}
	states := l.states()
	repairs := 0
	for _, lb := range l.order {
		bd := lb.bd
		if bd.refs == 0 {
			l.dropBody(bd)
			continue
		}
		l.index.byMsg[bd.msg] = bd
		repairs += len(lb.gone)
	}
	s.mu.Lock()
	l.index.next = s.bodies.next
	s.bodies = l.index
	s.mu.Unlock()
	if len(l.bad) > 0 || len(l.badLogs) > 0 || repairs > 0 {
		t := s.submit(func(w writer) {
			for _, k := range l.bad {
				w.delete(k)
			}
			for _, r := range l.badLogs {
				w.deleteRange(r[:9], r[9:])
			}
			for _, lb := range l.order {
				if lb.bd.refs > 0 && len(lb.gone) > 0 {
					for _, idx := range lb.gone {
						lb.bd.log = appendLogDelete(lb.bd.log, idx)
					}
					s.bodies.touch(lb.bd)
				}
			}
		})
		if err := s.Wait(t); err != nil {
			return nil, nil, err
		}
		slices.SortFunc(l.bad, bytes.Compare)
		first := ""
		if len(l.bad) > 0 {
			first = fmt.Sprintf("%q", l.bad[0])
		}
		s.log.Error("store: skipped and deleted damaged or orphaned records",
			"dir", s.dir, "count", len(l.bad), "members", repairs, "first", first)
	}
	return states, l.retained, nil
}

// loader gathers records in key order.
type loader struct {
	sessions map[string]*loadSession
	retained []*store.Message
	bodies   map[uint64]*loadBody
	order    []*loadBody     // by id
	early    map[string]bool // sessions deleted before Load
	index    bodyIndex       // the bodies the loaded records refer to
	later    [][2][]byte     // per-session records, key and value
	bad      [][]byte        // keys of records to drop
	badLogs  [][]byte        // member logs to drop (appendLogRange)
}

// loadSession is a session as loaded, with where each of its outbound
// messages comes from.
type loadSession struct {
	st      store.SessionState
	origins []origin // one per st.Outbound
}

// origin is a loaded outbound message's record: inline (bd nil), a
// record that refers to bd, or member idx of bd.
type origin struct {
	bd     *body
	idx    int32
	member bool
}

// loadBody is a body as read: its members not yet decoded, the changes
// its log makes to them, and the members to delete in its log.
type loadBody struct {
	bd      *body
	n       uint64 // entries
	entries []byte
	changes map[uint64]change
	gone    []int
}

// change is what a body's log says of a member in the end.
type change struct {
	deleted bool
	head    store.Outbound
}

func (l *loader) record(k, v []byte) {
	if len(k) == 0 {
		l.drop(k)
		return
	}
	switch k[0] {
	case kindSession:
		if sess, err := decodeSession(v); err == nil && sess.ClientID == string(k[1:]) {
			l.sessions[sess.ClientID] = &loadSession{st: store.SessionState{Session: sess}}
			return
		}
	case kindRetained:
		if m, err := decodeMessageRecord(v); err == nil && m.Topic == string(k[1:]) {
			l.retained = append(l.retained, m)
			return
		}
	case kindBody:
		if len(k) != 9 {
			break
		}
		id := binary.BigEndian.Uint64(k[1:])
		if m, n, entries, err := decodeBodyRecord(v); err == nil && validMembers(n, entries) {
			lb := &loadBody{bd: &body{id: id, msg: m}, n: n, entries: bytes.Clone(entries)}
			l.bodies[id] = lb
			l.order = append(l.order, lb)
			return
		}
		l.badLogs = append(l.badLogs, appendLogRange(nil, id))
	case kindLog:
		// After every body in key order.
		if len(k) != 13 {
			break
		}
		lb := l.bodies[binary.BigEndian.Uint64(k[1:])]
		if lb == nil {
			break
		}
		lb.bd.logN = max(lb.bd.logN, binary.BigEndian.Uint32(k[9:])+1)
		if l.applyLog(lb, v) {
			return
		}
	default:
		// Per-session records: attached once every session and body is
		// known.
		l.later = append(l.later, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
		return
	}
	l.drop(k)
}

// validMembers reports whether n member entries decode.
func validMembers(n uint64, entries []byte) bool {
	d := decoder{B: entries}
	md := memberDecoder{d: &d}
	var o store.Outbound
	for i := uint64(0); i < n && d.Err == nil; i++ {
		md.next(&o)
	}
	return d.Done() == nil
}

// applyLog applies one record of lb's member log, if it decodes whole.
func (l *loader) applyLog(lb *loadBody, v []byte) bool {
	d, err := unseal(v)
	if err != nil {
		return false
	}
	type entry struct {
		idx uint64
		c   change
	}
	var entries []entry
	for len(d.B) > 0 && d.Err == nil {
		var e entry
		e.idx, e.c.deleted = logEntry(&d, &e.c.head)
		entries = append(entries, e)
	}
	if d.Done() != nil {
		return false
	}
	if lb.changes == nil {
		lb.changes = make(map[uint64]change, len(entries))
	}
	for _, e := range entries {
		lb.changes[e.idx] = e.c
	}
	return true
}

func (l *loader) drop(k []byte) { l.bad = append(l.bad, bytes.Clone(k)) }

// dropBody deletes a body and its log.
func (l *loader) dropBody(bd *body) {
	l.drop(appendBodyKey(nil, bd.id))
	if bd.logN > 0 {
		l.badLogs = append(l.badLogs, appendLogRange(nil, bd.id))
	}
}

// attach adds one per-session record to ls and reports whether it was
// valid.
func (l *loader) attach(ls *loadSession, kind byte, suffix, v []byte) bool {
	st := &ls.st
	switch kind {
	case kindSubscription:
		sub, err := decodeSubscription(v)
		if err != nil || sub.Filter != string(suffix) {
			return false
		}
		st.Subscriptions = append(st.Subscriptions, sub)
	case kindOutbound:
		o, ref, err := decodeOutbound(v)
		if err != nil || len(suffix) != 8 || o.Seq != binary.BigEndian.Uint64(suffix) {
			return false
		}
		var from origin
		if ref != 0 {
			lb := l.bodies[ref]
			if lb == nil {
				return false
			}
			o.Message = lb.bd.msg
			from = origin{bd: lb.bd, idx: -1}
		}
		st.Outbound = append(st.Outbound, o)
		ls.origins = append(ls.origins, from)
	case kindInbound:
		d, err := unseal(v)
		if err != nil || len(suffix) != 2 {
			return false
		}
		token, err := d.InboundToken()
		if err != nil {
			return false
		}
		st.InboundQoS2 = append(st.InboundQoS2, store.Inbound{PacketID: binary.BigEndian.Uint16(suffix), Token: token})
	default:
		return false
	}
	return true
}

// members adds the members of every body, as their logs leave them, to
// their sessions; a member whose session is gone (or was deleted before
// Load) is to be deleted.
func (l *loader) members() {
	for _, lb := range l.order {
		d := decoder{B: lb.entries}
		md := memberDecoder{d: &d}
		for i := uint64(0); i < lb.n; i++ {
			var o store.Outbound
			if !md.next(&o) {
				continue
			}
			if c, ok := lb.changes[i]; ok {
				if c.deleted {
					continue
				}
				seq := o.Seq
				o = c.head
				o.Seq = seq
			}
			ls := l.sessions[string(md.client)]
			if ls == nil || l.early[string(md.client)] {
				lb.gone = append(lb.gone, int(i))
				continue
			}
			o.Message = lb.bd.msg
			ls.st.Outbound = append(ls.st.Outbound, o)
			ls.origins = append(ls.origins, origin{bd: lb.bd, idx: int32(i), member: true})
		}
		lb.entries, lb.changes = nil, nil
	}
}

func (l *loader) states() []store.SessionState {
	for _, kv := range l.later {
		id, suffix, ok := splitKey(kv[0])
		ls := l.sessions[id]
		if !ok || ls == nil || !l.attach(ls, kv[0][0], suffix, kv[1]) {
			l.drop(kv[0])
		}
	}
	l.later = nil
	l.members()
	out := make([]store.SessionState, 0, len(l.sessions))
	for id, ls := range l.sessions {
		l.resolve(id, ls)
		out = append(out, ls.st)
	}
	slices.SortFunc(out, func(a, b store.SessionState) int { return strings.Compare(a.Session.ClientID, b.Session.ClientID) })
	return out
}

// resolve puts a session's outbound messages in seq order, keeps one per
// seq (a record before a member, a newer body's member before an older
// one's: two only come from damage) and indexes the ones that refer to a
// body.
func (l *loader) resolve(id string, ls *loadSession) {
	o := ls.st.Outbound
	if len(o) == 0 {
		return
	}
	byseq := outboundBySeq{ls}
	if !sort.IsSorted(byseq) {
		sort.Sort(byseq)
	}
	sr := &sessionRefs{}
	n := 0
	for i := 0; i < len(o); {
		j, win := i+1, i
		for ; j < len(o) && o[j].Seq == o[i].Seq; j++ {
			if a, b := ls.origins[win], ls.origins[j]; a.member && (!b.member || b.bd.id > a.bd.id) {
				win = j
			}
		}
		for k := i; k < j; k++ {
			if from := ls.origins[k]; k != win && from.member { // (a record never loses)
				lb := l.bodies[from.bd.id]
				lb.gone = append(lb.gone, int(from.idx))
			}
		}
		from := ls.origins[win]
		o[n], ls.origins[n] = o[win], from
		n++
		if from.bd != nil {
			from.bd.refs++
			sr.refs = append(sr.refs, ref{seq: o[win].Seq, bd: from.bd, idx: from.idx, member: from.member})
		}
		sr.hwm = o[win].Seq
		i = j
	}
	clear(o[n:])
	ls.st.Outbound, ls.origins = o[:n], nil
	l.index.sessions[id] = sr
}

// outboundBySeq sorts a session's outbound messages and their origins.
type outboundBySeq struct{ ls *loadSession }

func (s outboundBySeq) Len() int { return len(s.ls.st.Outbound) }
func (s outboundBySeq) Less(i, j int) bool {
	return s.ls.st.Outbound[i].Seq < s.ls.st.Outbound[j].Seq
}
func (s outboundBySeq) Swap(i, j int) {
	o, r := s.ls.st.Outbound, s.ls.origins
	o[i], o[j] = o[j], o[i]
	r[i], r[j] = r[j], r[i]
}

// pebbleLogger sends Pebble's errors to the broker's log and drops its
// chatter.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(string, ...any) {}
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("store: " + fmt.Sprintf(format, args...))
}
func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error("store: fatal: " + fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
