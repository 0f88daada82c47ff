package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/coder/websocket"
)

// benchTarget is where and how bench connections dial.
type benchTarget struct {
	scheme string // tcp, tls, ws or wss
	addr   string // host:port
	wsURL  string // ws and wss: the URL to upgrade
	tls    *tls.Config
	http   *http.Client // ws and wss: shared, so connections reuse its transport settings
}

func (t benchTarget) String() string {
	if t.wsURL != "" {
		return t.wsURL
	}
	return t.scheme + "://" + t.addr
}

// parseTargets parses the URLs of flag (--url, --sub-url).
func parseTargets(flag string, urls []string, tc *tls.Config) ([]benchTarget, error) {
	ts := make([]benchTarget, len(urls))
	for i, u := range urls {
		t, err := parseTarget(flag, u, tc)
		if err != nil {
			return nil, err
		}
		ts[i] = t
	}
	return ts, nil
}

// parseTarget reads one broker URL.
func parseTarget(flag, raw string, tc *tls.Config) (benchTarget, error) {
	var t benchTarget
	u, err := url.Parse(raw)
	if err != nil {
		return t, fmt.Errorf("%s: %w", flag, err)
	}
	defPort := map[string]string{"tcp": "1883", "mqtt": "1883", "tls": "8883", "ssl": "8883", "mqtts": "8883", "ws": "80", "wss": "443"}[u.Scheme]
	if defPort == "" || u.Hostname() == "" {
		return t, fmt.Errorf("%s %q: want tcp://, tls://, ws:// or wss:// with a host", flag, raw)
	}
	port := u.Port()
	if port == "" {
		port = defPort
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	switch u.Scheme {
	case "tcp", "mqtt":
		t.scheme = "tcp"
	case "tls", "ssl", "mqtts":
		t.scheme = "tls"
	default:
		t.scheme = u.Scheme
		if u.Path == "" {
			u.Path = "/mqtt" // the path brokers conventionally serve
		}
		t.wsURL = u.String()
	}
	if t.scheme == "tls" || t.scheme == "wss" {
		if tc == nil {
			tc = &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(0)}
		}
		t.tls = tc.Clone()
		if t.tls.ServerName == "" {
			t.tls.ServerName = u.Hostname()
		}
	}
	if t.wsURL != "" {
		t.http = &http.Client{Transport: &http.Transport{TLSClientConfig: t.tls, ForceAttemptHTTP2: false}}
	}
	return t, nil
}

// dial opens the transport: a byte stream to the broker. connCtx bounds a
// WebSocket connection's life (its reads and writes), dialCtx only the dial.
func (t benchTarget) dial(dialCtx, connCtx context.Context) (net.Conn, error) {
	switch t.scheme {
	case "ws", "wss":
		c, _, err := websocket.Dial(dialCtx, t.wsURL, &websocket.DialOptions{
			HTTPClient:   t.http,
			Subprotocols: []string{"mqtt"}, // [MQTT-6.0.0-3]
		})
		if err != nil {
			return nil, err
		}
		if c.Subprotocol() != "mqtt" {
			c.CloseNow()
			return nil, fmt.Errorf("%s: the server did not accept the mqtt subprotocol", t.wsURL)
		}
		// The broker may coalesce many packets into one message; packet
		// sizes are bounded by MQTT, not by the WebSocket framing.
		c.SetReadLimit(-1)
		return websocket.NetConn(connCtx, c, websocket.MessageBinary), nil
	case "tls":
		d := tls.Dialer{Config: t.tls}
		return d.DialContext(dialCtx, "tcp", t.addr)
	}
	var d net.Dialer
	return d.DialContext(dialCtx, "tcp", t.addr)
}
