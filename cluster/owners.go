package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/store"
)

// A client id belongs to one node at a time. The owners bucket (JetStream
// key-value, replicated) maps each id to its node; a connect takes the id
// over with compare-and-set, which orders simultaneous connects: each
// asks the owner before it (by the bucket's revision) to let go, and the
// last one wins [MQTT-3.1.4-3].
const ownersBucket = "tern_owners"

type owners struct {
	n     *Node
	mu    sync.Mutex
	locks map[string]*claimLock
	kvMu  sync.Mutex
	kv    jetstream.KeyValue
	sub   *nats.Subscription
	ended chan string // ids whose sessions ended here, to forget
	// letGoAt: where in the stream this node let sessions go lately,
	// for a claim that failed and gave the id back (giveBack). Under mu.
	letGoAt map[string]letGo
	pruned  time.Time
}

type letGo struct {
	cursor uint64
	at     time.Time
}

// letGoFor is how long a node remembers where it let a session go.
const letGoFor = 5 * time.Minute

// letGo records that session id left this node at cursor (released), or,
// if it did not have it, returns where it let it go lately, if it did.
func (o *owners) letGo(id string, released bool, cursor uint64) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if released {
		if now.Sub(o.pruned) > letGoFor {
			o.pruned = now
			for k, g := range o.letGoAt {
				if now.Sub(g.at) > letGoFor {
					delete(o.letGoAt, k)
				}
			}
		}
		o.letGoAt[id] = letGo{cursor, now}
		return cursor
	}
	if g, ok := o.letGoAt[id]; ok && now.Sub(g.at) <= letGoFor {
		return g.cursor
	}
	return cursor
}

// claimLock orders this node's claims of one id and the takeovers other
// nodes ask of it.
type claimLock struct {
	mu    sync.Mutex
	users int    // holders and waiters, under owners.mu
	rev   uint64 // the revision of a claim in progress here, under owners.mu
}

// takeover is what a node that took a client id over asks its previous
// owner.
type takeover struct {
	ID       string        `json:"id"`
	Rev      uint64        `json:"rev"`
	Identity auth.Identity `json:"identity"`
	Granted  bool          `json:"granted"`
	Clean    bool          `json:"clean"`
}

type takeoverReply struct {
	Status  string              `json:"status"` // "ok", "superseded", "not_owner", "error"
	Error   string              `json:"error,omitempty"`
	Session *store.SessionState `json:"session,omitempty"` // without a replicated store
	// Cursor is the releasing node's position in the message stream
	// (with a replicated store, which holds the session).
	Cursor uint64 `json:"cursor,omitempty"`
}

func (o *owners) init() {
	o.locks = make(map[string]*claimLock)
	o.letGoAt = make(map[string]letGo)
	o.ended = make(chan string, 4096)
}

func ownerKey(id string) string { return "c" + base64.RawURLEncoding.EncodeToString([]byte(id)) }

func ownSubject(node string) string { return "tern.own." + node }

func (o *owners) start(n *Node) error {
	o.n = n
	var err error
	o.sub, err = n.queue.Subscribe(ownSubject(n.cfg.Node), func(m *nats.Msg) { go o.serve(m) })
	n.wg.Add(1)
	go o.forget()
	return err
}

// Ended implements broker.Cluster. An id whose session ended is dropped
// from the bucket, so that it does not grow with every id ever seen;
// when too many end at once some stay, which costs a record and, at the
// id's next connect elsewhere, one question to this node.
func (n *Node) Ended(id string) {
	select {
	case n.owners.ended <- id:
	default:
	}
}

// forget deletes the owner records of ended sessions that are still this
// node's and have no new session here.
func (o *owners) forget() {
	defer o.n.wg.Done()
	for {
		var id string
		select {
		case id = <-o.ended:
		case <-o.n.stop:
			return
		}
		if o.n.alone() {
			continue
		}
		l := o.lock(id)
		if !o.n.b.HasSession(id) {
			ctx, cancel := o.n.ctx(5 * time.Second)
			if kv, err := o.bucket(ctx); err == nil {
				if e, err := kv.Get(ctx, ownerKey(id)); err == nil && string(e.Value()) == o.n.cfg.Node {
					kv.Delete(ctx, ownerKey(id), jetstream.LastRevision(e.Revision()))
				}
			}
			cancel()
		}
		o.unlock(id, l)
	}
}

// bucket returns the owners bucket, creating it the first time: JetStream
// may need a moment after the nodes start to elect its leader.
func (o *owners) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	o.kvMu.Lock()
	kv := o.kv
	o.kvMu.Unlock()
	if kv != nil {
		return kv, nil
	}
	// Not under kvMu: one connect waiting for JetStream must not hold up
	// the others, which wait (each within its own deadline) alike.
	kv, err := openBucket(ctx, o.n, jetstream.KeyValueConfig{Bucket: ownersBucket, History: 1})
	if err != nil {
		return nil, err
	}
	o.kvMu.Lock()
	o.kv = kv
	o.kvMu.Unlock()
	return kv, nil
}

