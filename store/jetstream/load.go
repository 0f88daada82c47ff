package jsstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ternmq/tern/store"
)

// record is a key's current value as read.
type record struct {
	val     []byte
	created time.Time
}

// scan reads the current value of every key matching filters (every key
// when none), with one ordered consumer that ends with the read.
func (s *Store) scan(ctx context.Context, filters ...string) (map[string]record, error) {
	return s.scanWith(ctx, filters)
}

func (s *Store) scanWith(ctx context.Context, filters []string, opts ...jetstream.WatchOpt) (map[string]record, error) {
	s.awaitReplicas(ctx)
	var w jetstream.KeyWatcher
	var err error
	if len(filters) == 0 {
		w, err = s.kv.WatchAll(ctx, opts...)
	} else {
		w, err = s.kv.WatchFiltered(ctx, filters, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("jsstore: read %s: %w", s.opts.Bucket, err)
	}
	defer w.Stop()
	recs := make(map[string]record)
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("jsstore: read %s: the watch ended early", s.opts.Bucket)
			}
			if e == nil {
				return recs, nil // in step
			}
			if e.Operation() == jetstream.KeyValuePut {
				recs[e.Key()] = record{val: e.Value(), created: e.Created()}
			} else {
				delete(recs, e.Key())
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("jsstore: read %s: %w", s.opts.Bucket, ctx.Err())
		}
	}
}

