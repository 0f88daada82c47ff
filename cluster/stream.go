package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ternmq/tern/store"
	jsstore "github.com/ternmq/tern/store/jetstream"
	"github.com/ternmq/tern/topic"
)

// With a replicated store (OpenStore), QoS 1 and 2 messages travel
// through one JetStream stream, replicated like the sessions: the
// publishing node appends a message (once, whoever it is for) and
// acknowledges it to its client once a quorum has it. Every node reads
// the stream in order, its own appends included, and queues each message
// for its sessions; a node's position (its cursor, in the store) is
// written in the same atomic commit as what it queued for persistent
// sessions, so a node that dies and comes back resumes exactly after the
// last message it kept, and a session taken from a dead node is brought
// up to date from the dead node's cursor. No consumer exists per session:
// each node reads the stream with one ordered consumer.
//
// A QoS 2 message from a persistent session is appended only once its
// packet id is stored, under a message id made from the token stored with
// it (broker.Cluster.Forward). Its client, if its node dies before
// PUBREC, retransmits it to another node, which appends it again under
// that id (Reforward): the stream drops the copy if it kept the first,
// within its duplicate window.
const (
	stateBucket   = "tern_state"
	fwdStream     = "TERN_FWD"
	fwdPrefix     = "tern.q."
	cursorPeriod  = time.Second      // how often a cursor with nothing queued is written
	trimEvery     = 60               // cursor periods between trims of the stream
	stallRefusal  = 10 * time.Second // unacknowledged writes this old: no quorum (a leader election takes seconds)
	storeWriteMax = 24 * time.Hour   // the store fails only after this; Health refuses meanwhile
	closeTimeout  = 10 * time.Second // a node stopping without a quorum waits this long for its writes
	defaultMaxAge = 7 * 24 * time.Hour
)

// follower is this node's reading of the stream.
type follower struct {
	mu        sync.Mutex    // held while a message is routed here, and by claims
	processed uint64        // the last stream sequence routed here
	cursor    uint64        // the last cursor written
	lag       atomic.Uint64 // messages in the stream after processed
	following chan struct{} // closed once the node reads the stream
	stored    func()        // writes the cursor at processed (made once)
}

// putCursor writes the cursor at processed. f.mu must be held.
func (n *Node) putCursor() {
	f := &n.fwd
	n.st.PutCursor(n.cfg.Node, f.processed)
	f.cursor = f.processed
}

