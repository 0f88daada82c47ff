package listener

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// proxyHeaderTimeout bounds how long a new connection may take to send its
// PROXY header. The header is read on the connection's first Read or
// RemoteAddr, in the goroutine serving it, never in Accept: a slow or silent
// peer holds up only itself.
const proxyHeaderTimeout = 5 * time.Second

// defaultProxyTrusted is who may send a PROXY header when proxy_trusted is
// empty: loopback only, so that a listener reachable from elsewhere does
// not let any client forge its address (and with it per-address limits
// and logs) by speaking PROXY itself. A variable so that tests can trust
// part of loopback only.
var defaultProxyTrusted = []string{"127.0.0.0/8", "::1"}

// refusalLogInterval spaces the warnings about refused PROXY headers: an
// untrusted peer can send them as fast as it can connect, and must not
// flood the log.
const refusalLogInterval = time.Minute

// withProxy wraps l so that PROXY protocol v1 and v2 headers are read from
// the start of each connection when cfg asks for it. The header is
// optional, so that health checks and direct clients still get in. Only
// trusted upstreams (proxy_trusted, by default loopback) may send one; a
// header from any other fails the connection's first Read (the broker then
// closes it): a client cannot forge its address by speaking PROXY itself.
// A malformed header fails that connection alone.
func withProxy(l net.Listener, cfg Config) (net.Listener, error) {
	if !cfg.ProxyProtocol {
		return l, nil
	}
	policy, err := proxyPolicy(cfg)
	if err != nil {
		return nil, err
	}
	return &proxyListener{
		Listener: proxyproto.Listener{
			Listener:          l,
			ConnPolicy:        policy,
			ReadHeaderTimeout: proxyHeaderTimeout,
		},
		name: cfg.Type + " " + l.Addr().String(),
		log:  cfg.Logger,
	}, nil
}

// proxyPolicy decides, per upstream, what a PROXY header does: USE (the
// header is optional and, when sent, names the client) for trusted
// upstreams, REJECT (a header fails the connection; without one the
// connection is served as is) for the others. Unix peers have no address
// to match: whoever may open the socket file is trusted.
func proxyPolicy(cfg Config) (proxyproto.ConnPolicyFunc, error) {
	if cfg.Type == TypeUnix {
		return func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			return proxyproto.USE, nil
		}, nil
	}
	trusted := cfg.ProxyTrusted
	if len(trusted) == 0 {
		trusted = defaultProxyTrusted
	}
	return proxyproto.PolicyFromRanges(trusted, proxyproto.USE, proxyproto.REJECT)
}

// proxyListener accepts PROXY-protocol connections and warns, at most once
// per refusalLogInterval, when an untrusted peer sent a header: the usual
// cause is a load balancer missing from proxy_trusted.
type proxyListener struct {
	proxyproto.Listener
	name string // in the warnings: type and bound address
	log  *slog.Logger

	mu         sync.Mutex
	lastWarn   time.Time
	suppressed int // refusals since lastWarn
}

func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if pc, ok := c.(*proxyproto.Conn); ok {
		return &proxyConn{Conn: pc, l: l}, nil
	}
	return c, nil
}

// refused notes a header refused from peer.
func (l *proxyListener) refused(peer net.Addr) {
	l.mu.Lock()
	now := time.Now()
	if !l.lastWarn.IsZero() && now.Sub(l.lastWarn) < refusalLogInterval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.lastWarn, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.Warn("PROXY header from an untrusted peer refused, connection closed; is the load balancer missing from proxy_trusted?",
		"listener", l.name, "peer", peer, "unlogged_since_last_warning", n)
}

// proxyConn is a PROXY-protocol connection that reports a refused header
// to its listener and can half-close, as the broker's lingering close
// wants (proxyproto.Conn cannot).
type proxyConn struct {
	*proxyproto.Conn
	l       *proxyListener
	refused atomic.Bool
}

func (c *proxyConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && errors.Is(err, proxyproto.ErrSuperfluousProxyHeader) && c.refused.CompareAndSwap(false, true) {
		c.l.refused(c.Raw().RemoteAddr())
	}
	return n, err
}

// CloseWrite shuts down the writing side of the socket underneath.
func (c *proxyConn) CloseWrite() error {
	if cw, ok := c.Raw().(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