// openBucket binds to a key-value bucket, or creates it with this node's
// replica count; another node may have created it with its own.
func openBucket(ctx context.Context, n *Node, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	for {
		// Each try bounded: a request made before JetStream had a
		// leader is never answered.
		try, cancel := context.WithTimeout(ctx, 2*time.Second)
		kv, err := n.js.KeyValue(try, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			cfg.Replicas = n.cfg.replicas()
			kv, err = n.js.CreateKeyValue(try, cfg)
		}
		cancel()
		if err == nil {
			return kv, nil
		}
		// Not ready yet, not enough nodes yet for the replicas, or
		// created by another node meanwhile (bound to next time round).
		if ctx.Err() != nil {
			return nil, fmt.Errorf("cluster: bucket %s: %w", cfg.Bucket, err)
		}
		n.log.Debug("cluster: bucket not open yet", "bucket", cfg.Bucket, "err", err)
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: bucket %s: %w", cfg.Bucket, err)
		}
	}
}

func (o *owners) lock(id string) *claimLock {
	o.mu.Lock()
	l := o.locks[id]
	if l == nil {
		l = &claimLock{}
		o.locks[id] = l
	}
	l.users++
	o.mu.Unlock()
	l.mu.Lock()
	return l
}

func (o *owners) unlock(id string, l *claimLock) {
	o.mu.Lock()
	l.rev = 0
	if l.users--; l.users == 0 {
		delete(o.locks, id)
	}
	o.mu.Unlock()
	l.mu.Unlock()
}

// Claim implements broker.Cluster.
func (n *Node) Claim(ctx context.Context, c *auth.Client, granted, clean bool) (func(), error) {
	o := &n.owners
	id := c.ClientID
	l := o.lock(id)
	release := func() { o.unlock(id, l) }
	if n.alone() {
		return release, nil // nobody else to take it from
	}
	if err := n.awaitFollowing(ctx); err != nil {
		release()
		return nil, err
	}
	prev, rev, err := o.take(ctx, id)
	if err != nil {
		release()
		return nil, err
	}
	if prev == "" || prev == n.cfg.Node {
		// A local takeover, if any, is the broker's. A persistent
		// session that nobody serves, or that this node let go of on a
		// stale read of its owner, is still in the store.
		if n.st != nil && !clean && !n.b.HasSession(id) {
			if err := n.adopt(ctx, id, n.position()); err != nil {
				release()
				return nil, err
			}
		}
		return release, nil
	}
	req, _ := json.Marshal(takeover{ID: id, Rev: rev, Identity: c.Identity(), Granted: granted, Clean: clean})
	reply, err := n.queue.RequestWithContext(ctx, ownSubject(prev), req)
	if err != nil {
		// The previous owner is gone (or does not answer). Without a
		// replicated store its session went with it, and the client
		// starts afresh here; with one, the session resumes from what
		// that node stored, and the messages after its cursor.
		n.log.Info("cluster: client id taken from a node that did not answer", "client", id, "from", prev, "err", err)
		if n.st == nil {
			return release, nil
		}
		cursor, _, err := n.st.Cursor(ctx, prev)
		if err == nil {
			err = n.adopt(ctx, id, cursor)
		}
		if err != nil {
			o.giveBack(id, prev, rev)
			release()
			return nil, err
		}
		return release, nil
	}
	var r takeoverReply
	if err := json.Unmarshal(reply.Data, &r); err != nil {
		release()
		return nil, fmt.Errorf("cluster: takeover reply from %s: %w", prev, err)
	}
	switch r.Status {
	case "ok":
		n.stats.takeovers.Add(1)
		if n.st != nil {
			if err := n.adopt(ctx, id, r.Cursor); err != nil {
				// The session is in the store; the node that let it go
				// remembers where, for the client's next try.
				o.giveBack(id, prev, rev)
				release()
				return nil, err
			}
		} else if r.Session != nil {
			if err := n.b.ImportSession(r.Session); err != nil {
				release()
				return nil, err
			}
		}
		return release, nil
	case "not_owner":
		// Not this client's to take: the id goes back to where it was.
		if kv, err := o.bucket(ctx); err == nil {
			kv.Update(ctx, ownerKey(id), []byte(prev), rev)
		}
		release()
		return nil, fmt.Errorf("%w: %s", broker.ErrNotOwner, r.Error)
	case "superseded":
		release()
		return nil, fmt.Errorf("cluster: client id %q taken by a later connect on node %s", id, prev)
	}
	// It still has the session: the id goes back, for the next try.
	o.giveBack(id, prev, rev)
	release()
	return nil, fmt.Errorf("cluster: takeover on node %s: %s", prev, r.Error)
}

