package broker

// LiveConns returns the connections the broker still serves, whether
// connected or in their last steps (flushing, lingering).
func (b *Broker) LiveConns() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}
