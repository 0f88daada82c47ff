package jsstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ternmq/tern/store"
)

// Options configure a Store. Zero values pick the defaults.
type Options struct {
	// Bucket names the key-value bucket (stream KV_<Bucket>); default
	// "tern_state". Every node of a cluster uses the same one.
	Bucket string
	// Node names this node (letters, digits, '-' and '_'), unique in the
	// cluster; it prefixes the ids of the messages this store writes, so
	// that a restarted node can sweep what its earlier run left. Default
	// "node" (fine for a single node).
	Node string
	// Replicas of the bucket: 3 survives the loss of one server. Default 1.
	// An existing bucket is updated to this.
	Replicas int
	// NoRetained makes PutRetained and DeleteRetained no-ops and Load
	// return no retained messages: for a caller that keeps them elsewhere
	// (a cluster's retained stream).
	NoRetained bool
	// WriteTimeout bounds how long a write may stay unacknowledged, resends
	// included, before the store fails. Default 30 s.
	WriteTimeout time.Duration
	// CloseTimeout bounds how long Close waits for what is pending to be
	// acknowledged. Default WriteTimeout.
	CloseTimeout time.Duration
	// AttemptTimeout is how long the store waits for an acknowledgement
	// before it resends. Default 2 s.
	AttemptTimeout time.Duration
	// MarkerTTL is how long a delete's marker stays in the stream. Default
	// 1 min; at least 1 s.
	MarkerTTL time.Duration
	// SweepAfter is the age after which Load removes messages and session
	// records nothing refers to, whoever wrote them. Default 1 h.
	SweepAfter time.Duration
	// MaxBatch is the most messages in one atomic batch: the server's
	// limit (max_batch_size), 1000 by default.
	MaxBatch int
	// Batching says which writes go in atomic batches; by default only
	// atomic groups.
	Batching Batching
	// MaxInflight bounds the writes published and not yet acknowledged.
	// Default 8192.
	MaxInflight int
	// OpTimeout bounds opening the bucket, Load, LoadSession and purges.
	// Default 1 min.
	OpTimeout time.Duration
	Logger    *slog.Logger // default: discard
}