// giveBack returns client id to node prev after a claim that took it (at
// revision rev) failed to bring its session here: the next claim then
// starts from where prev left the session, not from this node.
func (o *owners) giveBack(id, prev string, rev uint64) {
	ctx, cancel := o.n.ctx(5 * time.Second)
	defer cancel()
	if kv, err := o.bucket(ctx); err == nil {
		kv.Update(ctx, ownerKey(id), []byte(prev), rev)
	}
}

// take records this node as id's owner and returns the previous owner
// ("" for none) and the record's new revision.
func (o *owners) take(ctx context.Context, id string) (prev string, rev uint64, err error) {
	kv, err := o.bucket(ctx)
	if err != nil {
		return "", 0, err
	}
	key, self := ownerKey(id), []byte(o.n.cfg.Node)
	for {
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			prev = ""
			rev, err = kv.Create(ctx, key, self)
		case err == nil:
			prev = string(e.Value())
			rev, err = kv.Update(ctx, key, self, e.Revision())
		}
		if err == nil {
			o.mu.Lock()
			o.locks[id].rev = rev
			o.mu.Unlock()
			return prev, rev, nil
		}
		if ctx.Err() != nil {
			return "", 0, fmt.Errorf("cluster: owner of client id: %w", err)
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			// The bucket's leader is being elected, or just was: a
			// moment later it answers.
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return "", 0, fmt.Errorf("cluster: owner of client id: %w", err)
			}
		}
		// Otherwise another node took it meanwhile: take it from that one.
	}
}

// serve answers a takeover asked by the node that now owns a client id.
func (o *owners) serve(m *nats.Msg) {
	var req takeover
	if err := json.Unmarshal(m.Data, &req); err != nil {
		o.respond(m, takeoverReply{Status: "error", Error: err.Error()})
		return
	}
	o.mu.Lock()
	if l := o.locks[req.ID]; l != nil && l.rev > req.Rev {
		// A connect here took the id after the asker did: the asker's
		// client lost before it began.
		o.mu.Unlock()
		o.respond(m, takeoverReply{Status: "superseded"})
		return
	}
	o.mu.Unlock()
	// Briefly: the asker takes a node that does not answer for dead.
	ctx, cancel := o.n.ctx(2 * time.Second)
	err := o.n.awaitFollowing(ctx)
	cancel()
	if err != nil {
		o.respond(m, takeoverReply{Status: "error", Error: err.Error()})
		return
	}
	l := o.lock(req.ID)
	f := &o.n.fwd
	f.mu.Lock() // the session leaves between two messages of the stream
	st, err := o.n.b.ReleaseSession(req.ID, req.Identity, req.Granted, req.Clean)
	cursor := f.processed
	f.mu.Unlock()
	if o.n.st != nil {
		cursor = o.letGo(req.ID, st != nil, cursor)
		st = nil // the other node loads it from the store
	}
	o.unlock(req.ID, l)
	switch {
	case errors.Is(err, broker.ErrNotOwner):
		o.respond(m, takeoverReply{Status: "not_owner", Error: err.Error()})
	case err != nil:
		o.respond(m, takeoverReply{Status: "error", Error: err.Error()})
	default:
		o.n.stats.released.Add(1)
		o.respond(m, takeoverReply{Status: "ok", Session: st, Cursor: cursor})
	}
}

func (o *owners) respond(m *nats.Msg, r takeoverReply) {
	data, _ := json.Marshal(r)
	if err := m.Respond(data); err != nil {
		o.n.log.Warn("cluster: takeover reply", "err", err)
	}
}

// readOwner reads the owner of a client id whose record exists: a read
// may be served by a replica a moment behind, which does not have it yet.
// It returns "" if ctx ends first.
func readOwner(ctx context.Context, kv jetstream.KeyValue, id string) string {
	for {
		if e, err := kv.Get(ctx, ownerKey(id)); err == nil {
			return string(e.Value())
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ""
		}
	}
}

// reconcile drops the sessions restored here that another node took over
// while this one was down: the client id is that node's now.
func (o *owners) reconcile(ctx context.Context) {
	kv, err := o.bucket(ctx)
	if err != nil {
		o.n.log.Warn("cluster: sessions not checked against their owners", "err", err)
		return
	}
	self := o.n.cfg.Node
	for _, id := range o.n.b.SessionIDs() {
		l := o.lock(id)
		owner := self
		e, err := kv.Get(ctx, ownerKey(id))
		switch {
		case err == nil:
			owner = string(e.Value())
		case errors.Is(err, jetstream.ErrKeyNotFound) && o.n.st != nil:
			// Every node restores the shared store's sessions: one
			// that nobody owns goes to the first node to claim it.
			if _, err := kv.Create(ctx, ownerKey(id), []byte(self)); err != nil {
				owner = readOwner(ctx, kv, id)
			}
		}
		if owner != self {
			// It lives on there: no will goes out here.
			if _, err := o.n.b.ReleaseSession(id, auth.Identity{}, true, false); err == nil {
				o.n.log.Info("cluster: stale session dropped: another node owns the client id", "client", id, "owner", owner)
			}
		}
		o.unlock(id, l)
	}
}
