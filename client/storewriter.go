package client

import (
	"errors"
	"log/slog"
	"sync"
)

// BatchStore is a Store that can apply several changes at once, with one
// sync for all of them (DirStore is one). A Session groups its writes: the
// changes that come while a batch is being written form the next.
type BatchStore interface {
	Store
	// Apply writes puts and removes deletes (no Seq is in both) and
	// returns once all of it is durable.
	Apply(puts []StoredMessage, deletes []uint64) error
}

// storeWriter applies a Session's Store writes on its own goroutine, in the
// order they were made, so that neither the connection's reader (which
// completes flows) nor a lock waits for the disk. What comes while a batch
// is written forms the next one (group commit): several changes to one
// message become its last, and a message stored and deleted within a
// batch is only deleted.
type storeWriter struct {
	st   Store
	log  *slog.Logger
	mu   sync.Mutex
	ops  []storeOp
	wake chan struct{} // capacity 1
	quit bool          // close was called: drain and return
	done chan struct{} // closed when the goroutine has returned
}

type storeOp struct {
	m     StoredMessage // Publish nil: delete m.Seq
	after func(error)   // if set, called once the change is durable (or failed), in order
}

func newStoreWriter(st Store, log *slog.Logger) *storeWriter {
	w := &storeWriter{st: st, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// errStoreClosed is what a change made after close is told.
var errStoreClosed = errors.New("client: store: closed")

// add queues op; it does not block, and never calls op.after itself: a
// caller may hold the lock after takes.
func (w *storeWriter) add(op storeOp) {
	w.mu.Lock()
	if w.quit {
		w.mu.Unlock()
		if op.after != nil {
			go op.after(errStoreClosed)
		}
		return
	}
	w.ops = append(w.ops, op)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// close waits until every queued change is applied.
func (w *storeWriter) close() {
	w.mu.Lock()
	w.quit = true
	w.mu.Unlock()
	// The goroutine drains what was queued before quit, then returns.
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}

func (w *storeWriter) run() {
	defer close(w.done)
	for {
		<-w.wake
		for {
			w.mu.Lock()
			ops, quit := w.ops, w.quit
			w.ops = nil
			w.mu.Unlock()
			if len(ops) == 0 {
				if quit {
					return
				}
				break
			}
			err := w.apply(ops)
			if err != nil {
				// Told to those who wait for it (Publish); the others'
				// stored copies stay one step behind.
				w.log.Error("mqtt session store write failed", "error", err, "changes", len(ops))
			}
			for _, op := range ops {
				if op.after != nil {
					op.after(err)
				}
			}
		}
	}
}

// apply writes one batch: for each message its last change only.
func (w *storeWriter) apply(ops []storeOp) error {
	last := make(map[uint64]int, len(ops))
	for i, op := range ops {
		last[op.m.Seq] = i
	}
	var puts []StoredMessage
	var deletes []uint64
	for i, op := range ops {
		if last[op.m.Seq] != i {
			continue
		}
		if op.m.Publish != nil {
			puts = append(puts, op.m)
		} else {
			deletes = append(deletes, op.m.Seq)
		}
	}
	if bs, ok := w.st.(BatchStore); ok {
		return bs.Apply(puts, deletes)
	}
	var first error
	for _, m := range puts {
		if err := w.st.Put(m); err != nil && first == nil {
			first = err
		}
	}
	for _, seq := range deletes {
		if err := w.st.Delete(seq); err != nil && first == nil {
			first = err
		}
	}
	return first
}
