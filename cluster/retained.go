package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ternmq/tern/store"
)

// Retained messages live in a JetStream stream that keeps the last
// message of each subject: "tern.ret." and the topic's subject. A set is
// the message, a clear the message with an empty payload (kept like a set,
// so that every node sees it). Every node follows the stream from its
// start and applies it, in the stream's order, to its own copy; a node
// that publishes a retained message stores it here before it goes into
// the stream, so the stream's order decides between nodes.
const (
	retainedStream = "TERN_RETAINED"
	retainedPrefix = "tern.ret."
)

type retainedSync struct {
	n       *Node
	once    sync.Once
	ready   chan struct{} // closed once in step with the stream
	cancel  context.CancelFunc
	mu      sync.Mutex
	pending map[string]*store.Message // not yet in the stream, by topic
}

// publish puts a retained message set or cleared here into the stream.
// A QoS 1 or 2 one is in the stream before the publisher's acknowledgement
// (the caller waits); QoS 0 goes without waiting. One that cannot go in
// now (this node is cut off, JetStream has no majority) is kept and goes
// in once it can, unless a newer one for its topic came meanwhile.
func (r *retainedSync) publish(m *store.Message) {
	if r.n.alone() {
		r.later(m)
		return
	}
	data := appendEnvelope(nil, &envelope{origin: r.n.instance, msg: m})
	subj := retainedPrefix + Subject(m.Topic)
	if m.QoS == 0 {
		// A failure after this is told to asyncFailed.
		if _, err := r.n.js.PublishAsync(subj, data); err != nil {
			r.failed(m, err)
		}
		return
	}
	ctx, cancel := r.n.ctx(5 * time.Second)
	defer cancel()
	if _, err := r.n.js.Publish(ctx, subj, data); err != nil {
		r.failed(m, err)
	}
}

// asyncFailed is told of a QoS 0 retained message the stream refused.
func (n *Node) asyncFailed(_ jetstream.JetStream, m *nats.Msg, err error) {
	if e, derr := decodeEnvelope(m.Data); derr == nil {
		n.ret.failed(e.msg, err)
	}
}

func (r *retainedSync) failed(m *store.Message, err error) {
	r.n.logOnce("retained", "cluster: a retained message is not replicated yet; it will be when JetStream can take it", "topic", m.Topic, "err", err)
	r.later(m)
}

// maxPending bounds the retained messages kept for the stream while it
// cannot take them.
const maxPending = 100_000

func (r *retainedSync) pendingCount() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return uint64(len(r.pending))
}

// later keeps m for the stream.
func (r *retainedSync) later(m *store.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = make(map[string]*store.Message)
	}
	if _, ok := r.pending[m.Topic]; !ok && len(r.pending) >= maxPending {
		r.n.logOnce("retained-pending", "cluster: too many retained messages wait for the stream; this one stays on this node only", "topic", m.Topic)
		return
	}
	r.pending[m.Topic] = m
}

// retry puts the kept messages into the stream, while the node is in
// step with the cluster.
func (r *retainedSync) retry(ctx context.Context) {
	defer r.n.wg.Done()
	for {
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return
		}
		r.mu.Lock()
		pending := r.pending
		r.pending = nil
		r.mu.Unlock()
		if len(pending) == 0 {
			continue
		}
		n := 0
		for _, m := range pending {
			if r.n.alone() {
				r.later(m)
				continue
			}
			data := appendEnvelope(nil, &envelope{origin: r.n.instance, msg: m})
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := r.n.js.Publish(pctx, retainedPrefix+Subject(m.Topic), data)
			cancel()
			if err != nil {
				r.later(m)
				continue
			}
			n++
		}
		if n > 0 {
			r.n.log.Info("cluster: retained messages set while the stream was out of reach are replicated now", "messages", n)
		}
	}
}

// Unretain implements broker.Cluster.
func (n *Node) Unretain(topic string) {
	n.ret.publish(&store.Message{Topic: topic, QoS: 1, Retain: true})
}

