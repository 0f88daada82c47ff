package topic

// indexThreshold is the list length above which subs keeps an index map.
// Below it a linear scan beats hashing, and most filters have one or a few
// subscribers.
const indexThreshold = 8

// subs is the set of plain subscriptions at one node.
//
// It is a slice because Match, the hot path, iterates it: a linear scan over
// contiguous memory, with no map iterator set-up or random start. Removal
// swaps the last element into the hole (plain subscriptions have no order),
// so it is O(1) once the element is found. Finding is a linear scan while the
// list is short; past indexThreshold an index map from key to position keeps
// Add and Remove O(1) for hot filters with thousands of subscribers (say,
// every device subscribed to "config/all"), where a scan would make a mass
// disconnect quadratic.
type subs[K comparable, V any] struct {
	list []Member[K, V]
	idx  map[K]int // position in list; nil while len(list) <= indexThreshold
}

// find returns key's position in list, or -1.
func (s *subs[K, V]) find(key K) int {
	if s.idx != nil {
		if i, ok := s.idx[key]; ok {
			return i
		}
		return -1
	}
	for i := range s.list {
		if s.list[i].Key == key {
			return i
		}
	}
	return -1
}

// set adds or replaces key's value; reports whether it replaced.
func (s *subs[K, V]) set(key K, val V) (replaced bool) {
	if i := s.find(key); i >= 0 {
		s.list[i].Val = val
		return true
	}
	s.list = append(s.list, Member[K, V]{Key: key, Val: val})
	switch {
	case s.idx != nil:
		s.idx[key] = len(s.list) - 1
	case len(s.list) > indexThreshold:
		s.idx = make(map[K]int, len(s.list))
		for i := range s.list {
			s.idx[s.list[i].Key] = i
		}
	}
	return false
}

// del removes key; reports whether it was there.
func (s *subs[K, V]) del(key K) bool {
	i := s.find(key)
	if i < 0 {
		return false
	}
	last := len(s.list) - 1
	if i != last {
		s.list[i] = s.list[last]
		if s.idx != nil {
			s.idx[s.list[i].Key] = i
		}
	}
	s.list[last] = Member[K, V]{} // release references
	s.list = shrink(s.list[:last])
	if s.idx != nil {
		delete(s.idx, key)
		// Hysteresis: drop the index well below the threshold so a list
		// hovering around it does not rebuild the map on every Add.
		if len(s.list) <= indexThreshold/2 {
			s.idx = nil
		}
	}
	return true
}

// shrink releases the backing array of a slice that has emptied or fallen
// to a quarter of its capacity, so memory follows live subscriptions after
// a burst of them.
func shrink[T any](s []T) []T {
	switch {
	case len(s) == 0:
		return nil
	case cap(s) > 64 && len(s) < cap(s)/4:
		return append(make([]T, 0, 2*len(s)), s...)
	}
	return s
}
