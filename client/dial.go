package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/coder/websocket"
)

// DialURL opens a connection to the server named by rawURL:
//
//	tcp://host:port     (mqtt:// too; port 1883 when omitted)
//	tls://host:port     (ssl://, mqtts:// too; port 8883 when omitted)
//	ws://host:port/path (port 80 when omitted)
//	wss://host:port/path (port 443 when omitted)
//
// tlsConf configures tls and wss; nil means the system roots and the URL's
// host as the server name. ws and wss go through the proxy the environment
// names (HTTP_PROXY, HTTPS_PROXY, NO_PROXY). WebSocket connections offer the subprotocol
// "mqtt" [MQTT-6.0.0-3] and carry MQTT in binary messages.
func DialURL(ctx context.Context, rawURL string, tlsConf *tls.Config) (net.Conn, error) {
	conn, err := dialURL(ctx, rawURL, tlsConf, nil)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return conn, nil
}

func dialURL(ctx context.Context, rawURL string, tlsConf *tls.Config, header http.Header) (net.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("server URL %q has no host", rawURL)
	}
	hostPort := func(port string) string {
		if u.Port() != "" {
			return u.Host
		}
		return net.JoinHostPort(u.Hostname(), port)
	}
	var d net.Dialer
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		return d.DialContext(ctx, "tcp", hostPort("1883"))
	case "tls", "ssl", "mqtts":
		td := tls.Dialer{NetDialer: &d, Config: tlsConfigFor(tlsConf, u.Hostname())}
		return td.DialContext(ctx, "tcp", hostPort("8883"))
	case "ws", "wss":
		return dialWebSocket(ctx, u, tlsConf, header)
	}
	return nil, fmt.Errorf("server URL %q: unknown scheme %q (want tcp, tls, ws or wss)", rawURL, u.Scheme)
}

// tlsConfigFor fills in the server name, without changing the caller's
// config.
func tlsConfigFor(c *tls.Config, host string) *tls.Config {
	if c == nil {
		return &tls.Config{ServerName: host}
	}
	if c.ServerName == "" {
		c = c.Clone()
		c.ServerName = host
	}
	return c
}

func dialWebSocket(ctx context.Context, u *url.URL, tlsConf *tls.Config, header http.Header) (net.Conn, error) {
	opts := &websocket.DialOptions{Subprotocols: []string{"mqtt"}, HTTPHeader: header}
	if strings.EqualFold(u.Scheme, "wss") {
		c := tlsConfigFor(tlsConf, u.Hostname())
		// WebSocket upgrades need HTTP/1.1.
		c = c.Clone()
		c.NextProtos = []string{"http/1.1"}
		// The environment's proxy (HTTPS_PROXY, NO_PROXY), as ws:// gets
		// from http.DefaultClient.
		opts.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: c, Proxy: http.ProxyFromEnvironment}}
	}
	ws, _, err := websocket.Dial(ctx, u.String(), opts)
	if err != nil {
		return nil, fmt.Errorf("websocket: %w", err)
	}
	if ws.Subprotocol() != "mqtt" {
		ws.Close(websocket.StatusProtocolError, "subprotocol mqtt required")
		return nil, fmt.Errorf("websocket: server did not accept subprotocol mqtt")
	}
	// Packets are bounded by the MQTT decoder, not by message size.
	ws.SetReadLimit(-1)
	// The connection outlives ctx, which bounds only the dialling.
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
}
