package broker

import (
	"errors"

	"github.com/ternmq/tern/packet"
)

// Before CONNACK a client is a stranger, and what it can make the broker
// hold is bounded twice: each packet by MaxConnectSize, and the bodies
// being read by all such connections together by MaxPreAuthMemory. The
// packet reader itself grows a body only as its bytes arrive, so a
// declared length costs nothing until it is sent; the budget reserves the
// declared body bytes not yet buffered up front, which keeps the
// accounting simple and errs on the safe side.

var errPreAuthMemory = errors.New("memory for packets before CONNACK (max_preauth_memory) exhausted")

// readPreAuth reads a packet before CONNACK (version 0 for CONNECT): at
// most MaxConnectSize bytes, and only if the body bytes still to arrive fit
// in what is left of MaxPreAuthMemory. held is what it reserved, also when
// err is not nil: the caller releases it with releasePreAuth once done with
// the packet.
func (c *conn) readPreAuth(version byte) (pk packet.Packet, held int64, err error) {
	o := c.b.opts()
	maxSize := min(o.MaxConnectSize, o.MaxPacketSize)
	pk, err = packet.ReadPacketReserve(c.br, version, maxSize, func(n int) error {
		if !c.b.reservePreAuth(int64(n), o.MaxPreAuthMemory) {
			return errPreAuthMemory
		}
		held = int64(n)
		return nil
	})
	switch {
	case errors.Is(err, packet.PacketTooLarge):
		c.refused(refusedConnectSize)
		c.b.logRefusedConn(c.clientID, c.nc.RemoteAddr(), "packet before CONNACK larger than limits.max_connect_size", "max", maxSize)
	case errors.Is(err, errPreAuthMemory):
		c.refused(refusedPreAuthMemory)
		c.b.logRefusedConn(c.clientID, c.nc.RemoteAddr(), "no memory left for packets before CONNACK (limits.max_preauth_memory)", "max", o.MaxPreAuthMemory)
	}
	return pk, held, err
}

// reservePreAuth takes n bytes from the pre-CONNACK budget of limit bytes,
// if they fit.
func (b *Broker) reservePreAuth(n, limit int64) bool {
	for {
		cur := b.stats.preAuth.Load()
		if cur+n > limit {
			return false
		}
		if b.stats.preAuth.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// releasePreAuth gives back n bytes reserved by readPreAuth.
func (b *Broker) releasePreAuth(n int64) {
	if n != 0 {
		b.stats.preAuth.Add(-n)
	}
}
