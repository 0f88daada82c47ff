package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

func TestRouterMatch(t *testing.T) {
	var r Router
	var got []string
	h := func(name string) Handler { return func(p *packet.Publish) { got = append(got, name+":"+p.Topic) } }
	r.Handle("a/+", h("plus"))
	r.Handle("$share/g/b/#", h("shared"))
	r.Handle("#", h("all"))
	r.Handle("a/x", h("exact"))
	r.Handle("a/x", h("exact2")) // replaces
	for _, tc := range []struct {
		topic string
		want  []string
	}{
		{"a/x", []string{"plus:a/x", "all:a/x", "exact2:a/x"}},
		{"b", []string{"shared:b", "all:b"}},
		{"b/c/d", []string{"shared:b/c/d", "all:b/c/d"}},
		{"$SYS/x", nil}, // [MQTT-4.7.2-1]
	} {
		got = nil
		ok := r.Route(&packet.Publish{Topic: tc.topic})
		if strings.Join(got, ",") != strings.Join(tc.want, ",") || ok != (len(tc.want) > 0) {
			t.Errorf("%s: got %v (%v), want %v", tc.topic, got, ok, tc.want)
		}
	}
	r.Remove("#")
	got = nil
	r.Route(&packet.Publish{Topic: "c"})
	if got != nil {
		t.Errorf("after Remove: %v", got)
	}
}

