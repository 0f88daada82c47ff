package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"

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

// parseTarget reads --url, or -h and -p, and the TLS flags.
func parseTarget(cfg *benchConfig) (benchTarget, error) {
	t := benchTarget{scheme: "tcp", addr: net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port))}
	if cfg.url != "" {
		u, err := url.Parse(cfg.url)
		if err != nil {
			return t, fmt.Errorf("--url: %w", err)
		}
		defPort := map[string]string{"tcp": "1883", "mqtt": "1883", "tls": "8883", "ssl": "8883", "mqtts": "8883", "ws": "80", "wss": "443"}[u.Scheme]
		if defPort == "" || u.Hostname() == "" {
			return t, fmt.Errorf("--url %q: want tcp://, tls://, ws:// or wss:// with a host", cfg.url)
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
	}
	secure := t.scheme == "tls" || t.scheme == "wss"
	if !secure && (cfg.caFile != "" || cfg.insecure || cfg.certFile != "" || cfg.keyFile != "") {
		return t, errors.New("--cafile, --cert and --insecure need a tls:// or wss:// --url")
	}
	if secure {
		tc, err := benchTLSConfig(cfg, t.addr)
		if err != nil {
			return t, err
		}
		t.tls = tc
	}
	if t.wsURL != "" {
		t.http = &http.Client{Transport: &http.Transport{TLSClientConfig: t.tls, ForceAttemptHTTP2: false}}
	}
	return t, nil
}

func benchTLSConfig(cfg *benchConfig, addr string) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(addr)
	tc := &tls.Config{ServerName: host, InsecureSkipVerify: cfg.insecure, ClientSessionCache: tls.NewLRUClientSessionCache(0)}
	if cfg.caFile != "" {
		pem, err := os.ReadFile(cfg.caFile)
		if err != nil {
			return nil, fmt.Errorf("--cafile: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cafile %s: no PEM certificates", cfg.caFile)
		}
	}
	if (cfg.certFile == "") != (cfg.keyFile == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if cfg.certFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.certFile, cfg.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
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
