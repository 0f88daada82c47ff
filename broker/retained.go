package broker

import (
	"strings"
	"sync"
	"time"

	"github.com/ternmq/tern/store"
)

// retained holds the last retained message of each topic in a tree of
// topic levels, so a wildcard subscription visits only matching branches.
type retained struct {
	mu    sync.RWMutex
	root  rnode
	n     int
	bytes int64 // retainedCost of every message held
}

type rnode struct {
	children map[string]*rnode
	msg      *Message
}

// rnodeCost is about what one level of the tree costs in memory (node,
// map and entry): a topic of many short levels costs far more than its
// bytes.
const rnodeCost = 256

// retainedCost is what a retained message counts against
// MaxRetainedBytes: its bytes, and its levels as if none were shared.
func retainedCost(m *Message) int64 {
	return int64(len(m.Topic)+len(m.Payload)) + int64(strings.Count(m.Topic, "/")+1)*rnodeCost
}

// retainLimits bound the retained set; 0: none.
type retainLimits struct {
	n     int
	bytes int64
}

// set stores m as the retained message of its topic, or clears the topic
// when the payload is empty [MQTT-3.3.1-10] [MQTT-3.3.1-11], and writes
// the change to st (if not nil) under the same lock, so that memory and
// store see updates of one topic in the same order. It returns the
// ticket of the store write, and false when m was not kept because the
// set would exceed lim.
func (r *retained) set(m *Message, st store.Store, lim retainLimits) (store.Ticket, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(m.Payload) == 0 {
		if r.remove(m.Topic) && st != nil {
			return st.DeleteRetained(m.Topic), true
		}
		return 0, true
	}
	cost := retainedCost(m)
	old := r.find(m.Topic)
	grow := cost
	if old != nil {
		grow -= retainedCost(old)
	}
	if (lim.n > 0 && old == nil && r.n >= lim.n) || (lim.bytes > 0 && grow > 0 && r.bytes+grow > lim.bytes) {
		return 0, false
	}
	n := &r.root
	for level := range strings.SplitSeq(m.Topic, "/") {
		child := n.children[level]
		if child == nil {
			if n.children == nil {
				n.children = make(map[string]*rnode)
			}
			child = &rnode{}
			n.children[level] = child
		}
		n = child
	}
	if n.msg == nil {
		r.n++
	}
	n.msg = m
	r.bytes += grow
	if st != nil {
		return st.PutRetained(m), true
	}
	return 0, true
}

// find returns the message retained for topic, or nil. mu must be held.
func (r *retained) find(topic string) *Message {
	n := &r.root
	for level := range strings.SplitSeq(topic, "/") {
		if n = n.children[level]; n == nil {
			return nil
		}
	}
	return n.msg
}

// remove clears topic and prunes empty branches. mu must be held.
func (r *retained) remove(topic string) bool {
	var walk func(n *rnode, rest string) (found, empty bool)
	walk = func(n *rnode, rest string) (bool, bool) {
		level, tail, more := strings.Cut(rest, "/")
		child := n.children[level]
		if child == nil {
			return false, false
		}
		var found bool
		if more {
			var empty bool
			if found, empty = walk(child, tail); empty {
				delete(n.children, level)
			}
		} else if child.msg != nil {
			r.bytes -= retainedCost(child.msg)
			child.msg, found = nil, true
			if len(child.children) == 0 {
				delete(n.children, level)
			}
		}
		return found, n.msg == nil && len(n.children) == 0
	}
	found, _ := walk(&r.root, topic)
	if found {
		r.n--
	}
	return found
}

// match calls fn for each unexpired retained message whose topic matches
// filter. fn runs under the read lock and must not call back into r. The
// walk lets the lock go every matchChunk nodes, so that a filter matching
// a million messages does not hold up retained publishes for the whole
// of it: a topic set meanwhile in a part already walked is not visited
// (a subscriber gets it live), one replaced in a part not yet walked is
// visited with its new message.
func (r *retained) match(filter string, now time.Time, fn func(*Message)) {
	w := r.walk(filter, now, fn)
	for !r.resume(w, -1) {
	}
}

// walk starts a match that resume carries out.
func (r *retained) walk(filter string, now time.Time, fn func(*Message)) *rwalk {
	return &rwalk{now: now, fn: fn, stack: []rstep{{n: &r.root, filter: filter, root: true}}}
}

// resume carries w on for at most chunks holds of the read lock (all of
// them if negative) and reports whether it is done.
func (r *retained) resume(w *rwalk, chunks int) bool {
	for ; len(w.stack) > 0 && chunks != 0; chunks-- {
		r.mu.RLock()
		for budget := matchChunk; budget > 0 && len(w.stack) > 0; budget-- {
			w.step()
		}
		r.mu.RUnlock()
	}
	return len(w.stack) == 0
}

