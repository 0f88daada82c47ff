package topic

import "strings"

// node is one level of filters. The node reached by the levels of a filter
// holds that filter's subscriptions. The mutating methods require the
// trie's write lock, match the read lock.
//
// Most nodes have a few literal children at most (the levels under
// "devices/<id>/" of one device), so they are a slice while there are
// few: a map would cost a group of eight slots even for one. What few
// nodes need, wildcard children, a map of many children and shared
// groups, is in x: a node is 64 bytes, and most subscriptions make one or
// two of their own.
type node[K comparable, V any] struct {
	kids []kid[K, V] // literal levels while at most smallKids; nil when none or in x
	subs subs[K, V]  // plain subscriptions to this filter
	x    *more[K, V] // nil when it would be empty
}

// kid is a literal child level.
type kid[K comparable, V any] struct {
	level string
	n     *node[K, V]
}

// more is what few nodes need.
type more[K comparable, V any] struct {
	plus   *node[K, V]            // '+' level
	hash   *node[K, V]            // '#' level (always last in a valid filter)
	kids   map[string]*node[K, V] // literal levels, past smallKids
	groups []*group[K, V]         // shared groups on this filter; few per node
}

// smallKids is the number of literal children kept in a slice: a linear
// scan of a few beats hashing.
const smallKids = 8

// group is a shared subscription group, identified by (name, filter).
type group[K comparable, V any] struct {
	name    string
	filter  string         // the inner filter, handed to Match's callback
	members []Member[K, V] // insertion order, for round-robin by the caller
}

func (n *node[K, V]) empty() bool {
	return len(n.kids) == 0 && n.x == nil && len(n.subs.list) == 0
}

// groups returns the shared groups on n.
func (n *node[K, V]) groups() []*group[K, V] {
	if n.x == nil {
		return nil
	}
	return n.x.groups
}

// tidy drops x once empty.
func (n *node[K, V]) tidy() {
	if x := n.x; x != nil && x.plus == nil && x.hash == nil && len(x.kids) == 0 && len(x.groups) == 0 {
		n.x = nil
	}
}

// more returns x, made if needed.
func (n *node[K, V]) more() *more[K, V] {
	if n.x == nil {
		n.x = new(more[K, V])
	}
	return n.x
}

// literal returns the literal child for level, or nil.
func (n *node[K, V]) literal(level string) *node[K, V] {
	if n.x != nil && n.x.kids != nil {
		return n.x.kids[level]
	}
	for i := range n.kids {
		if n.kids[i].level == level {
			return n.kids[i].n
		}
	}
	return nil
}

// child returns the child for level, or nil.
func (n *node[K, V]) child(level string) *node[K, V] {
	switch level {
	case "+", "#":
		if n.x == nil {
			return nil
		}
		if level == "+" {
			return n.x.plus
		}
		return n.x.hash
	}
	return n.literal(level)
}

// childOrNew returns the child for level, creating it if needed.
func (n *node[K, V]) childOrNew(level string) *node[K, V] {
	if c := n.child(level); c != nil {
		return c
	}
	c := new(node[K, V])
	switch level {
	case "+":
		n.more().plus = c
	case "#":
		n.more().hash = c
	default:
		// Clone: the key must not pin the caller's (packet) buffer.
		level = strings.Clone(level)
		switch {
		case n.x != nil && n.x.kids != nil:
			n.x.kids[level] = c
		case len(n.kids) < smallKids:
			n.kids = append(n.kids, kid[K, V]{level, c})
		default:
			n.more().kids = make(map[string]*node[K, V], 2*smallKids)
			for _, k := range n.kids {
				n.x.kids[k.level] = k.n
			}
			n.x.kids[level] = c
			n.kids = nil
		}
	}
	return c
}

