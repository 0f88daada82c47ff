package httpauth

import (
	"sync"
	"time"
)

// cache remembers decisions for a while. It holds at most max entries;
// when full, the entry inserted first goes, whether it was used or not:
// a lookup then needs only a read lock, which matters because Authorize
// runs for every delivery.
type cache[K comparable, V any] struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.RWMutex
	m    map[K]entry[V]
	fifo []K // insertion order, a ring of cap max; every key of m is in it once
	head int // oldest key once the ring is full
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// newCache returns a cache; ttl <= 0 or max <= 0 make one that holds
// nothing.
func newCache[K comparable, V any](ttl time.Duration, max int, now func() time.Time) *cache[K, V] {
	if ttl <= 0 || max <= 0 {
		return &cache[K, V]{}
	}
	return &cache[K, V]{ttl: ttl, now: now, m: make(map[K]entry[V]), fifo: make([]K, 0, max)}
}

// get returns the value for k if it is there and not expired.
func (c *cache[K, V]) get(k K) (V, bool) {
	var zero V
	if c.m == nil {
		return zero, false
	}
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !c.now().Before(e.expires) {
		return zero, false
	}
	return e.v, true
}

// put stores v for k for the cache's ttl.
func (c *cache[K, V]) put(k K, v V) {
	if c.m == nil {
		return
	}
	e := entry[V]{v: v, expires: c.now().Add(c.ttl)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		c.m[k] = e // keeps its place in the ring
		return
	}
	if len(c.fifo) < cap(c.fifo) {
		c.fifo = append(c.fifo, k)
	} else {
		delete(c.m, c.fifo[c.head])
		c.fifo[c.head] = k
		c.head = (c.head + 1) % len(c.fifo)
	}
	c.m[k] = e
}

// len returns the number of entries, expired ones included.
func (c *cache[K, V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
