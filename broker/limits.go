package broker

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/ternmq/tern/topic"
)

// Limits that protect the broker and its other clients from one client:
// connections in total, per IP and per IP per second (checked before a
// byte is read), and inbound messages and bytes per second per
// connection (throttled by reading more slowly, which TCP turns into
// back-pressure on the client: nothing is dropped).

var (
	errTooManyConnections = errors.New("connection limit reached")
	errConnectRate        = errors.New("connection rate limit reached for this address")
)

// bucket is a token bucket holding at most one second's worth of tokens.
type bucket struct {
	tokens float64
	last   time.Time
}

// take removes n tokens at rate per second and returns how long until the
// balance is back to zero (0: no wait).
func (k *bucket) take(n, rate float64, now time.Time) time.Duration {
	if k.last.IsZero() {
		k.tokens = rate
	} else {
		k.tokens = min(rate, k.tokens+now.Sub(k.last).Seconds()*rate)
	}
	k.last = now
	k.tokens -= n
	if k.tokens >= 0 {
		return 0
	}
	return time.Duration(-k.tokens / rate * float64(time.Second))
}

// full reports whether the bucket has refilled, so it can be forgotten.
func (k *bucket) full(rate float64, now time.Time) bool {
	return rate <= 0 || k.tokens+now.Sub(k.last).Seconds()*rate >= rate
}

// admission counts connections per IP address.
type admission struct {
	mu    sync.Mutex
	total int
	perIP map[string]*ipState
}

type ipState struct {
	conns int
	rate  bucket
}

// hostOf returns the IP a connection comes from, "" when it has none (a
// unix socket): per-IP limits do not apply to it.
func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil || net.ParseIP(host) == nil {
		return ""
	}
	return host
}

// admit checks the connection limits for a new connection from ip and
// counts it; release must be called when it ends.
func (b *Broker) admit(ip string) error {
	o := b.opts()
	a := &b.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	if o.MaxConnections > 0 && a.total >= o.MaxConnections {
		return errTooManyConnections
	}
	var st *ipState
	if ip != "" {
		if a.perIP == nil {
			a.perIP = make(map[string]*ipState)
		}
		if st = a.perIP[ip]; st == nil {
			st = &ipState{}
			a.perIP[ip] = st
		}
		if o.MaxConnectionsPerIP > 0 && st.conns >= o.MaxConnectionsPerIP {
			return errTooManyConnections
		}
		if r := float64(o.ConnectRatePerIP); r > 0 && st.rate.take(1, r, time.Now()) > 0 {
			st.rate.tokens++ // refused: the attempt costs nothing
			return errConnectRate
		}
		st.conns++
	}
	a.total++
	return nil
}

func (b *Broker) release(ip string) {
	a := &b.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if st := a.perIP[ip]; st != nil {
		st.conns--
		if st.conns == 0 && st.rate.full(float64(b.opts().ConnectRatePerIP), time.Now()) {
			delete(a.perIP, ip)
		}
	}
}

// forgetIdleAddresses drops the rate state of addresses with no
// connection whose bucket has refilled, so the table does not grow with
// every address ever seen.
func (b *Broker) forgetIdleAddresses(now time.Time) {
	a := &b.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	for ip, st := range a.perIP {
		if st.conns == 0 && st.rate.full(float64(b.opts().ConnectRatePerIP), now) {
			delete(a.perIP, ip)
		}
	}
}

// topicLimits are the configured bounds on topic names and filters.
func (b *Broker) topicLimits() topic.Limits {
	o := b.opts()
	return topic.Limits{MaxLevels: limit(o.MaxTopicLevels), MaxLength: limit(o.MaxTopicLength)}
}

// throttle holds the reader back while the connection is over its message
// or byte rate: n is the bytes read since the last call.
func (c *conn) throttle(msgs, n int) {
	o := c.b.opts()
	now := time.Now()
	var wait time.Duration
	x := c.rare()
	if r := float64(o.MessageRate); r > 0 && msgs > 0 {
		wait = x.msgRate.take(float64(msgs), r, now)
	}
	if r := float64(o.ByteRate); r > 0 && n > 0 {
		wait = max(wait, x.byteRate.take(float64(n), r, now))
	}
	if wait > 0 {
		c.b.stats.throttled.Add(1)
		time.Sleep(min(wait, time.Second))
	}
}
