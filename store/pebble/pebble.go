package pebble

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
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
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, log: o.Logger}
	s.bodies.init(last + 1)
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
// records submitted (sets, deletes and range deletes) with the bytes of
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

func (s *Store) PutInboundQoS2(id string, pid uint16) store.Ticket {
	return s.put(opSet, func(b []byte) []byte { return appendInboundKey(b, id, pid) }, appendEmpty)
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
// refers to: the broker starts with what is valid, never with a guess. An
// error from the database itself fails the load.
//
// Each message body is decoded once: the outbound records that refer to
// it share one *store.Message, which PutOutbound then recognizes. Load
// rebuilds the index of bodies from what it reads, so it must not run
// while other writes are submitted (the broker loads before it starts).
func (s *Store) Load() ([]store.SessionState, []*store.Message, error) {
	if err := s.flush(); err != nil {
		return nil, nil, err
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	l := loader{sessions: make(map[string]*store.SessionState), bodies: make(map[uint64]*body)}
	l.index.init(0)
	for it.First(); it.Valid(); it.Next() {
		l.record(it.Key(), it.Value())
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, nil, fmt.Errorf("store: reading %s: %w", s.dir, err)
	}
	states := l.states()
	for id, bd := range l.bodies {
		if bd.refs == 0 {
			l.drop(appendBodyKey(nil, id))
			continue
		}
		l.index.byMsg[bd.msg] = bd
	}
	s.mu.Lock()
	l.index.next = s.bodies.next
	s.bodies = l.index
	s.mu.Unlock()
	if len(l.bad) > 0 {
		var t store.Ticket
		for _, k := range l.bad {
			t = s.put(opDelete, func(b []byte) []byte { return append(b, k...) }, nil)
		}
		if err := s.Wait(t); err != nil {
			return nil, nil, err
		}
		slices.SortFunc(l.bad, bytes.Compare)
		s.log.Error("store: skipped and deleted damaged or orphaned records",
			"dir", s.dir, "count", len(l.bad), "first", fmt.Sprintf("%q", l.bad[0]))
	}
	return states, l.retained, nil
}

// loader gathers records in key order.
type loader struct {
	sessions map[string]*store.SessionState
	retained []*store.Message
	bodies   map[uint64]*body
	index    bodyIndex   // the bodies the loaded records refer to
	later    [][2][]byte // per-session records, key and value
	bad      [][]byte    // keys of records to drop
}

func (l *loader) record(k, v []byte) {
	if len(k) == 0 {
		l.drop(k)
		return
	}
	var err error
	switch k[0] {
	case kindSession:
		var sess store.Session
		if sess, err = decodeSession(v); err == nil && sess.ClientID == string(k[1:]) {
			l.sessions[sess.ClientID] = &store.SessionState{Session: sess}
			return
		}
	case kindRetained:
		var m *store.Message
		if m, err = decodeMessageRecord(v); err == nil && m.Topic == string(k[1:]) {
			l.retained = append(l.retained, m)
			return
		}
	case kindBody:
		var m *store.Message
		if m, err = decodeMessageRecord(v); err == nil && len(k) == 9 {
			id := binary.BigEndian.Uint64(k[1:])
			l.bodies[id] = &body{id: id, msg: m}
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

func (l *loader) drop(k []byte) { l.bad = append(l.bad, bytes.Clone(k)) }

// attach adds one per-session record to st and reports whether it was
// valid.
func (l *loader) attach(st *store.SessionState, kind byte, suffix, v []byte) bool {
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
		if ref != 0 {
			bd := l.bodies[ref]
			if bd == nil {
				return false
			}
			o.Message = bd.msg
			bd.refs++
			id := st.Session.ClientID
			refs := l.index.bySession[id]
			if refs == nil {
				refs = make(map[uint64]*body)
				l.index.bySession[id] = refs
			}
			refs[o.Seq] = bd
		}
		st.Outbound = append(st.Outbound, o)
	case kindInbound:
		if _, err := unseal(v); err != nil || len(suffix) != 2 {
			return false
		}
		st.InboundQoS2 = append(st.InboundQoS2, binary.BigEndian.Uint16(suffix))
	default:
		return false
	}
	return true
}

func (l *loader) states() []store.SessionState {
	for _, kv := range l.later {
		id, suffix, ok := splitKey(kv[0])
		st := l.sessions[id]
		if !ok || st == nil || !l.attach(st, kv[0][0], suffix, kv[1]) {
			l.drop(kv[0])
		}
	}
	out := make([]store.SessionState, 0, len(l.sessions))
	for _, st := range l.sessions {
		slices.SortFunc(st.Outbound, func(a, b store.Outbound) int { return cmp.Compare(a.Seq, b.Seq) })
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b store.SessionState) int { return strings.Compare(a.Session.ClientID, b.Session.ClientID) })
	return out
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