// deleteChild drops the child for level; the map goes when it is empty.
func (n *node[K, V]) deleteChild(level string) {
	switch level {
	case "+", "#":
		if n.x == nil {
			return
		}
		if level == "+" {
			n.x.plus = nil
		} else {
			n.x.hash = nil
		}
		n.tidy()
	default:
		if n.x != nil && n.x.kids != nil {
			delete(n.x.kids, level)
			if len(n.x.kids) == 0 {
				n.x.kids = nil
				n.tidy()
			}
			return
		}
		for i := range n.kids {
			if n.kids[i].level == level {
				last := len(n.kids) - 1
				n.kids[i] = n.kids[last]
				n.kids[last] = kid[K, V]{} // release references
				n.kids = shrink(n.kids[:last])
				return
			}
		}
	}
}

// remove deletes key's subscription to filter f, whose levels from start on
// lie below n (start > len(f): n is the filter's node), and prunes the
// children it leaves empty. Reports whether the subscription existed.
func (n *node[K, V]) remove(f string, start int, shared bool, groupName string, key K) bool {
	if start > len(f) {
		if shared {
			return n.removeShared(groupName, key)
		}
		return n.subs.del(key)
	}
	end := levelEnd(f, start)
	level := f[start:end]
	c := n.child(level)
	if c == nil || !c.remove(f, end+1, shared, groupName, key) {
		return false
	}
	if c.empty() {
		n.deleteChild(level)
	}
	return true
}

// addShared adds key to the group (name, filter) at n, replacing its value if
// it is already a member (keeping its place). Reports whether it replaced.
func (n *node[K, V]) addShared(name, filter string, key K, val V) (replaced bool) {
	var g *group[K, V]
	for _, x := range n.groups() {
		if x.name == name {
			g = x
			break
		}
	}
	if g == nil {
		g = &group[K, V]{name: strings.Clone(name), filter: strings.Clone(filter)}
		n.more().groups = append(n.more().groups, g)
	}
	for i := range g.members {
		if g.members[i].Key == key {
			g.members[i].Val = val
			return true
		}
	}
	g.members = append(g.members, Member[K, V]{Key: key, Val: val})
	return false
}

// removeShared removes key from the group name at n, keeping the order of the
// other members; an emptied group is dropped.
func (n *node[K, V]) removeShared(name string, key K) bool {
	for gi, g := range n.groups() {
		if g.name != name {
			continue
		}
		for i := range g.members {
			if g.members[i].Key != key {
				continue
			}
			last := len(g.members) - 1
			copy(g.members[i:], g.members[i+1:])
			g.members[last] = Member[K, V]{} // release references
			g.members = shrink(g.members[:last])
			if len(g.members) == 0 {
				// Groups have no order: swap the last one into the hole.
				gs := n.x.groups
				lg := len(gs) - 1
				gs[gi] = gs[lg]
				gs[lg] = nil
				n.x.groups = gs[:lg]
				if lg == 0 {
					n.x.groups = nil
					n.tidy()
				}
			}
			return true
		}
		return false
	}
	return false
}

// match reports the subscriptions below n matching name from start on
// (start > len(name): the name is exhausted and n is its node). The read
// lock must be held.
func (n *node[K, V]) match(name string, start int, each func(K, V), shared func(string, string, []Member[K, V])) {
	x := n.x
	// '#' matches the remaining levels, including none: "a/#" matches "a".
	if x != nil && x.hash != nil {
		x.hash.report(each, shared)
	}
	if start > len(name) {
		n.report(each, shared)
		return
	}
	end := levelEnd(name, start)
	if c := n.literal(name[start:end]); c != nil { // no allocation: lookup by substring
		c.match(name, end+1, each, shared)
	}
	if x != nil && x.plus != nil {
		x.plus.match(name, end+1, each, shared)
	}
}

// report hands n's subscriptions to the callbacks.
func (n *node[K, V]) report(each func(K, V), shared func(string, string, []Member[K, V])) {
	if each != nil {
		for i := range n.subs.list {
			m := &n.subs.list[i]
			each(m.Key, m.Val)
		}
	}
	if shared != nil {
		for _, g := range n.groups() {
			shared(g.name, g.filter, g.members)
		}
	}
}
