//go:build linux

package broker

// DetachedConns returns how many of the broker's connections have left
// the runtime's network poller (sockConn).
func (b *Broker) DetachedConns() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for c := range b.conns {
		if s, ok := c.nc.(*sockConn); ok && s.detached() {
			n++
		}
	}
	return n
}