// awaitReplicas waits, up to 5 s, until every replica of the bucket's
// stream is current: the watch that reads it may be served by any of
// them, and one behind (its server just restarted, or slow) would miss
// writes the store has already acknowledged.
func (s *Store) awaitReplicas(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		st, err := s.js.Stream(ctx, "KV_"+s.opts.Bucket)
		if err == nil {
			info, err := st.Info(ctx)
			if err == nil && replicasCurrent(info) {
				return
			}
		}
		select {
		case <-ctx.Done():
			s.log.Warn("jsstore: reading while a replica is behind", "bucket", s.opts.Bucket)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// replicasCurrent reports whether every replica that may serve a read is
// current: not one that is offline, or silent (its server died: the
// leader marks it offline only later), which serves nothing.
func replicasCurrent(info *jetstream.StreamInfo) bool {
	if info.Cluster == nil {
		return true
	}
	for _, p := range info.Cluster.Replicas {
		if !p.Offline && p.Active < silentReplica && (!p.Current || p.Lag > 0) {
			return false
		}
	}
	return true
}

// silentReplica is how long a replica the leader has not heard from is
// taken for gone.
const silentReplica = 2 * time.Second

// loaded is a session as read, before its messages are attached.
type loaded struct {
	state  store.SessionState
	gen    string
	outIDs []string // message id of each outbound, "" for none
}

// gathered is the bucket's content, sorted by kind.
type gathered struct {
	sessions map[string]*loaded          // by client token
	records  map[[2]string][]keyedRecord // per-session records by (client token, generation)
	messages map[string]record           // by message id
	retained []*store.Message
	bad      int
}

type keyedRecord struct {
	key parsedKey
	record
}

func (s *Store) gather(recs map[string]record, retained bool) *gathered {
	g := &gathered{sessions: make(map[string]*loaded), records: make(map[[2]string][]keyedRecord),
		messages: make(map[string]record)}
	for k, r := range recs {
		pk := parseKey(k)
		switch pk.kind {
		case kindSession:
			sess, gen, err := decodeSession(r.val)
			if err != nil || token(sess.ClientID) != pk.ctok {
				g.bad++
				s.log.Error("jsstore: skipping a malformed session record", "key", k, "err", err)
				continue
			}
			g.sessions[pk.ctok] = &loaded{state: store.SessionState{Session: sess}, gen: gen}
		case kindSessionP:
			id := [2]string{pk.ctok, pk.gen}
			g.records[id] = append(g.records[id], keyedRecord{pk, r})
		case kindMessage:
			if !validMessageID(pk.rest) {
				g.bad++
				continue
			}
			g.messages[pk.rest] = r
		case kindRetained:
			if !retained {
				continue
			}
			m, err := decodeMessage(r.val)
			if err != nil || token(m.Topic) != pk.ctok {
				g.bad++
				s.log.Error("jsstore: skipping a malformed retained message", "key", k, "err", err)
				continue
			}
			g.retained = append(g.retained, m)
		case kindCursor: // a reader's position (PutCursor), not state to load
		default:
			g.bad++
			s.log.Warn("jsstore: skipping a key this store does not write", "key", k)
		}
	}
	return g
}

// attach decodes the records of l's generation into its state.
func (s *Store) attach(l *loaded, recs []keyedRecord) {
	st := &l.state
	cid := st.Session.ClientID
	for _, r := range recs {
		switch r.key.sub {
		case subSubscription:
			sub, err := decodeSubscription(r.val)
			if err != nil || token(sub.Filter) != r.key.rest {
				s.log.Error("jsstore: skipping a malformed subscription", "client", cid, "err", err)
				continue
			}
			st.Subscriptions = append(st.Subscriptions, sub)
		case subOutbound:
			o, id, err := decodeOutbound(r.val)
			if err != nil || strconv.FormatUint(o.Seq, 16) != r.key.rest {
				s.log.Error("jsstore: skipping a malformed outbound message", "client", cid, "err", err)
				continue
			}
			st.Outbound = append(st.Outbound, o)
			l.outIDs = append(l.outIDs, id)
		case subInbound:
			id, err := strconv.ParseUint(r.key.rest, 16, 16)
			token, terr := decodeInbound(r.val)
			if err != nil || terr != nil || strconv.FormatUint(id, 16) != r.key.rest {
				s.log.Error("jsstore: skipping a malformed inbound QoS 2 id", "client", cid)
				continue
			}
			st.InboundQoS2 = append(st.InboundQoS2, store.Inbound{PacketID: uint16(id), Token: token})
		}
	}
}

// finish attaches messages (by lookup) to l's outbound messages, drops an
// outbound whose message is gone, sorts, and returns the message id of
// each remaining outbound.
func (s *Store) finish(l *loaded, lookup func(id string) *store.Message) []string {
	st := &l.state
	type out struct {
		o  store.Outbound
		id string
	}
	outs := make([]out, 0, len(st.Outbound))
	for i, o := range st.Outbound {
		id := l.outIDs[i]
		if id != "" {
			if o.Message = lookup(id); o.Message == nil {
				s.log.Error("jsstore: the message of an outbound record is missing; dropped",
					"client", st.Session.ClientID, "seq", o.Seq, "message", id)
				continue
			}
		}
		outs = append(outs, out{o, id})
	}
	slices.SortFunc(outs, func(a, b out) int { return cmp.Compare(a.o.Seq, b.o.Seq) })
	st.Outbound, l.outIDs = nil, make([]string, len(outs))
	for i, o := range outs {
		st.Outbound = append(st.Outbound, o.o)
		l.outIDs[i] = o.id
	}
	slices.SortFunc(st.Subscriptions, func(a, b store.Subscription) int { return strings.Compare(a.Filter, b.Filter) })
	slices.SortFunc(st.InboundQoS2, store.ByPacketID)
	return l.outIDs
}

// Load returns every session in the bucket (every node's) and, unless
// Options.NoRetained, every retained message. The store then writes those
// sessions under their generations and counts their references.
//
// Load also sweeps: it deletes messages no outbound record names that an
// earlier run of this node wrote or that are older than SweepAfter, and
// purges the records of session generations no session record names
// once they are older than SweepAfter.
func (s *Store) Load() ([]store.SessionState, []*store.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.OpTimeout)
	defer cancel()
	start := time.Now()
	recs, err := s.scan(ctx)
	if err != nil {
		return nil, nil, err
	}
	g := s.gather(recs, !s.opts.NoRetained)
	recs = nil

	decoded := make(map[string]*store.Message)
	lookup := func(id string) *store.Message {
		if m, ok := decoded[id]; ok {
			return m
		}
		var m *store.Message
		if r, ok := g.messages[id]; ok {
			var err error
			if m, err = decodeMessage(r.val); err != nil {
				s.log.Error("jsstore: a malformed message", "message", id, "err", err)
				m = nil
			}
		}
		decoded[id] = m
		return m
	}
	states := make([]store.SessionState, 0, len(g.sessions))
	refs := make(map[string]int)
	s.mu.Lock()
	for ctok, l := range g.sessions {
		s.attach(l, g.records[[2]string{ctok, l.gen}])
		delete(g.records, [2]string{ctok, l.gen})
		ids := s.finish(l, func(id string) *store.Message {
			if e := s.byID[id]; e != nil && e.msg != nil {
				decoded[id] = e.msg
				return e.msg
			}
			return lookup(id)
		})
		for _, id := range ids {
			if id != "" {
				refs[id]++
			}
		}
		s.register(l, ids, true)
		states = append(states, l.state)
	}
	s.mu.Unlock()
	if err := s.sweep(g, refs, start); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(states, func(a, b store.SessionState) int {
		return strings.Compare(a.Session.ClientID, b.Session.ClientID)
	})
	return states, g.retained, nil
}

// sweepGrace is how old a message an earlier run of this node wrote must
// be before a sweep deletes it when nothing refers to it: long past any
// write of that run still on its way.
var sweepGrace = 10 * time.Second

// Sweep reads the whole bucket and deletes what nothing refers to, as
// Load does: messages no outbound record names that an earlier run of
// this node wrote or that are older than SweepAfter, and records of
// session generations no session names, older than SweepAfter. Load
// sweeps; a long-running node calls Sweep now and then (hourly, say) to
// collect the messages that sessions taken over from it or by it leave
// behind.
func (s *Store) Sweep() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.OpTimeout)
	defer cancel()
	start := time.Now()
	recs, err := s.scan(ctx, kindSession+".>", kindSessionP+".>")
	if err != nil {
		return err
	}
	// Messages: only their keys and ages.
	msgs, err := s.scanWith(ctx, []string{kindMessage + ".>"}, jetstream.MetaOnly())
	if err != nil {
		return err
	}
	maps.Copy(recs, msgs)
	g := s.gather(recs, false)
	refs := make(map[string]int)
	for ctok, l := range g.sessions {
		id := [2]string{ctok, l.gen}
		for _, r := range g.records[id] {
			if r.key.sub == subOutbound {
				if _, mid, err := decodeOutbound(r.val); err == nil && mid != "" {
					refs[mid]++
				}
			}
		}
		delete(g.records, id)
	}
	return s.sweep(g, refs, start)
}