func (r *retainedSync) start(ctx context.Context, n *Node) error {
	r.n = n
	r.ready = make(chan struct{})
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	n.wg.Add(2)
	go r.run(runCtx)
	go r.retry(runCtx)
	select {
	case <-r.ready:
	case <-ctx.Done():
		n.log.Warn("cluster: retained messages not yet in step with the cluster; continuing in the background")
	}
	return nil
}

func (r *retainedSync) close() {
	if r.cancel != nil {
		r.cancel()
	}
}

// run opens the stream (waiting for JetStream) and follows it. Until it
// has read the stream to its end once, the node is not in step: an error
// on the way is retried, never taken for an empty stream, or this node's
// stale copy would go back into the stream.
func (r *retainedSync) run(ctx context.Context) {
	defer r.n.wg.Done()
	for {
		cc, err := r.follow(ctx)
		if err == nil {
			<-ctx.Done()
			cc.Stop()
			return
		}
		if ctx.Err() != nil {
			return
		}
		r.n.logOnce("retained-open", "cluster: waiting for JetStream to follow the retained messages", "err", err)
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

// follow starts applying the stream's messages, from the last of each
// topic on.
func (r *retainedSync) follow(ctx context.Context) (jetstream.ConsumeContext, error) {
	s, err := r.open(ctx)
	if err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	info, err := s.Info(ictx)
	cancel()
	if err != nil {
		return nil, err
	}
	if err := r.replicaCurrent(info); err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	if info.State.Msgs == 0 {
		r.caughtUp(seen)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	cons, err := s.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{retainedPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	cancel()
	if err != nil {
		return nil, err
	}
	return cons.Consume(func(msg jetstream.Msg) {
		e, err := decodeEnvelope(msg.Data())
		if err != nil {
			r.n.stats.malformed.Add(1)
			return
		}
		r.n.b.RemoteRetained(e.msg)
		if seen != nil {
			seen[e.msg.Topic] = true
			if md, err := msg.Metadata(); err == nil && md.NumPending == 0 {
				r.caughtUp(seen)
				seen = nil
			}
		}
	})
}

// replicaCurrent refuses to follow the stream through this node's replica
// of it while that is behind the leader: a node back from a restart has
// an old copy, and a consumer may be served from it.
func (r *retainedSync) replicaCurrent(info *jetstream.StreamInfo) error {
	c := info.Cluster
	if r.n.srv == nil || c == nil || c.Leader == r.n.cfg.Node {
		return nil
	}
	if c.Leader == "" {
		return errors.New("the retained stream has no leader")
	}
	for _, p := range c.Replicas {
		if p.Name == r.n.cfg.Node && (!p.Current || p.Lag > 0) {
			return fmt.Errorf("this node's replica of the retained stream is behind (lag %d)", p.Lag)
		}
	}
	return nil
}

// caughtUp marks the node in step with the stream, the first time. A
// topic cleared while this node was away is in the stream (a clear is
// kept like a set) and has been applied; one retained here that the
// stream does not hold at all (seen) was set while the stream could not
// be reached, alone or before the cluster formed: it goes in now.
func (r *retainedSync) caughtUp(seen map[string]bool) {
	r.once.Do(func() {
		r.n.log.Debug("cluster: retained messages in step", "topics", len(seen))
		for _, t := range r.n.b.RetainedTopics() {
			if !seen[t] {
				if m, err := r.n.b.RetainedMessage(t); err == nil {
					r.publish(m)
				}
			}
		}
		close(r.ready)
	})
}

func (r *retainedSync) open(ctx context.Context) (jetstream.Stream, error) {
	octx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := r.n.js.Stream(octx, retainedStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = r.n.js.CreateStream(octx, jetstream.StreamConfig{
			Name:              retainedStream,
			Subjects:          []string{retainedPrefix + ">"},
			MaxMsgsPerSubject: 1,
			Replicas:          r.n.cfg.replicas(),
			Storage:           jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = r.n.js.Stream(octx, retainedStream)
		}
	}
	return s, err
}