// Handlers per filter, with OnMessage for the rest, in one order.
func TestSubscribeFuncRoutes(t *testing.T) {
	b := mqtttest.StartBroker(t, broker.Options{})
	for _, tv := range versions {
		t.Run(tv.name, func(t *testing.T) {
			log := make(chan string, 20)
			c := connectTest(t, Options{Address: b.Addr, Version: tv.v, ClientID: "routes", CleanStart: true,
				OnMessage: func(p *packet.Publish) { log <- "other:" + p.Topic }})
			ctx := context.Background()
			if _, err := c.SubscribeFunc(ctx, func(p *packet.Publish) { log <- "a:" + p.Topic }, packet.Subscription{Filter: "r/a/+", QoS: 1}); err != nil {
				t.Fatal(err)
			}
			if tv.v != packet.V31 {
				if _, err := c.SubscribeFunc(ctx, func(p *packet.Publish) { log <- "b:" + p.Topic }, packet.Subscription{Filter: "$share/g/r/b/#", QoS: 1}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Subscribe(ctx, packet.Subscription{Filter: "r/c", QoS: 1}); err != nil {
				t.Fatal(err)
			}
			pub := connectTest(t, Options{Address: b.Addr, Version: tv.v, ClientID: "routes-pub", CleanStart: true})
			topics := []string{"r/a/1", "r/c", "r/a/2", "r/c"}
			want := []string{"a:r/a/1", "other:r/c", "a:r/a/2", "other:r/c"}
			if tv.v != packet.V31 {
				topics = append(topics, "r/b/x/y")
				want = append(want, "b:r/b/x/y")
			}
			for _, tp := range topics {
				if err := pub.Publish(ctx, &packet.Publish{Topic: tp, QoS: 1}); err != nil {
					t.Fatal(err)
				}
			}
			expectPayloads(t, log, want...)
			// Unsubscribe removes the handler: the next one goes to OnMessage.
			if _, err := c.Unsubscribe(ctx, "r/a/+"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Subscribe(ctx, packet.Subscription{Filter: "r/a/#", QoS: 1}); err != nil {
				t.Fatal(err)
			}
			pub.Publish(ctx, &packet.Publish{Topic: "r/a/3", QoS: 1})
			expectPayloads(t, log, "other:r/a/3")
		})
	}
}

func TestRequestResponse(t *testing.T) {
	b := mqtttest.StartBroker(t, broker.Options{ResponseInformation: "replies/%c"})
	ctx := context.Background()
	responder := connectTest(t, Options{Address: b.Addr, Version: packet.V5, ClientID: "svc", CleanStart: true})
	if _, err := responder.SubscribeFunc(ctx, func(req *packet.Publish) {
		resp, err := NewResponse(req, bytes.ToUpper(req.Payload))
		if err != nil {
			t.Error(err)
			return
		}
		resp.Properties.User = req.Properties.User
		responder.Publish(ctx, resp)
	}, packet.Subscription{Filter: "svc/upper", QoS: 1}); err != nil {
		t.Fatal(err)
	}

	s := newTestSession(t, SessionOptions{Options: Options{Address: b.Addr, Version: packet.V5, ClientID: "asker",
		Properties: packet.Properties{RequestResponseInfo: ptr[byte](1)}}})
	for _, word := range []string{"hello", "again"} {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := s.Request(rctx, "svc/upper", []byte(word))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if string(resp.Payload) != strings.ToUpper(word) || !strings.HasPrefix(resp.Topic, "replies/asker/") {
			t.Fatalf("response %q on %q", resp.Payload, resp.Topic)
		}
	}
	// User properties travel both ways.
	resp, err := s.RequestPublish(ctx, &packet.Publish{Topic: "svc/upper", QoS: 1, Payload: []byte("p"),
		Properties: packet.Properties{User: []packet.UserProperty{{Key: "trace", Value: "42"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if u := resp.Properties.User; len(u) != 1 || u[0] != (packet.UserProperty{Key: "trace", Value: "42"}) {
		t.Fatalf("user properties %+v", u)
	}
	if _, err := NewResponse(&packet.Publish{Topic: "x"}, nil); err != ErrNoResponseTopic {
		t.Fatalf("NewResponse without response topic: %v", err)
	}
}

// Outgoing topic aliases: the second publish to a topic sets one up, the
// third uses it alone, and a new connection starts with full topics again.
// Checks [MQTT-3.2.2-17] [MQTT-3.2.2-18] [MQTT-3.3.2-9].
func TestTopicAliasesOut(t *testing.T) {
	b := startRestartBroker(t)
	got := collect(t, b.addr, packet.V5, "alias/#")
	var mu sync.Mutex
	var sent []string
	trace := func(out bool, p packet.Packet) {
		if pp, ok := p.(*packet.Publish); ok && out {
			a := 0
			if pp.Properties.TopicAlias != nil {
				a = int(*pp.Properties.TopicAlias)
			}
			mu.Lock()
			sent = append(sent, pp.Topic+"#"+string(rune('0'+a)))
			mu.Unlock()
		}
	}
	s := newTestSession(t, SessionOptions{Options: Options{Address: b.addr, Version: packet.V5, ClientID: "aliaser", Trace: trace}})
	ctx := context.Background()
	for i := range 3 {
		if err := s.Publish(ctx, &packet.Publish{Topic: "alias/topic", QoS: 1, Payload: []byte{'0' + byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	expectPayloads(t, got, "0", "1", "2")
	c := s.Client()
	c.Close() // a lost connection: the Session reconnects
	<-c.Done()
	if err := s.Publish(ctx, &packet.Publish{Topic: "alias/topic", QoS: 1, Payload: []byte("3")}); err != nil {
		t.Fatal(err)
	}
	expectPayloads(t, got, "3")
	mu.Lock()
	defer mu.Unlock()
	want := "alias/topic#0,alias/topic#1,#1,alias/topic#0"
	if strings.Join(sent, ",") != want {
		t.Fatalf("sent %v, want %s", sent, want)
	}
}

// selfSigned returns a server certificate for 127.0.0.1 and a client
// config trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tern test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, &tls.Config{RootCAs: pool}
}

// Every URL scheme reaches the broker and carries a QoS 1 round trip;
// ws and wss carry Options.WebSocketHeader.
// Checks [MQTT-6.0.0-3] [MQTT-7.1.2-1].
func TestDialURLSchemes(t *testing.T) {
	b := mqtttest.StartBroker(t, broker.Options{})
	cert, clientTLS := selfSigned(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}}

	tlsLn, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve(tlsLn)

	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A gateway that wants a token in the upgrade request's header.
		if r.Header.Get("X-Token") != "t1" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"mqtt"}})
		if err != nil {
			return
		}
		b.ServeConn(websocket.NetConn(context.Background(), c, websocket.MessageBinary))
	})
	wsSrv := httptest.NewServer(ws)
	defer wsSrv.Close()
	wssSrv := httptest.NewUnstartedServer(ws)
	wssSrv.TLS = serverTLS
	wssSrv.StartTLS()
	defer wssSrv.Close()

	for _, url := range []string{
		"tcp://" + b.Addr,
		"mqtt://" + b.Addr,
		"tls://" + tlsLn.Addr().String(),
		"mqtts://" + tlsLn.Addr().String(),
		"ws://" + strings.TrimPrefix(wsSrv.URL, "http://") + "/mqtt",
		"wss://" + strings.TrimPrefix(wssSrv.URL, "https://") + "/mqtt",
	} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			got := make(chan string, 1)
			c := connectTest(t, Options{URL: url, TLSConfig: clientTLS, Version: packet.V5, CleanStart: true,
				WebSocketHeader: http.Header{"X-Token": {"t1"}},
				OnMessage:       func(p *packet.Publish) { got <- string(p.Payload) }})
			ctx := context.Background()
			if _, err := c.Subscribe(ctx, packet.Subscription{Filter: "dial/" + url, QoS: 1}); err != nil {
				t.Fatal(err)
			}
			if err := c.Publish(ctx, &packet.Publish{Topic: "dial/" + url, QoS: 1, Payload: []byte("hi")}); err != nil {
				t.Fatal(err)
			}
			expectPayloads(t, got, "hi")
			if err := c.Disconnect(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := DialURL(context.Background(), "gopher://x", nil); err == nil || !strings.Contains(err.Error(), "unknown scheme") {
		t.Fatalf("unknown scheme: %v", err)
	}
}
