package pebble

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ternmq/tern/store"
)

// Group commit: writes go into the pending batch, whose ticket they
// return; one committer goroutine swaps the pending batch for a new one
// and commits it (with an fsync at the sync level) while the next group
// gathers. Many messages thus share one fsync, and nobody but the
// committer and the acknowledgements that need it ever waits for the disk.

// ErrClosed is the error for writes after Close.
var ErrClosed = errors.New("store: closed")

// committer holds the group-commit state of a Store.
type committer struct {
	db    *pebble.DB
	write *pebble.WriteOptions

	// hold is held shared by Atomic and exclusively while the committer
	// swaps batches, so an Atomic group never straddles two commits.
	hold    sync.RWMutex
	mu      sync.Mutex // guards the fields below
	pending *pebble.Batch
	next    store.Ticket // ticket of pending
	tally   tally        // what pending holds
	closing bool

	kick    chan struct{}
	stopped chan struct{}

	done      sync.Mutex // guards committed and err, with cond
	cond      sync.Cond
	committed atomic.Uint64
	err       error

	commits, syncs atomic.Uint64
	// records and bytes committed: sets, deletes and range deletes, and
	// their keys and values (Stats).
	records, bytes atomic.Uint64
	onCommit       func(time.Duration, int) // Options.OnCommit
	// seal, if not nil, adds the writes held back for the end of the
	// pending batch (bodies.go); it runs with mu held, just before the
	// committer takes the batch.
	seal func(w writer)
}

func (c *committer) start(db *pebble.DB, d Durability, syncInterval time.Duration) {
	c.db = db
	c.write = pebble.NoSync
	if d == Sync {
		c.write = pebble.Sync
	}
	c.pending = db.NewBatch()
	c.next = 1
	c.cond.L = &c.done
	c.kick = make(chan struct{}, 1)
	c.stopped = make(chan struct{})
	go c.loop(d == Batch, syncInterval)
}

// Write operations: kv holds the key in kv[:k] and the value (for
// opSet) or the end of the range (for opDeleteRange) after it.
const (
	opSet = iota
	opDelete
	opDeleteRange
)

// apply adds one write to the pending batch, which copies kv, and returns
// its ticket.
func (c *committer) apply(op int, kv []byte, k int) store.Ticket {
	return c.submit(func(w writer) {
		switch op {
		case opSet:
			w.set(kv[:k], kv[k:])
		case opDelete:
			w.delete(kv[:k])
		case opDeleteRange:
			w.deleteRange(kv[:k], kv[k:])
		}
	})
}

// submit runs f with c.mu held and returns the ticket of the writes f
// adds: they land in one batch, in the order of all other submissions,
// so state that f keeps beside the database (the message bodies' index)
// changes in the order of the writes that record it.
func (c *committer) submit(f func(w writer)) store.Ticket {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return store.Ticket(^uint64(0)) // never committed: Wait fails
	}
	f(writer{c})
	t := c.next
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return t
}

// writer adds writes to the pending batch, which copies what it is
// given, and counts them. It is valid only inside submit.
type writer struct{ c *committer }

func (w writer) set(k, v []byte) {
	w.c.pending.Set(k, v, nil)
	w.count(len(k) + len(v))
}

func (w writer) delete(k []byte) {
	w.c.pending.Delete(k, nil)
	w.count(len(k))
}

func (w writer) deleteRange(start, end []byte) {
	w.c.pending.DeleteRange(start, end, nil)
	w.count(len(start) + len(end))
}

func (w writer) count(n int) {
	w.c.tally.records++
	w.c.tally.bytes += uint64(n)
}

// tally counts the records of a batch and the bytes of their keys and
// values.
type tally struct{ records, bytes uint64 }

// flush commits what is pending and waits for it.
func (c *committer) flush() error {
	c.mu.Lock()
	t := c.next
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return c.wait(t)
}

func (c *committer) atomic(f func()) {
	c.hold.RLock()
	defer c.hold.RUnlock()
	f()
}

func (c *committer) loop(batchSync bool, interval time.Duration) {
	defer close(c.stopped)
	var tick <-chan time.Time
	if batchSync {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	var synced uint64 // commits covered by the last sync
	for {
		select {
		case <-c.kick:
		case <-tick:
			if n := c.commits.Load(); n != synced {
				c.syncWAL()
				synced = n
			}
			continue
		}
		c.hold.Lock()
		c.mu.Lock()
		if c.seal != nil {
			c.seal(writer{c})
		}
		b, t, n, last := c.pending, c.next, c.tally, c.closing
		if !last {
			c.pending = c.db.NewBatch()
			c.next++
			c.tally = tally{}
		}
		c.mu.Unlock()
		c.hold.Unlock()
		c.commit(b, t, n)
		if last {
			if batchSync {
				c.syncWAL()
			}
			return
		}
	}
}

// commit writes one group, n its tally, and wakes whoever waits for it.
func (c *committer) commit(b *pebble.Batch, t store.Ticket, n tally) {
	err := c.failed()
	var took time.Duration
	records := -1 // nothing written
	if err == nil && !b.Empty() {
		start := time.Now()
		err = b.Commit(c.write)
		took, records = time.Since(start), int(b.Count())
		c.commits.Add(1)
		if c.write.Sync {
			c.syncs.Add(1)
		}
		if err == nil {
			c.records.Add(n.records)
			c.bytes.Add(n.bytes)
		}
	}
	b.Close()
	c.done.Lock()
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("store: commit: %w", err)
	}
	if c.err == nil {
		c.committed.Store(uint64(t))
	}
	c.cond.Broadcast()
	c.done.Unlock()
	if c.onCommit != nil && records >= 0 && err == nil {
		c.onCommit(took, records)
	}
}

// syncWAL makes everything committed so far durable (the batch level).
func (c *committer) syncWAL() {
	if err := c.db.LogData([]byte{0}, pebble.Sync); err != nil {
		c.done.Lock()
		if c.err == nil {
			c.err = fmt.Errorf("store: sync: %w", err)
		}
		c.cond.Broadcast()
		c.done.Unlock()
		return
	}
	c.syncs.Add(1)
}

func (c *committer) failed() error {
	c.done.Lock()
	defer c.done.Unlock()
	return c.err
}

func (c *committer) wait(t store.Ticket) error {
	if uint64(t) <= c.committed.Load() {
		return nil
	}
	c.done.Lock()
	defer c.done.Unlock()
	for uint64(t) > c.committed.Load() && c.err == nil {
		c.cond.Wait()
	}
	if uint64(t) <= c.committed.Load() {
		return nil
	}
	return c.err
}

// stop commits what is pending and ends the committer; later writes fail.
func (c *committer) stop() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	<-c.stopped
	c.done.Lock()
	if c.err == nil {
		c.err = ErrClosed
	}
	c.cond.Broadcast()
	c.done.Unlock()
}
