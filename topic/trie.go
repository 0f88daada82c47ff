package topic

import "sync"

// Member is one subscription: who (Key) and with what options (Val).
type Member[K comparable, V any] struct {
	Key K
	Val V
}

// Trie indexes subscriptions by filter. K identifies a subscriber (e.g. a
// client id), V is its subscription data (options).
//
// Filters are split into levels; each level is a node with literal children
// (a few in a slice, more in a map) and the '+' and '#' children in fields
// of their own, so matching a name costs one look-up per level plus the
// wildcard branches.
//
// A Trie is safe for concurrent use: Add and Remove take the write lock,
// Match and Len the read lock. The trie copies the strings it keeps, so
// callers may pass substrings of packet buffers.
type Trie[K comparable, V any] struct {
	mu   sync.RWMutex
	root *node[K, V] // never pruned
	n    int         // subscriptions: plain + shared memberships
}

// NewTrie returns an empty trie.
func NewTrie[K comparable, V any]() *Trie[K, V] {
	return &Trie[K, V]{root: new(node[K, V])}
}

// Add subscribes key to filter with val, replacing an existing subscription
// of key to the same filter; reports whether it replaced one. filter may be a
// shared filter "$share/group/f", stored in the group (group, f) at the node
// for f, not as a plain subscription. filter must be valid (ValidateFilter).
func (t *Trie[K, V]) Add(filter string, key K, val V) (replaced bool) {
	group, inner, shared := ParseShared(filter)
	if !shared {
		inner = filter
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.root
	for start := 0; start <= len(inner); {
		end := levelEnd(inner, start)
		n = n.childOrNew(inner[start:end])
		start = end + 1
	}
	if shared {
		replaced = n.addShared(group, inner, key, val)
	} else {
		replaced = n.subs.set(key, val)
	}
	if !replaced {
		t.n++
	}
	return replaced
}

// Remove deletes key's subscription to filter (shared filters too); reports
// whether it existed. Nodes left empty are pruned, so memory tracks live
// subscriptions.
func (t *Trie[K, V]) Remove(filter string, key K) bool {
	group, inner, shared := ParseShared(filter)
	if !shared {
		inner = filter
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.root.remove(inner, 0, shared, group, key) {
		return false
	}
	t.n--
	return true
}

// Match calls each(key, val) for every non-shared subscription whose filter
// matches the topic name, and shared(group, filter, members) once per matching
// shared group, where filter is the group's inner filter (a group is
// identified by the pair) and members are in insertion order. Either callback
// may be nil. A subscriber with several matching filters is reported once per
// filter; merging is the caller's job. name must be valid (ValidateName).
//
// The callbacks run under the read lock: they must not call Add or Remove
// (deadlock) nor Match (a pending writer would deadlock it), and must not
// retain or modify members. Match itself does not allocate.
func (t *Trie[K, V]) Match(name string, each func(key K, val V), shared func(group, filter string, members []Member[K, V])) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(name) > 0 && name[0] == '$' {
		// [MQTT-4.7.2-1] at the root, a '$' name follows only the literal
		// child: filters starting with '+' or '#' do not match it.
		end := levelEnd(name, 0)
		if c := t.root.literal(name[:end]); c != nil {
			c.match(name, end+1, each, shared)
		}
		return
	}
	t.root.match(name, 0, each, shared)
}

// Len returns the number of subscriptions (plain + shared memberships).
func (t *Trie[K, V]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.n
}