// sweep deletes the messages of g that refs does not count and the store
// does not know, if an earlier run of this node wrote them or they are
// old, and purges the generations left in g.records once old. start is
// when the read began.
func (s *Store) sweep(g *gathered, refs map[string]int, start time.Time) error {
	cutoff := start.Add(-s.opts.SweepAfter)
	var ids []string
	s.mu.Lock()
	for id, r := range g.messages {
		if refs[id] > 0 || s.byID[id] != nil {
			continue
		}
		node, inst := messageNode(id)
		earlier := node == s.opts.Node && inst != s.inst && r.created.Before(start.Add(-sweepGrace))
		if earlier || r.created.Before(cutoff) {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	var t store.Ticket
	if len(ids) > 0 && s.begin() {
		for _, id := range ids {
			s.purge(messageKey(id))
		}
		t = s.end()
	}
	orphans := s.purgeOrphans(g, cutoff)
	if len(ids) > 0 || orphans > 0 || g.bad > 0 {
		s.log.Info("jsstore: swept what nothing refers to", "bucket", s.opts.Bucket,
			"messages", len(ids), "generations", orphans, "malformed", g.bad)
	}
	return s.Wait(t)
}

// purgeOrphans purges the generations left in g.records whose newest
// record is older than cutoff, and returns how many.
func (s *Store) purgeOrphans(g *gathered, cutoff time.Time) int {
	n := 0
	for id, rs := range g.records {
		newest := time.Time{}
		for _, r := range rs {
			if r.created.After(newest) {
				newest = r.created
			}
		}
		if newest.Before(cutoff) {
			s.schedulePurge(0, s.prefix+genPrefix(id[0], id[1])+">")
			n++
		}
	}
	return n
}

// register makes the store write l's session under its generation and
// count the references of its outbound messages (ids, in l's order).
// complete: the caller has seen every session (Load), so a message new to
// this store may be deleted once its references here are gone. mu must
// be held.
func (s *Store) register(l *loaded, ids []string, complete bool) {
	cid := l.state.Session.ClientID
	if old := s.sessions[cid]; old != nil {
		for _, e := range old.outs {
			s.unref(e)
		}
	}
	ss := &sess{gen: l.gen, outs: make(map[uint64]*msgEntry, len(ids))}
	for i := range l.state.Outbound {
		o := &l.state.Outbound[i]
		id := ids[i]
		if id == "" {
			ss.outs[o.Seq] = nil
			continue
		}
		e := s.byID[id]
		if e == nil {
			e = &msgEntry{id: id, msg: o.Message, deletable: complete}
			s.byID[id] = e
			if s.byPtr[o.Message] == nil {
				s.byPtr[o.Message] = e
			}
		}
		o.Message = e.msg
		e.refs++
		ss.outs[o.Seq] = e
	}
	s.sessions[cid] = ss
}

// LoadSession reads session cid as it is in the bucket, wherever it was
// written: for a node taking over a client id whose previous node died
// or handed it over. It returns nil when there is no such session. The
// store then writes the session under its generation; the messages it
// names are never deleted from here (other sessions this store does not
// know may name them): they go with a later Load's sweep.
func (s *Store) LoadSession(cid string) (*store.SessionState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.OpTimeout)
	defer cancel()
	ctok := token(cid)
	recs, err := s.scan(ctx, sessionKey(cid), kindSessionP+"."+ctok+".>")
	if err != nil {
		return nil, err
	}
	g := s.gather(recs, false)
	l := g.sessions[ctok]
	if l == nil || l.state.Session.ClientID != cid {
		return nil, nil
	}
	s.attach(l, g.records[[2]string{ctok, l.gen}])
	delete(g.records, [2]string{ctok, l.gen})

	// The messages: those this store knows, then the others from the
	// bucket, a few at a time.
	msgs := make(map[string]*store.Message)
	var need []string
	s.mu.Lock()
	for _, id := range l.outIDs {
		if id == "" {
			continue
		}
		if e := s.byID[id]; e != nil && e.msg != nil {
			msgs[id] = e.msg
		} else if _, ok := msgs[id]; !ok {
			msgs[id] = nil
			need = append(need, id)
		}
	}
	s.mu.Unlock()
	if err := s.fetch(ctx, need, msgs); err != nil {
		return nil, err
	}
	ids := s.finish(l, func(id string) *store.Message { return msgs[id] })
	s.mu.Lock()
	s.register(l, ids, false)
	s.mu.Unlock()

	s.purgeOrphans(g, time.Now().Add(-s.opts.SweepAfter))
	return &l.state, nil
}

// fetch reads messages ids into msgs (nil for one that is gone).
func (s *Store) fetch(ctx context.Context, ids []string, msgs map[string]*store.Message) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan string)
	)
	for range min(8, len(ids)) {
		wg.Go(func() {
			for id := range next {
				e, err := s.kv.Get(ctx, messageKey(id))
				var m *store.Message
				switch {
				case errors.Is(err, jetstream.ErrKeyNotFound):
				case err != nil:
					mu.Lock()
					first = cmp.Or(first, fmt.Errorf("jsstore: read message %s: %w", id, err))
					mu.Unlock()
				default:
					if m, err = decodeMessage(e.Value()); err != nil {
						s.log.Error("jsstore: a malformed message", "message", id, "err", err)
						m = nil
					}
				}
				mu.Lock()
				msgs[id] = m
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	return first
}

// purgeJob purges every key under filter once ticket t is acknowledged.
type purgeJob struct {
	t      store.Ticket
	filter string
}

// schedulePurge queues a purge; when the queue is full the keys stay
// until a Load sweeps them.
func (s *Store) schedulePurge(t store.Ticket, filter string) {
	select {
	case s.jobs <- purgeJob{t, filter}:
	default:
	}
}

// janitor runs the purges.
func (s *Store) janitor() {
	defer s.bg.Done()
	for {
		select {
		case j := <-s.jobs:
			s.runPurge(j)
		case <-s.quit:
			// What is queued goes now, briefly; the rest stays for a sweep.
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				select {
				case j := <-s.jobs:
					s.runPurge(j)
				default:
					return
				}
			}
			return
		}
	}
}

func (s *Store) runPurge(j purgeJob) {
	if s.Wait(j.t) != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(s.opts.OpTimeout, 10*time.Second))
	defer cancel()
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(j.filter)); err != nil {
		s.log.Warn("jsstore: purge failed; a later Load sweeps it", "filter", j.filter, "err", err)
	}
}
