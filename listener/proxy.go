package listener

import (
	"net"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// proxyHeaderTimeout bounds how long a new connection may take to send its
// PROXY header. The header is read on the connection's first Read or
// RemoteAddr, in the goroutine serving it, never in Accept: a slow or silent
// peer holds up only itself.
const proxyHeaderTimeout = 5 * time.Second

// withProxy wraps l so that PROXY protocol v1 and v2 headers are read from
// the start of each connection when cfg asks for it. The header is
// optional, so that health checks and direct clients still get in. With
// proxy_trusted set, a header from any other upstream fails the
// connection's first Read (the broker then closes it): a client cannot
// forge its address by speaking PROXY itself. A malformed header fails
// that connection alone.
func withProxy(l net.Listener, cfg Config) (net.Listener, error) {
	if !cfg.ProxyProtocol {
		return l, nil
	}
	policy := func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
		return proxyproto.USE, nil
	}
	if len(cfg.ProxyTrusted) > 0 {
		var err error
		policy, err = proxyproto.PolicyFromRanges(cfg.ProxyTrusted, proxyproto.USE, proxyproto.REJECT)
		if err != nil {
			return nil, err
		}
	}
	return &proxyproto.Listener{
		Listener:          l,
		ConnPolicy:        policy,
		ReadHeaderTimeout: proxyHeaderTimeout,
	}, nil
}