func (o *Options) defaults() error {
	if o.Bucket == "" {
		o.Bucket = "tern_state"
	}
	if !validName(o.Bucket) {
		return fmt.Errorf("jsstore: bucket %q: letters, digits, '-' and '_'", o.Bucket)
	}
	if o.Node == "" {
		o.Node = "node"
	}
	if !validName(o.Node) {
		return fmt.Errorf("jsstore: node %q: 1 to 64 letters, digits, '-' or '_'", o.Node)
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = o.WriteTimeout
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 2 * time.Second
	}
	if o.MarkerTTL <= 0 {
		o.MarkerTTL = time.Minute
	}
	o.MarkerTTL = max(o.MarkerTTL, time.Second).Truncate(time.Second)
	if o.SweepAfter <= 0 {
		o.SweepAfter = time.Hour
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1000
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 8192
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Batching says which writes are published as atomic batches.
//
// A batch takes one acknowledgement where single writes take one each,
// and a replicated stream proposes it in one go; but the server stores
// the batch headers (about 60 bytes) with every write, and while a batch
// is on its way the next group waits, where single writes are pipelined.
// In BenchmarkFanout with three replicas on one 2-core machine, batching
// every group was sometimes faster and sometimes slower than single
// writes, for twice the bytes. With one replica the server stages each
// batch on disk first, which costs milliseconds.
type Batching int

const (
	BatchAtomic Batching = iota // atomic groups only (the default)
	BatchAll                    // every group
)

func (b Batching) String() string {
	if b == BatchAll {
		return "all"
	}
	return "atomic"
}

// ErrClosed is the error for writes after Close.
var ErrClosed = errors.New("jsstore: closed")

// Store is a store.Store kept in a JetStream key-value bucket.
type Store struct {
	opts   Options
	js     jetstream.JetStream
	nc     *nats.Conn
	stream jetstream.Stream
	kv     jetstream.KeyValue
	prefix string // the bucket's subject prefix, "$KV.<bucket>."
	inst   string // this run's instance, random
	log    *slog.Logger

	// hold is held shared by Atomic and exclusively while the committer
	// takes the pending writes, so an atomic group is never split between
	// two groups.
	hold sync.RWMutex

	mu       sync.Mutex // guards the fields below
	pending  []op
	groups   [][2]int     // atomic groups in pending: op index ranges
	next     store.Ticket // the pending group's ticket
	used     bool         // next was handed out
	issued   store.Ticket // the last ticket handed out
	closing  bool
	sessions map[string]*sess
	byPtr    map[*store.Message]*msgEntry
	byID     map[string]*msgEntry
	doomed   []*msgEntry // references reached zero: deleted at the next cut unless used again
	msgN     uint64

	pipe pipeline

	done      sync.Mutex // guards err, with cond
	cond      sync.Cond
	committed atomic.Uint64
	err       error
	broken    atomic.Bool // err is set

	jobs    chan purgeJob
	quit    chan struct{}
	stopped chan struct{} // the committer ended
	bg      sync.WaitGroup
	stats   counters
}

// sess is what the store knows of a session it writes: its generation
// and the message each of its outbound records refers to.
type sess struct {
	gen  string
	outs map[uint64]*msgEntry // nil entry: a record without a message
}

// msgEntry is a message stored once, with the references to it this
// store knows of.
type msgEntry struct {
	id  string
	msg *store.Message
	// refs counts the outbound records of this store's sessions that name
	// the message.
	refs int
	// deletable: refs is complete (the message was written here or learned
	// of from Load, and no session naming it was released), so zero refs
	// means nobody needs it.
	deletable bool
}

var _ store.Store = (*Store)(nil)

// Open opens the bucket, creating it or updating its replicas and the
// settings the store needs, through js.
func Open(ctx context.Context, js jetstream.JetStream, o Options) (*Store, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	s := &Store{
		opts: o, js: js, nc: js.Conn(), prefix: "$KV." + o.Bucket + ".", log: o.Logger,
		next: 1, sessions: make(map[string]*sess),
		byPtr: make(map[*store.Message]*msgEntry), byID: make(map[string]*msgEntry),
		jobs: make(chan purgeJob, 4096), quit: make(chan struct{}), stopped: make(chan struct{}),
	}
	s.cond.L = &s.done
	var b [6]byte
	rand.Read(b[:])
	s.inst = base64.RawURLEncoding.EncodeToString(b[:])
	var err error
	if s.stream, err = openStream(ctx, js, &o); err != nil {
		return nil, err
	}
	if s.kv, err = js.KeyValue(ctx, o.Bucket); err != nil {
		return nil, fmt.Errorf("jsstore: bucket %s: %w", o.Bucket, err)
	}
	if err := s.pipe.start(s); err != nil {
		return nil, err
	}
	go s.loop()
	s.bg.Add(1)
	go s.janitor()
	return s, nil
}

// openStream creates the bucket's stream, or brings an existing one to
// what the store needs, retrying while JetStream is not yet available (a
// cluster electing its leaders).
func openStream(ctx context.Context, js jetstream.JetStream, o *Options) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, o.OpTimeout)
	defer cancel()
	cfg := jetstream.StreamConfig{
		Name:              "KV_" + o.Bucket,
		Description:       "Tern sessions and messages",
		Subjects:          []string{"$KV." + o.Bucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          o.Replicas,
		Discard:           jetstream.DiscardNew,
		Duplicates:        2 * time.Minute,
		// Key-value compatible, so that the usual tools can read it.
		AllowRollup: true,
		DenyDelete:  true,
		AllowDirect: true,
		// Deletes are purge markers that expire.
		AllowMsgTTL: true,
		// Atomic groups are atomic batches.
		AllowAtomicPublish: true,
	}
	for {
		st, err := ensureStream(ctx, js, cfg)
		if err == nil {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("jsstore: bucket %s: %w", o.Bucket, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := js.CreateStream(actx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		if st, err = js.Stream(actx, cfg.Name); err != nil {
			return nil, err
		}
		have := st.CachedInfo().Config
		if !have.AllowAtomicPublish || !have.AllowMsgTTL || !have.AllowRollup || have.Replicas != cfg.Replicas ||
			have.MaxMsgsPerSubject != 1 {
			have.AllowAtomicPublish, have.AllowMsgTTL, have.AllowRollup = true, true, true
			have.Replicas, have.MaxMsgsPerSubject = cfg.Replicas, 1
			st, err = js.UpdateStream(actx, have)
		}
	}
	if err != nil {
		return nil, err
	}
	if c := st.CachedInfo().Config; !c.AllowAtomicPublish || !c.AllowMsgTTL {
		return nil, errors.New("jsstore: the server does not keep atomic publish or message TTLs: nats-server 2.12 or later is needed")
	}
	return st, nil
}

// Close sends what is pending, waits (up to CloseTimeout) until it is
// acknowledged, and stops. It reports a write that failed, or was not
// acknowledged in time.
func (s *Store) Close() error {
	s.mu.Lock()
	already := s.closing
	s.closing = true
	s.mu.Unlock()
	if already {
		return nil
	}
	s.pipe.wake()
	select {
	case <-s.stopped:
	case <-time.After(s.opts.CloseTimeout):
		// No quorum (the other nodes are gone first): what waits was
		// acknowledged to nobody, and stopping must not hang on it.
		s.fail(fmt.Errorf("jsstore: closed with writes unacknowledged after %v", s.opts.CloseTimeout))
		<-s.stopped // the committer sees the failure within a resend's backoff
	}
	close(s.quit)
	s.bg.Wait()
	s.pipe.stop()
	s.done.Lock()
	err := s.err
	if s.err == nil {
		s.err = ErrClosed
		s.broken.Store(true)
	}
	s.cond.Broadcast()
	s.done.Unlock()
	return err
}

// Wait blocks until every write up to t is acknowledged by JetStream (by
// a quorum of the bucket's replicas), or the store has failed.
func (s *Store) Wait(t store.Ticket) error {
	if uint64(t) <= s.committed.Load() {
		return nil
	}
	s.done.Lock()
	defer s.done.Unlock()
	for uint64(t) > s.committed.Load() && s.err == nil {
		s.cond.Wait()
	}
	if uint64(t) <= s.committed.Load() {
		return nil
	}
	return s.err
}

// fail makes the store refuse every later write.
func (s *Store) fail(err error) {
	s.done.Lock()
	if s.err == nil {
		s.err = err
		s.broken.Store(true)
		s.log.Error("jsstore: failed: writes are refused from now on", "bucket", s.opts.Bucket, "err", err)
	}
	s.cond.Broadcast()
	s.done.Unlock()
	s.pipe.wake()
}

// failed returns the error that failed the store, if any.
func (s *Store) failed() error {
	if !s.broken.Load() {
		return nil
	}
	s.done.Lock()
	defer s.done.Unlock()
	return s.err
}

// commit records that every write up to t is acknowledged.
func (s *Store) commit(t store.Ticket) {
	s.done.Lock()
	if uint64(t) > s.committed.Load() {
		s.committed.Store(uint64(t))
	}
	s.cond.Broadcast()
	s.done.Unlock()
	s.stats.commits.Add(1)
}

// never is the ticket of a refused write: Wait returns the store's error.
const never = store.Ticket(^uint64(0))

// begin locks mu for a write; it reports false (mu not held) when writes
// are refused.
func (s *Store) begin() bool {
	s.mu.Lock()
	if s.closing || s.broken.Load() {
		s.mu.Unlock()
		return false
	}
	return true
}

// end hands out the pending group's ticket, unlocks mu and wakes the
// committer.
func (s *Store) end() store.Ticket {
	t := s.next
	s.used, s.issued = true, t
	s.mu.Unlock()
	s.pipe.wake()
	return t
}

// noop is the ticket of a write with nothing to write: the last handed
// out. mu must be held; noop unlocks it.
func (s *Store) noop() store.Ticket {
	t := s.issued
	s.mu.Unlock()
	return t
}

// put adds setting key to v to the pending group. mu must be held.
func (s *Store) put(key string, v []byte) {
	s.pending = append(s.pending, op{subj: s.prefix + key, data: v})
}

// headroom is kept below the connection's maximum payload for the
// headers of a write.
const headroom = 1024

// MaxValueSize is the largest record the store can write through its
// connection (the NATS server's max_payload, less room for headers): a
// message's topic, payload and properties must fit, or the write fails the
// store. Bound the broker's maximum packet size by it.
func (s *Store) MaxValueSize() int { return int(s.nc.MaxPayload()) - headroom }

// purge adds deleting key. mu must be held.
func (s *Store) purge(key string) {
	s.pending = append(s.pending, op{subj: s.prefix + key, purge: true})
}

// session returns what the store knows of session cid, starting a
// generation when it knows nothing. mu must be held.
func (s *Store) session(cid string) *sess {
	ss := s.sessions[cid]
	if ss == nil {
		ss = &sess{gen: newGen(), outs: make(map[uint64]*msgEntry)}
		s.sessions[cid] = ss
	}
	return ss
}

func newGen() string {
	var b [6]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// unref drops one reference to e; at zero it is deleted (or forgotten)
// when the pending group is cut, unless referenced again meanwhile. mu
// must be held.
func (s *Store) unref(e *msgEntry) {
	if e == nil {
		return
	}
	if e.refs--; e.refs == 0 {
		s.doomed = append(s.doomed, e)
	}
}

// message returns the entry for m, writing m the first time. mu must be
// held.
func (s *Store) message(m *store.Message) *msgEntry {
	if e := s.byPtr[m]; e != nil {
		return e
	}
	s.msgN++
	e := &msgEntry{id: s.opts.Node + "." + s.inst + "." + strconv.FormatUint(s.msgN, 36), msg: m, deletable: true}
	s.byPtr[m], s.byID[e.id] = e, e
	s.put(messageKey(e.id), encodeMessage(m))
	s.stats.messages.Add(1)
	return e
}

// forget removes e from the maps. mu must be held.
func (s *Store) forget(e *msgEntry) {
	if s.byID[e.id] == e {
		delete(s.byID, e.id)
	}
	if e.msg != nil && s.byPtr[e.msg] == e {
		delete(s.byPtr, e.msg)
	}
}

func (s *Store) PutSession(sess store.Session) store.Ticket {
	if !s.begin() {
		return never
	}
	ss := s.session(sess.ClientID)
	s.put(sessionKey(sess.ClientID), encodeSession(&sess, ss.gen))
	return s.end()
}

// DeleteSession purges the session key; the session's records go with
// its generation (purged once the delete is acknowledged).
func (s *Store) DeleteSession(cid string) store.Ticket {
	if !s.begin() {
		return never
	}
	s.purge(sessionKey(cid))
	ss := s.sessions[cid]
	if ss != nil {
		for _, e := range ss.outs {
			s.unref(e)
		}
		delete(s.sessions, cid)
	}
	t := s.end()
	if ss != nil {
		s.schedulePurge(t, s.prefix+genPrefix(token(cid), ss.gen)+">")
	}
	return t
}

func (s *Store) PutSubscription(cid string, sub store.Subscription) store.Ticket {
	if !s.begin() {
		return never
	}
	ss := s.session(cid)
	s.put(subscriptionKey(cid, ss.gen, sub.Filter), encodeSubscription(&sub))
	return s.end()
}

func (s *Store) DeleteSubscription(cid, filter string) store.Ticket {
	if !s.begin() {
		return never
	}
	ss := s.sessions[cid]
	if ss == nil {
		return s.noop() // nothing of it written or loaded here
	}
	s.purge(subscriptionKey(cid, ss.gen, filter))
	return s.end()
}

// PutOutbound writes o's record; its message is written once for every
// session it is put for (by pointer), while this store references it.
func (s *Store) PutOutbound(cid string, o store.Outbound) store.Ticket {
	if !s.begin() {
		return never
	}
	ss := s.session(cid)
	var e *msgEntry
	id := ""
	if o.Message != nil {
		e = s.message(o.Message)
		e.refs++
		id = e.id
	}
	if old, ok := ss.outs[o.Seq]; ok {
		s.unref(old)
	}
	ss.outs[o.Seq] = e
	s.put(outboundKey(cid, ss.gen, o.Seq), encodeOutbound(&o, id))
	return s.end()
}

func (s *Store) DeleteOutbound(cid string, seq uint64) store.Ticket {
	if !s.begin() {
		return never
	}
	ss := s.sessions[cid]
	if ss == nil {
		return s.noop()
	}
	if e, ok := ss.outs[seq]; ok {
		s.unref(e)
		delete(ss.outs, seq)
	}
	s.purge(outboundKey(cid, ss.gen, seq))
	return s.end()
}

func (s *Store) PutInboundQoS2(cid string, in store.Inbound) store.Ticket {
	if !s.begin() {
		return never
	}
	ss := s.session(cid)
	s.put(inboundKey(cid, ss.gen, in.PacketID), encodeInbound(in.Token))
	return s.end()
}

func (s *Store) DeleteInboundQoS2(cid string, id uint16) store.Ticket {
	if !s.begin() {
		return never
	}
	ss := s.sessions[cid]
	if ss == nil {
		return s.noop()
	}
	s.purge(inboundKey(cid, ss.gen, id))
	return s.end()
}

// PutRetained stores m as its topic's retained message, unless
// Options.NoRetained.
func (s *Store) PutRetained(m *store.Message) store.Ticket {
	if !s.begin() {
		return never
	}
	if s.opts.NoRetained {
		return s.noop()
	}
	s.put(retainedKey(m.Topic), encodeMessage(m))
	return s.end()
}

func (s *Store) DeleteRetained(topic string) store.Ticket {
	if !s.begin() {
		return never
	}
	if s.opts.NoRetained {
		return s.noop()
	}
	s.purge(retainedKey(topic))
	return s.end()
}

// Atomic runs f; the writes it submits are published as one atomic batch
// (with whatever other goroutines submit meanwhile).
func (s *Store) Atomic(f func()) {
	s.hold.RLock()
	defer s.hold.RUnlock()
	s.mu.Lock()
	start := len(s.pending)
	s.mu.Unlock()
	f()
	s.mu.Lock()
	if end := len(s.pending); end > start {
		s.groups = append(s.groups, [2]int{start, end})
	}
	s.mu.Unlock()
}

// Release tells the store that another node took session cid over: this
// store writes nothing more for it and forgets it, and the messages its
// records name are no longer deleted from here (the other node now
// references them). Writes submitted before stay submitted; the ticket
// names them.
func (s *Store) Release(cid string) store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[cid]
	if ss == nil {
		return s.issued
	}
	for _, e := range ss.outs {
		if e != nil {
			e.deletable = false
			s.unref(e)
		}
	}
	delete(s.sessions, cid)
	return s.issued
}

// Append adds data to another stream, on subject subj, in order with the
// writes around it: the ticket is acknowledged once that stream stored it
// too. Appends in a row go as one atomic batch, so every Append must go
// to the same stream, which allows atomic publish. A resend (the store
// resends what was not acknowledged) is dropped by the stream as a
// duplicate of msgID, unique per append, within the stream's duplicate
// window.
func (s *Store) Append(subj, msgID string, data []byte) store.Ticket {
	return s.append(op{subj: subj, data: data, msgID: msgID})
}

// AppendAfter is Append sent only once every write submitted before it
// is acknowledged: what it depends on is stored before it can be read.
// It costs a round trip to the writes after it too.
func (s *Store) AppendAfter(subj, msgID string, data []byte) store.Ticket {
	return s.append(op{subj: subj, data: data, msgID: msgID, after: true})
}

// AppendAgain is Append of what may have been appended under msgID
// before: the stream drops it if it has it, within its duplicate window.
func (s *Store) AppendAgain(subj, msgID string, data []byte) store.Ticket {
	return s.append(op{subj: subj, data: data, msgID: msgID, again: true})
}

func (s *Store) append(o op) store.Ticket {
	if o.msgID == "" {
		panic("jsstore: Append without a message id")
	}
	if !s.begin() {
		return never
	}
	s.pending = append(s.pending, o)
	return s.end()
}

// PutCursor records how far node has read a stream, in the bucket: in an
// Atomic with the writes of what it read, so that after a crash the
// reading resumes exactly after them.
func (s *Store) PutCursor(node string, seq uint64) store.Ticket {
	if !s.begin() {
		return never
	}
	s.put(cursorKey(node), binary.BigEndian.AppendUint64(nil, seq))
	return s.end()
}

// Cursor returns what PutCursor last recorded for node; ok is false if
// it recorded nothing.
//
// It asks the bucket's leader: a key-value read may be served by a
// replica a moment behind, and an old cursor (or none) read as current
// would have a restarted reader skip or repeat messages.
func (s *Store) Cursor(ctx context.Context, node string) (seq uint64, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	v, ok, err := s.leaderGet(ctx, s.prefix+cursorKey(node))
	switch {
	case err != nil:
		return 0, false, fmt.Errorf("jsstore: cursor of %s: %w", node, err)
	case !ok:
		// None, says the leader. A leader just elected may not have
		// applied everything it has yet, and none taken for true starts
		// a restarted reader at the stream's end: a replica that has one
		// says to ask again.
		switch _, err := s.kv.Get(ctx, cursorKey(node)); {
		case err == nil:
			return 0, false, fmt.Errorf("jsstore: cursor of %s: a replica has one, the leader not yet", node)
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return 0, false, fmt.Errorf("jsstore: cursor of %s: %w", node, err)
		}
		return 0, false, nil
	case len(v) != 8:
		return 0, false, fmt.Errorf("jsstore: cursor of %s: malformed", node)
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// leaderGet reads the last value on subj from the bucket stream's leader
// (not a direct get, which any replica may serve).
func (s *Store) leaderGet(ctx context.Context, subj string) ([]byte, bool, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": subj})
	m, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+s.opts.Bucket, req)
	if err != nil {
		return nil, false, err
	}
	var r struct {
		Message *struct {
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return nil, false, err
	}
	switch {
	case r.Error != nil && r.Error.ErrCode == 10037:
		// No message found: only this says there is none. Other answers
		// with status 404 (a server that has not yet learnt of the
		// stream says it is not found) are errors to try again: a
		// restarted node's cursor taken for none starts it at the end
		// of the stream.
		return nil, false, nil
	case r.Error != nil:
		return nil, false, fmt.Errorf("%s (%d)", r.Error.Description, r.Error.ErrCode)
	case r.Message == nil:
		return nil, false, errors.New("empty answer")
	}
	return r.Message.Data, true, nil
}

// Issued returns the ticket of every write submitted so far.
func (s *Store) Issued() store.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Stalled returns how long the oldest unacknowledged write has waited (0:
// none waits): the stream has no quorum, or no leader yet.
func (s *Store) Stalled() time.Duration {
	p := &s.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range p.window {
		if !u.done && !u.first.IsZero() {
			return time.Since(u.first)
		}
	}
	return 0
}

// Cursors returns every cursor PutCursor recorded, by node.
func (s *Store) Cursors(ctx context.Context) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	// From the leader, as Cursor: a reader missing from a replica's view
	// would have the stream trimmed of what it has not read.
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(s.prefix+kindCursor+".>"))
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		node, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(subj, s.prefix+kindCursor+"."))
		if err != nil {
			continue
		}
		seq, ok, err := s.Cursor(ctx, string(node))
		if err != nil {
			return nil, err
		}
		if ok {
			out[string(node)] = seq
		}
	}
	return out, nil
}

// Stats counts what the store did since Open.
type Stats struct {
	Published uint64 // JetStream messages published, resends included
	Bytes     uint64 // their subjects, headers and data
	Messages  uint64 // application messages written (each once)
	Batches   uint64 // atomic batches published
	Resends   uint64 // times unacknowledged writes were sent again
	Commits   uint64 // tickets acknowledged
}

type counters struct {
	published, bytes, messages, batches, resends, commits atomic.Uint64
}

func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{Published: c.published.Load(), Bytes: c.bytes.Load(), Messages: c.messages.Load(),
		Batches: c.batches.Load(), Resends: c.resends.Load(), Commits: c.commits.Load()}
}
