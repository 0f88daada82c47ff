package client

import (
	"time"

	"github.com/ternmq/tern/packet"
)

// keepAliveLoop sends PINGREQ when nothing was sent for the keep-alive
// interval [MQTT-3.1.2-23], or nothing received (a client that only
// publishes QoS 0 would otherwise never notice a dead server), and ends
// the connection when a PINGRESP is a whole interval late.
func (c *Client) keepAliveLoop() {
	defer c.wg.Done()
	ka := c.keepAlive
	t := time.NewTimer(ka)
	defer t.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
		}
		c.mu.Lock()
		if c.pingOut && c.inbox.heldBack.Load() {
			// The reader has stopped reading for a full inbox since it
			// was last empty: the PINGRESP may wait behind messages. The server is not
			// late; we are. Count from now, and ping again when nothing
			// was sent for an interval, so that the server hears from us.
			c.pingAt = time.Now()
			if idle := c.w.sinceWrite(); idle < ka {
				c.mu.Unlock()
				t.Reset(ka - idle)
				continue
			}
		} else if c.pingOut {
			late := time.Since(c.pingAt)
			c.mu.Unlock()
			if late >= ka {
				c.shutdown(ErrKeepAliveTimeout)
				return
			}
			t.Reset(ka - late)
			continue
		}
		sinceRead := time.Since(c.w.start) - time.Duration(c.lastRead.Load())
		if idle := max(c.w.sinceWrite(), sinceRead); idle < ka {
			c.mu.Unlock()
			t.Reset(ka - idle)
			continue
		}
		c.pingOut = true
		c.pingAt = time.Now()
		c.mu.Unlock()
		// A write blocked behind a full socket must not stop this loop
		// from noticing the missing PINGRESP, so the ping goes out from
		// its own goroutine. Write failures end the connection.
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.reply(&packet.Pingreq{})
		}()
		t.Reset(ka)
	}
}
