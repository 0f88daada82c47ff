package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
const (
	stateBucket   = "tern_state"
	fwdStream     = "TERN_FWD"
	fwdPrefix     = "tern.q."
	cursorPeriod  = time.Second     // how often a cursor with nothing queued is written
	stallRefusal  = 2 * time.Second // unacknowledged writes this old: no quorum
	storeWriteMax = 24 * time.Hour  // the store fails only after this; Health refuses meanwhile
	defaultMaxAge = 7 * 24 * time.Hour
)

// follower is this node's reading of the stream.
type follower struct {
	mu        sync.Mutex    // held while a message is routed here, and by claims
	processed uint64        // the last stream sequence routed here
	cursor    uint64        // the last cursor written
	lag       atomic.Uint64 // messages in the stream after processed
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
			Logger: n.log})
		if err == nil {
			_, err = n.js.CreateOrUpdateStream(try, jetstream.StreamConfig{Name: fwdStream,
				Subjects: []string{fwdPrefix + ">"}, Replicas: n.cfg.replicas(), MaxAge: n.cfg.streamMaxAge(),
				Duplicates: 2 * time.Minute, Storage: jetstream.FileStorage})
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
		// Routine while the nodes start together; worth a warning when
		// it lasts (the other nodes are down).
		level := slog.LevelDebug
		if time.Since(since) > 10*time.Second {
			level = slog.LevelWarn
		}
		n.log.Log(ctx, level, "cluster: waiting for a JetStream quorum to open the replicated store",
			"replicas", n.cfg.replicas(), "waited", time.Since(since).Round(time.Second), "err", err)
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
	if d := n.st.Stalled(); d > stallRefusal {
		return fmt.Errorf("cluster: no JetStream quorum: writes unacknowledged for %s", d.Round(time.Second))
	}
	if n.alone() && n.cfg.replicas() > 1 {
		return errors.New("cluster: no JetStream quorum: no route to another node")
	}
	return nil
}

// appendStream adds m to the stream; its ticket is the broker's store's.
func (n *Node) appendStream(subj string, seq uint64, data []byte) store.Ticket {
	id := strconv.FormatUint(n.instance, 36) + "." + strconv.FormatUint(seq, 36)
	return n.st.Append(fwdPrefix+subj, id, data)
}

// follow reads the stream from this node's cursor on, routing every
// message to this node's sessions, until the node stops.
func (n *Node) follow(ctx context.Context) {
	defer n.wg.Done()
	f := &n.fwd
	f.stored = n.putCursor
	var cons jetstream.Consumer
	for {
		start, err := n.startSeq(ctx)
		if err == nil {
			cons, err = n.js.OrderedConsumer(ctx, fwdStream, jetstream.OrderedConsumerConfig{
				FilterSubjects: []string{fwdPrefix + ">"},
				DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: start})
		}
		if err == nil {
			f.mu.Lock()
			f.processed, f.cursor = start-1, start-1
			f.mu.Unlock()
			break
		}
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("cluster: cannot read the message stream yet", "err", err)
		time.Sleep(time.Second)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		n.log.Error("cluster: reading the message stream", "err", err)
		return
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

// startSeq is where this node resumes reading: after its cursor, or, the
// first time, at the stream's end (it has no sessions yet).
func (n *Node) startSeq(ctx context.Context) (uint64, error) {
	c, err := n.st.Cursor(ctx, n.cfg.Node)
	if err != nil || c > 0 {
		return c + 1, err
	}
	s, err := n.js.Stream(ctx, fwdStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	last := info.State.LastSeq
	if err := n.st.Wait(n.st.PutCursor(n.cfg.Node, last)); err != nil {
		return 0, err
	}
	return last + 1, nil
}

// writeCursor records now and then how far this node has read, so that a
// restart need not read again what queued nothing here. It is written
// only once everything submitted for the messages up to it is stored.
func (n *Node) writeCursor(ctx context.Context) {
	f := &n.fwd
	tick := time.NewTicker(cursorPeriod)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		f.mu.Lock()
		p, t := f.processed, n.st.Issued()
		f.mu.Unlock()
		if n.st.Wait(t) != nil {
			continue
		}
		f.mu.Lock()
		if p > f.cursor { // else a message routed meanwhile wrote a later one
			n.st.PutCursor(n.cfg.Node, p)
			f.cursor = p
		}
		f.mu.Unlock()
	}
}

// adopt brings session id, released to the store by the node that had
// it, here, and delivers to it what that node had not routed to it:
// the messages after its cursor from (that node's position when it let
// go, or its stored cursor if it died). f.mu is held meanwhile, so that
// nothing is routed to the session twice or never.
func (n *Node) adopt(ctx context.Context, id string, from uint64) error {
	f := &n.fwd
	f.mu.Lock()
	for f.processed < from {
		// The other node read further: catch up first.
		f.mu.Unlock()
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("cluster: session %q: this node is behind the message stream: %w", id, ctx.Err())
		}
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	st, err := n.b.AdoptSession(id)
	if err != nil || st == nil {
		return err
	}
	n.stats.adopted.Add(1)
	var filters []string
	for _, s := range st.Subscriptions {
		if _, _, shared := topic.ParseShared(s.Filter); !shared {
			filters = append(filters, s.Filter)
		}
	}
	return n.replay(ctx, id, filters, from, f.processed)
}

// replay delivers to session id the messages in (from, to] it subscribes
// to.
func (n *Node) replay(ctx context.Context, id string, filters []string, from, to uint64) error {
	if from >= to || len(filters) == 0 {
		return nil
	}
	subj := fwdPrefix + ">"
	if s := FilterSubjects(filters[0]); len(filters) == 1 && len(s) == 1 {
		subj = fwdPrefix + s[0] // else the filters may overlap, which a consumer refuses
	}
	cons, err := n.js.OrderedConsumer(ctx, fwdStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from + 1})
	if err != nil {
		return fmt.Errorf("cluster: session %q: reading what it missed: %w", id, err)
	}
	var t store.Ticket
	for {
		batch, err := cons.Fetch(512, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("cluster: session %q: reading what it missed: %w", id, err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			if meta.Sequence.Stream > to {
				return n.st.Wait(t)
			}
			if e, err := decodeEnvelope(msg.Data()); err == nil {
				t = max(t, n.b.RedeliverTo(id, e.msg, e.from))
				n.stats.replayed.Add(1)
			}
			if meta.Sequence.Stream == to || meta.NumPending == 0 {
				return n.st.Wait(t)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("cluster: session %q: reading what it missed: %w", id, err)
		}
		if got == 0 {
			return n.st.Wait(t) // nothing more matches
		}
	}
}
