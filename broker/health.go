package broker

import (
	"fmt"

	"github.com/ternmq/tern/store"
)

// A store that failed a write may have lost it, and refuses every write
// after (store.Store's Wait). The broker then keeps its promise the only
// way left: it acknowledges no QoS 1 or 2 message any more, says so once
// in the log, and reports it in Health until restarted.

// Health returns nil while the broker can keep its durability promise,
// or why it cannot.
func (b *Broker) Health() error {
	if err := b.storeErr.Load(); err != nil {
		return *err
	}
	if b.cluster != nil {
		return b.cluster.Health()
	}
	return nil
}

// storeFailed records that a store write failed.
func (b *Broker) storeFailed(err error) {
	err = fmt.Errorf("store failed: %w", err)
	if b.storeErr.CompareAndSwap(nil, &err) {
		b.log.Error("QoS 1 and 2 messages are no longer acknowledged; restart once the store is fixed", "err", err)
	}
}

// wait waits for the store writes named by t, recording a failure.
func (b *Broker) wait(t store.Ticket) error {
	err := b.store.Wait(t)
	if err != nil {
		b.storeFailed(err)
	}
	return err
}
