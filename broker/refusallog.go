package broker

import (
	"net"
	"sync"
	"time"
)

// refusalLogEvery is how often at most a connection refused before its
// CONNECT is read (a connection limit, the pre-CONNACK budget) is logged.
// Those come in floods; a refusal of a CONNECT is logged every time.
const refusalLogEvery = time.Second

// rateLog lets one log line through per refusalLogEvery and counts the
// lines it holds back.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether a line may be logged at now and, if so, how many
// were held back since the last one.
func (r *rateLog) allow(now time.Time) (ok bool, suppressed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < refusalLogEvery {
		r.suppressed++
		return false, 0
	}
	r.last, suppressed, r.suppressed = now, r.suppressed, 0
	return true, suppressed
}

// logRefusedConn logs a connection refused before its CONNECT (or v5
// AUTH) was read, client "" when not known yet:
// one line at most per refusalLogEvery, with the count of those not
// logged since the previous line.
func (b *Broker) logRefusedConn(client string, remote net.Addr, reason string, attrs ...any) {
	if ok, suppressed := b.refusalLog.allow(time.Now()); ok {
		b.log.Info("connection refused", append([]any{"client", client, "remote", remote.String(), "reason", reason,
			"suppressed", suppressed}, attrs...)...)
	}
}