// matchChunk is how many tree nodes match visits per hold of the read
// lock: about a millisecond.
const matchChunk = 4096

// rwalk is a walk of the tree for a filter that can stop between any two
// nodes and resume: the nodes still to visit are on a stack, never in
// Go's call stack. A node taken out of the tree meanwhile is empty (remove
// prunes only empty branches), so visiting it finds nothing.
type rwalk struct {
	now   time.Time
	fn    func(*Message)
	stack []rstep
}

// rstep is a node still to visit: with all set, it and everything below
// it match; otherwise its children are matched against filter.
type rstep struct {
	n      *rnode
	filter string
	root   bool // n is the root: wildcards skip '$' topics [MQTT-4.7.2-1]
	all    bool
}

// step visits the node on top of the stack. r.mu must be held for reading.
func (w *rwalk) step() {
	st := w.stack[len(w.stack)-1]
	w.stack[len(w.stack)-1] = rstep{}
	w.stack = w.stack[:len(w.stack)-1]
	n := st.n
	if st.all {
		n.emit(w.now, w.fn)
		for _, c := range n.children {
			w.stack = append(w.stack, rstep{n: c, all: true})
		}
		return
	}
	level, rest, more := strings.Cut(st.filter, "/")
	switch level {
	case "#":
		// '#' matches the parent level too: "a/#" matches "a" [MQTT-4.7.1-2].
		if !st.root {
			n.emit(w.now, w.fn)
		}
		n.each(st.root, func(c *rnode) { w.stack = append(w.stack, rstep{n: c, all: true}) })
	case "+":
		n.each(st.root, func(c *rnode) { w.next(c, rest, more) })
	default:
		if c := n.children[level]; c != nil {
			w.next(c, rest, more)
		}
	}
}

// next continues matching the rest of a filter below c.
func (w *rwalk) next(c *rnode, rest string, more bool) {
	if more {
		w.stack = append(w.stack, rstep{n: c, filter: rest})
	} else {
		c.emit(w.now, w.fn)
	}
}

// each visits the children a wildcard may match: at the root, not the
// topics that start with '$' [MQTT-4.7.2-1].
func (n *rnode) each(root bool, fn func(*rnode)) {
	for level, c := range n.children {
		if root && strings.HasPrefix(level, "$") {
			continue
		}
		fn(c)
	}
}

func (n *rnode) emit(now time.Time, fn func(*Message)) {
	if n.msg != nil && !expired(n.msg, now) {
		fn(n.msg)
	}
}

// sweep removes expired messages and returns how many.
func (r *retained) sweep(now time.Time, st store.Store) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var topics []string
	var walk func(n *rnode)
	walk = func(n *rnode) {
		if n.msg != nil && expired(n.msg, now) {
			topics = append(topics, n.msg.Topic)
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(&r.root)
	for _, t := range topics {
		r.remove(t)
		st.DeleteRetained(t)
	}
	return len(topics)
}

// get returns the unexpired message retained for topic, or nil.
func (r *retained) get(topic string, now time.Time) *Message {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if m := r.find(topic); m != nil && !expired(m, now) {
		return m
	}
	return nil
}

// delete clears topic and writes the deletion to st under the same lock,
// as set does; false: nothing was retained there.
func (r *retained) delete(topic string, st store.Store) (store.Ticket, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.remove(topic) {
		return 0, false
	}
	return st.DeleteRetained(topic), true
}

func (r *retained) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.n
}

func expired(m *Message, now time.Time) bool {
	return !m.Expiry.IsZero() && !now.Before(m.Expiry)
}

// retain keeps m as its topic's retained message, within the configured
// limits. Beyond them it is still delivered but not kept: counted, and
// logged at most once a minute, however many clients push against it.
func (b *Broker) retain(m *Message) store.Ticket {
	o := b.opts()
	t, ok := b.retained.set(m, b.store, retainLimits{limit(o.MaxRetained), limit(o.MaxRetainedBytes)})
	if ok {
		return t
	}
	n := b.stats.retainedRefused.Add(1)
	now := time.Now().UnixNano()
	if last := b.retainedFullLogged.Load(); now-last >= int64(time.Minute) && b.retainedFullLogged.CompareAndSwap(last, now) {
		b.log.Warn("retained message not kept: the retained set is full (limits.max_retained_messages, limits.max_retained_bytes)",
			"topic", m.Topic, "retained", b.retained.Len(), "refused_total", n)
	}
	return 0
}