// OpenStore opens the store the cluster's nodes share, replicated like
// the rest of its state (Config.Replicas), and the stream QoS 1 and 2
// messages travel through; the broker is given it as Options.Store. It
// waits, as long as ctx allows, for JetStream to have a quorum.
func (n *Node) OpenStore(ctx context.Context) (*jsstore.Store, error) {
	since := time.Now()
	for {
		// Each try bounded: a request made before JetStream had a
		// leader is never answered.
		try, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := jsstore.Open(try, n.js, jsstore.Options{Bucket: stateBucket, Node: n.cfg.Node,
			Replicas: n.cfg.replicas(), NoRetained: true, WriteTimeout: storeWriteMax, OpTimeout: 10 * time.Second,
			CloseTimeout: closeTimeout,
			Logger:       n.log})
		if err == nil {
			var s jetstream.Stream
			s, err = n.js.CreateOrUpdateStream(try, jetstream.StreamConfig{Name: fwdStream,
				Subjects: []string{fwdPrefix + ">"}, Replicas: n.cfg.replicas(), MaxAge: n.cfg.streamMaxAge(),
				Duplicates: 2 * time.Minute, Storage: jetstream.FileStorage, AllowAtomicPublish: true})
			if err == nil {
				err = n.initCursor(try, st, s)
			}
			if err != nil {
				st.Close()
			}
		}
		cancel()
		if err == nil {
			n.st = st
			return st, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("cluster: replicated store: %w", err)
		}
		// Routine while the nodes start together; worth a warning (once
		// a minute) when it lasts: the other nodes are down.
		args := []any{"replicas", n.cfg.replicas(), "waited", time.Since(since).Round(time.Second), "err", err}
		if time.Since(since) > 10*time.Second {
			n.logOnce("quorum", "cluster: waiting for a JetStream quorum to open the replicated store", args...)
		} else {
			n.log.Debug("cluster: waiting for a JetStream quorum to open the replicated store", args...)
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// Streams implements broker.Cluster.
func (n *Node) Streams() bool { return n.st != nil }

// Health implements broker.Cluster: without a quorum writes wait, and
// the broker refuses QoS 1 and 2 messages rather than accept them.
func (n *Node) Health() error {
	if n.st == nil {
		return nil
	}
	var err error
	if d := n.st.Stalled(); d > stallRefusal {
		err = fmt.Errorf("cluster: no JetStream quorum: writes unacknowledged for %s", d.Round(time.Second))
	} else if n.alone() && n.cfg.replicas() > 1 {
		err = errors.New("cluster: no JetStream quorum: no route to another node")
	}
	if err != nil {
		n.logOnce("refusing", "cluster: QoS 1 and 2 messages are refused until the quorum is back", "err", err)
	}
	return err
}

// appendStream adds m to the stream; its ticket is the broker's store's.
// A QoS 2 message with a token waits for the record of its receipt (see
// broker.Cluster.Forward), and its message id is the token's.
func (n *Node) appendStream(subj string, seq, token uint64, data []byte) store.Ticket {
	if token != 0 {
		return n.st.AppendAfter(fwdPrefix+subj, tokenMsgID(token), data)
	}
	id := strconv.FormatUint(n.instance, 36) + "." + strconv.FormatUint(seq, 36)
	return n.st.Append(fwdPrefix+subj, id, data)
}

// tokenMsgID is the stream's message id for a QoS 2 message's token.
func tokenMsgID(token uint64) string { return "2." + strconv.FormatUint(token, 36) }

// holdFollow, set by a test before a node starts, holds the node's
// reading of the stream until it is closed.
var holdFollow chan struct{}

// follow reads the stream from this node's cursor on, routing every
// message to this node's sessions, until the node stops.
func (n *Node) follow(ctx context.Context) {
	defer n.wg.Done()
	if h := holdFollow; h != nil {
		select {
		case <-h:
		case <-ctx.Done():
			return
		}
	}
	f := &n.fwd
	f.stored = n.putCursor
	var it jetstream.MessagesContext
	for {
		start, err := n.startSeq(ctx)
		var cons jetstream.Consumer
		if err == nil {
			cons, err = n.js.OrderedConsumer(ctx, fwdStream, jetstream.OrderedConsumerConfig{
				FilterSubjects: []string{fwdPrefix + ">"},
				DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: start})
		}
		if err == nil {
			it, err = cons.Messages(jetstream.PullMaxMessages(1024))
		}
		if err == nil {
			n.log.Info("cluster: reading the message stream", "from", start)
			f.mu.Lock()
			f.processed, f.cursor = start-1, start-1
			f.mu.Unlock()
			close(f.following)
			break
		}
		if ctx.Err() != nil {
			return
		}
		n.logOnce("stream", "cluster: cannot read the message stream yet", "err", err)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return
		}
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	go n.writeCursor(ctx)
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			n.logOnce("stream", "cluster: reading the message stream", "err", err)
			time.Sleep(10 * time.Millisecond) // the ordered consumer starts again
			continue
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		e, err := decodeEnvelope(msg.Data())
		f.mu.Lock()
		f.processed = meta.Sequence.Stream
		f.lag.Store(meta.NumPending)
		if err == nil {
			n.stats.received.Add(1)
			n.b.RemotePublish(e.msg, e.from, f.stored)
		} else {
			n.stats.malformed.Add(1)
		}
		f.mu.Unlock()
	}
}

// initCursor gives a node that never read the stream a cursor at its
// end, before it has sessions: what is published from then on is its.
func (n *Node) initCursor(ctx context.Context, st *jsstore.Store, s jetstream.Stream) error {
	if _, ok, err := st.Cursor(ctx, n.cfg.Node); err != nil || ok {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	n.log.Info("cluster: this node's first start: it reads the message stream from its end", "seq", info.State.LastSeq)
	return st.Wait(st.PutCursor(n.cfg.Node, info.State.LastSeq))
}

// startSeq is where this node resumes reading: after its cursor.
func (n *Node) startSeq(ctx context.Context) (uint64, error) {
	c, _, err := n.st.Cursor(ctx, n.cfg.Node)
	return c + 1, err
}

// writeCursor records now and then how far this node has read, so that a
// restart need not read again what queued nothing here. It is written
// only once everything submitted for the messages up to it is stored.
func (n *Node) writeCursor(ctx context.Context) {
	f := &n.fwd
	tick := time.NewTicker(cursorPeriod)
	defer tick.Stop()
	for i := 1; ; i++ {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		if i%trimEvery == 0 {
			n.trimStream(ctx)
		}
		f.mu.Lock()
		p, t := f.processed, n.st.Issued()
		f.mu.Unlock()
		if n.st.Wait(t) != nil {
			continue
		}
		f.mu.Lock()
		if p > f.cursor { // else a message routed meanwhile wrote a later one
			// A batch, as every cursor write: batches stay in order
			// when resent, so a cursor never goes back.
			n.st.Atomic(func() { n.st.PutCursor(n.cfg.Node, p) })
			f.cursor = p
		}
		f.mu.Unlock()
	}
}

// trimStream drops the messages every node has read: up to the lowest
// cursor. A node that is down keeps what it has not read until it comes
// back, or for Config.StreamMaxAge.
func (n *Node) trimStream(ctx context.Context) {
	cs, err := n.st.Cursors(ctx)
	if err != nil || len(cs) == 0 {
		return
	}
	low := uint64(math.MaxUint64)
	for _, c := range cs {
		low = min(low, c)
	}
	s, err := n.js.Stream(ctx, fwdStream)
	if err == nil {
		err = s.Purge(ctx, jetstream.WithPurgeSequence(low+1))
	}
	if err != nil {
		n.logOnce("trim", "cluster: trimming the message stream", "err", err)
	}
}

// adopt brings session id, released to the store by the node that had
// it, here, and delivers to it what that node had not routed to it: the
// messages after from (that node's position when it let go, or its
// stored cursor if it died). The session is read, and what it missed
// gathered, without holding up this node's reading of the stream; the
// last of it is gathered and the session installed with f.mu held, so
// that nothing is routed to it twice or never.
func (n *Node) adopt(ctx context.Context, id string, from uint64) error {
	f := &n.fwd
	for n.position() < from {
		// The other node read further: catch up first.
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("cluster: session %q: this node is behind the message stream: %w", id, ctx.Err())
		}
	}
	st, err := n.st.LoadSession(id)
	if err != nil || st == nil {
		return err
	}
	var filters []string
	for _, s := range st.Subscriptions {
		if _, _, shared := topic.ParseShared(s.Filter); !shared {
			filters = append(filters, s.Filter)
		}
	}
	upTo := n.position()
	missed, err := n.missed(ctx, filters, from, upTo)
	if err != nil {
		return fmt.Errorf("cluster: session %q: reading what it missed: %w", id, err)
	}
	f.mu.Lock()
	more, err := n.missed(ctx, filters, max(from, upTo), f.processed)
	if err == nil {
		err = n.b.AdoptSession(st)
	}
	var t store.Ticket
	if err == nil {
		n.stats.adopted.Add(1)
		for _, e := range append(missed, more...) {
			t = max(t, n.b.RedeliverTo(id, e.msg, e.from))
		}
		n.stats.replayed.Add(uint64(len(missed) + len(more)))
		n.log.Debug("cluster: session adopted", "client", id, "from", from, "replayed", len(missed)+len(more))
	}
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cluster: session %q: %w", id, err)
	}
	return n.st.Wait(t)
}

// awaitFollowing waits until this node reads the stream: before, its
// position is not known yet (taken for 0, a session moved would have the
// whole stream delivered to it again).
func (n *Node) awaitFollowing(ctx context.Context) error {
	if n.st == nil {
		return nil
	}
	select {
	case <-n.fwd.following:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: this node does not read the message stream yet: %w", ctx.Err())
	}
}

// position is the last stream sequence routed here.
func (n *Node) position() uint64 {
	n.fwd.mu.Lock()
	defer n.fwd.mu.Unlock()
	return n.fwd.processed
}

// missed reads the messages in (from, to] of the stream that may match
// filters (a session's: RedeliverTo matches them exactly).
func (n *Node) missed(ctx context.Context, filters []string, from, to uint64) ([]*envelope, error) {
	if from >= to || len(filters) == 0 {
		return nil, nil
	}
	subj := fwdPrefix + ">"
	if s := FilterSubjects(filters[0]); len(filters) == 1 && len(s) == 1 {
		subj = fwdPrefix + s[0] // else the filters may overlap, which a consumer refuses
	}
	cons, err := n.js.OrderedConsumer(ctx, fwdStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from + 1})
	if err != nil {
		return nil, err
	}
	var out []*envelope
	for {
		batch, err := cons.FetchNoWait(512) // what is stored: no waiting for more
		if err != nil {
			return nil, err
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			if meta.Sequence.Stream > to {
				return out, nil
			}
			if e, err := decodeEnvelope(msg.Data()); err == nil {
				out = append(out, e)
			}
			if meta.Sequence.Stream == to || meta.NumPending == 0 {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		if got == 0 {
			return out, nil // nothing more matches
		}
	}
}
