package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// conf is DefaultConfig for scenario against addr (host:port), changed by
// set.
func conf(scenario, addr string, set func(c *Config)) Config {
	c := DefaultConfig()
	c.Scenario = scenario
	c.URLs = []string{"tcp://" + addr}
	if set != nil {
		set(&c)
	}
	return c
}

// run runs cfg and checks that the result survives its JSON form.
func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("JSON %s: %v", b, err)
	}
	return res
}

// benchWant is what a scenario must report, exactly.
type benchWant struct {
	conns, sent, acked, refused, received, expected, loss, dups uint64
	noExpectation                                               bool
}

func checkBench(t *testing.T, res *Result, w benchWant) {
	t.Helper()
	c := res.Connections
	if uint64(c.OK) != w.conns || c.Failed != 0 || c.Lost != 0 || len(res.Errors) > 0 {
		t.Errorf("connections %+v, errors %v; want %d ok", c, res.Errors, w.conns)
	}
	if res.Sent != w.sent || res.Acked != w.acked || res.Refused != w.refused || res.Received != w.received || res.Duplicates != w.dups {
		t.Errorf("sent %d acked %d refused %d received %d dups %d; want %d %d %d %d %d",
			res.Sent, res.Acked, res.Refused, res.Received, res.Duplicates, w.sent, w.acked, w.refused, w.received, w.dups)
	}
	if w.noExpectation {
		if res.Expected != nil || res.Loss != nil {
			t.Errorf("expected %v loss %v, want null (publishers unknown)", res.Expected, res.Loss)
		}
	} else if res.Expected == nil || res.Loss == nil || *res.Expected != w.expected || *res.Loss != w.loss {
		t.Errorf("expected %v loss %v, want %d and %d", ptrText(res.Expected), ptrText(res.Loss), w.expected, w.loss)
	}
	if res.Foreign != 0 {
		t.Errorf("foreign %d", res.Foreign)
	}
	// Every unique arrival is a latency sample; nothing else is.
	if res.Latency.Count != w.received-w.dups {
		t.Errorf("latency samples %d, want %d", res.Latency.Count, w.received-w.dups)
	}
	if l := res.Latency; l.Count > 0 && !(l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
	// The timeline adds up to the totals, and so does the histogram.
	var sent, acked, recv uint64
	for _, s := range res.Timeline {
		sent, acked, recv = sent+s.Sent, acked+s.Acked, recv+s.Received
	}
	if sent != res.Sent || acked != res.Acked || recv != res.Received {
		t.Errorf("timeline adds up to sent %d acked %d received %d; totals %d %d %d", sent, acked, recv, res.Sent, res.Acked, res.Received)
	}
	var n uint64
	for _, b := range res.LatencyHistogram {
		n += b.Count
	}
	if n != res.Latency.Count {
		t.Errorf("latency histogram holds %d samples, want %d", n, res.Latency.Count)
	}
}

func ptrText(p *uint64) any {
	if p == nil {
		return "null"
	}
	return *p
}

// The counts are exact against Tern and against a broker we did not
// write, Debian's mosquitto.
func TestBenchScenarios(t *testing.T) {
	brokers := []struct{ name, addr string }{
		{"tern", mt.StartBroker(t, broker.Options{}).Addr},
		{"mosquitto", mt.StartMosquitto(t, false).Addr},
	}
	cases := []struct {
		name     string
		scenario string
		set      func(c *Config)
		want     benchWant
	}{
		{"fanout QoS 1: 1 x 200 x 5", "fanout", func(c *Config) { c.Clients, c.Count, c.QoS = 5, 200, 1 },
			benchWant{conns: 6, sent: 200, acked: 200, received: 1000, expected: 1000}},
		{"fanout QoS 0 v5", "fanout", func(c *Config) { c.Clients, c.Count, c.Version, c.Size = 3, 50, packet.V5, 20 },
			benchWant{conns: 4, sent: 50, received: 150, expected: 150}},
		{"fanin QoS 1: 4 x 100 -> 1", "fanin", func(c *Config) { c.Clients, c.Count, c.QoS, c.Window = 4, 100, 1, 7 },
			benchWant{conns: 5, sent: 400, acked: 400, received: 400, expected: 400}},
		{"p2p QoS 2 v5: 3 pairs x 100", "p2p", func(c *Config) { c.Clients, c.Count, c.QoS, c.Version, c.Window = 3, 100, 2, packet.V5, 10 },
			benchWant{conns: 6, sent: 300, acked: 300, received: 300, expected: 300}},
		// Window 20: mosquitto's default max_inflight_messages. A 3.1.1
		// publisher beyond it has its QoS 2 messages dropped, yet
		// acknowledged (3.1.1 cannot say "quota exceeded"), and the run
		// reports them as loss.
		{"p2p QoS 2 3.1.1", "p2p", func(c *Config) { c.Clients, c.Count, c.QoS, c.Topic, c.Window = 2, 100, 2, "p2p/%i/x", 20 },
			benchWant{conns: 4, sent: 200, acked: 200, received: 200, expected: 200}},
		{"pub QoS 1: 3 x 100", "pub", func(c *Config) { c.Clients, c.Count, c.QoS, c.Window = 3, 100, 1, 1 },
			benchWant{conns: 3, sent: 300, acked: 300, noExpectation: true}},
		{"paced pub QoS 1", "pub", func(c *Config) { c.Clients, c.Count, c.QoS, c.Rate = 2, 20, 1, 2000 },
			benchWant{conns: 2, sent: 40, acked: 40, noExpectation: true}},
		{"fanout shared group: each message once to the group", "fanout", func(c *Config) { c.Clients, c.Count, c.QoS, c.Shared = 3, 90, 1, "g" },
			benchWant{conns: 4, sent: 90, acked: 90, received: 90, expected: 90}},
		{"conn", "conn", func(c *Config) { c.Clients, c.Duration, c.ConnectRate = 50, time.Millisecond, 5000 },
			benchWant{conns: 50, noExpectation: true}},
	}
	for _, b := range brokers {
		for _, tc := range cases {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				res := run(t, conf(tc.scenario, b.addr, tc.set))
				checkBench(t, res, tc.want)
				if tc.want.received > 0 && (res.Receivers == 0 || res.ReceiversWithLoss != 0) {
					t.Errorf("receivers %d, with loss %d", res.Receivers, res.ReceiversWithLoss)
				}
			})
		}
	}
}

// dropEvery is a broker hook that drops the bench messages whose sequence
// number is a multiple of n: the broker acknowledges them (3.1.1 has no way
// to refuse) and delivers nothing.
type dropEvery struct{ n uint32 }

func (d dropEvery) OnPublish(_ *auth.Client, m *broker.Message) error {
	if st, ok := ParseStamp(m.Payload); ok && st.Seq%d.n == 0 {
		return errors.New("dropped for the test")
	}
	return nil
}

var _ broker.OnPublish = dropEvery{}

// Messages the broker loses are reported as loss, per receiver, even when
// the broker acknowledged them.
func TestBenchReportsLoss(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{Hooks: []any{dropEvery{n: 25}}})
	cases := []struct {
		name     string
		scenario string
		set      func(c *Config)
		want     benchWant
	}{
		// Sequences 0, 25, 50, 75 are dropped: 4 of 100, at each of 3 subscribers.
		{"3.1.1: acked, then lost", "fanout", func(c *Config) { c.Clients, c.Count, c.QoS = 3, 100, 1 },
			benchWant{conns: 4, sent: 100, acked: 100, received: 288, expected: 300, loss: 12}},
		// v5 tells the publisher (Unspecified error); the subscribers still miss them.
		{"v5: refused", "fanout", func(c *Config) { c.Clients, c.Count, c.QoS, c.Version = 3, 100, 1, packet.V5 },
			benchWant{conns: 4, sent: 100, acked: 96, refused: 4, received: 288, expected: 300, loss: 12}},
		{"p2p QoS 0: each pair loses its own", "p2p", func(c *Config) { c.Clients, c.Count = 2, 50 },
			benchWant{conns: 4, sent: 100, received: 96, expected: 100, loss: 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := conf(tc.scenario, b.Addr, tc.set)
			cfg.Drain = 500 * time.Millisecond
			res := run(t, cfg)
			checkBench(t, res, tc.want)
			if res.ReceiversWithLoss != res.Receivers {
				t.Errorf("%d of %d receivers with loss, want all", res.ReceiversWithLoss, res.Receivers)
			}
		})
	}
}

// The sub scenario counts what other publishers send, with latency when
// the payload carries a stamp.
func TestBenchSubCountsForeignPublishers(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	done := make(chan *Result, 1)
	go func() {
		res, err := Run(context.Background(), conf("sub", b.Addr, func(c *Config) { c.Clients, c.QoS, c.Topic, c.Count = 2, 1, "ext/#", 4 }))
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	mt.Eventually(t, "two subscriptions", func() bool { return b.Stats().Subscriptions == 2 })
	pub := mt.Dial(t, b.Addr, packet.V311)
	pub.Connect("ext-pub", true)
	for i := range 3 {
		stamp := make([]byte, HeaderLen+5)
		putStamp(stamp, time.Now(), uint32(i), 0, 0)
		pub.Send(&packet.Publish{Topic: "ext/a", QoS: 1, PacketID: uint16(i + 1), Payload: stamp})
		mt.Expect[*packet.Puback](pub)
	}
	pub.Send(&packet.Publish{Topic: "ext/b", Payload: []byte("not a bench message, but a message")})
	var res *Result
	select {
	case res = <-done:
	case <-time.After(mt.Timeout):
		t.Fatal("the sub scenario did not end after Count messages")
	}
	if res == nil {
		t.FailNow()
	}
	if res.Received != 8 || res.Latency.Count != 6 || res.Expected != nil || res.Connections.OK != 2 {
		t.Fatalf("received %d, latency samples %d, expected %v, conns %+v; want 8, 6, null, 2",
			res.Received, res.Latency.Count, ptrText(res.Expected), res.Connections)
	}
}

func TestBenchWebSocket(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mqtt" {
			http.NotFound(w, r)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"mqtt"}})
		if err != nil {
			return
		}
		c.SetReadLimit(-1)
		b.ServeConn(websocket.NetConn(context.Background(), c, websocket.MessageBinary))
	}))
	t.Cleanup(srv.Close)
	url := "ws://" + strings.TrimPrefix(srv.URL, "http://")
	cfg := conf("p2p", "", func(c *Config) { c.Clients, c.Count, c.QoS = 2, 100, 1 })
	cfg.URLs = []string{url}
	res := run(t, cfg)
	checkBench(t, res, benchWant{conns: 4, sent: 200, acked: 200, received: 200, expected: 200})
	if res.URL != url+"/mqtt" {
		t.Errorf("url %q", res.URL)
	}
}

// TLSListener serves b over TLS with a self-signed certificate for
// 127.0.0.1, and returns its tls:// URL and the certificate.
func tlsListener(t *testing.T, b *mt.Broker) (string, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tern bench test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go b.ServeConn(nc)
		}
	}()
	return "tls://" + ln.Addr().String(), cert
}

func TestBenchTLS(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	url, cert := tlsListener(t, b)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	for _, tc := range []struct {
		name string
		tls  *tls.Config
	}{
		{"roots", &tls.Config{RootCAs: roots}},
		{"insecure", &tls.Config{InsecureSkipVerify: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := conf("fanout", "", func(c *Config) { c.Clients, c.Count, c.QoS, c.TLSConfig = 2, 50, 1, tc.tls })
			cfg.URLs = []string{url}
			checkBench(t, run(t, cfg), benchWant{conns: 3, sent: 50, acked: 50, received: 100, expected: 100})
		})
	}
	// Without trust, every handshake fails and says why.
	cfg := conf("conn", "", func(c *Config) { c.Clients, c.Duration = 2, time.Millisecond })
	cfg.URLs = []string{url}
	res := run(t, cfg)
	if res.Connections.Failed != 2 || len(res.Errors) == 0 || !strings.Contains(res.Errors[0].Error, "certificate") {
		t.Errorf("untrusted certificate: connections %+v, errors %v", res.Connections, res.Errors)
	}
}

func TestConfigCheck(t *testing.T) {
	cases := []struct {
		name string
		set  func(c *Config)
		want string // "" : valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"no scenario", func(c *Config) { c.Scenario = "" }, "unknown scenario"},
		{"unknown scenario", func(c *Config) { c.Scenario = "flood" }, "unknown scenario"},
		{"qos 3", func(c *Config) { c.QoS = 3 }, "-q 3"},
		{"small payload", func(c *Config) { c.Size = 8 }, "at least 20 bytes"},
		{"zero clients", func(c *Config) { c.Clients = 0 }, "-c 0"},
		{"duration and count", func(c *Config) { c.Duration, c.Count = time.Second, 5 }, "not both"},
		{"window 0", func(c *Config) { c.Window = 0 }, "-w 0"},
		{"p2p needs %i", func(c *Config) { c.Scenario, c.Topic = "p2p", "same/topic" }, "needs %i"},
		{"fanin filter", func(c *Config) { c.Scenario, c.Topic = "fanin", "a/x%i" }, "filter"},
		{"http URL", func(c *Config) { c.URLs = []string{"http://x"} }, "--url \"http://x\": want tcp://"},
		{"second URL bad", func(c *Config) { c.URLs = append(c.URLs, "tcp://") }, "want tcp://"},
		{"sub URL bad", func(c *Config) { c.SubURLs = []string{"udp://x:1"} }, "--sub-url"},
		{"shared with /", func(c *Config) { c.Scenario, c.Shared = "sub", "a/b" }, "--shared"},
		{"password alone", func(c *Config) { c.PasswordSet = true }, "-P needs -u"},
		{"password alone v5", func(c *Config) { c.PasswordSet, c.Version = true, packet.V5 }, ""},
		{"keep alive", func(c *Config) { c.KeepAlive = 70000 * time.Second }, "-k 70000"},
		{"version", func(c *Config) { c.Version = 7 }, "-V"},
		{"several URLs", func(c *Config) { c.URLs = []string{"tcp://a:1", "ws://b:2/x", "tls://c"} }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := conf("pub", "127.0.0.1:1883", tc.set).Check()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Check: %v; want %q", err, tc.want)
			}
		})
	}
}

func TestBenchPlanTopics(t *testing.T) {
	cases := []struct {
		scenario, topic, shared string
		pubs, filters           []string
	}{
		{"fanin", "bench/%i", "", []string{"bench/0", "bench/1"}, []string{"bench/+"}},
		{"fanout", "bench/%i", "", []string{"bench/0"}, []string{"bench/0", "bench/0"}},
		{"fanout", "t", "g", []string{"t"}, []string{"$share/g/t", "$share/g/t"}},
		{"p2p", "a/%i/b", "", []string{"a/0/b", "a/1/b"}, []string{"a/0/b", "a/1/b"}},
		{"sub", "s/%i/#", "", nil, []string{"s/0/#", "s/1/#"}},
	}
	for _, tc := range cases {
		t.Run(tc.scenario+" "+tc.topic, func(t *testing.T) {
			p := planBench(&config{scenario: tc.scenario, topic: tc.topic, shared: tc.shared, clients: 2, idPrefix: "x"})
			var pubs, filters []string
			for _, x := range p.pubs {
				pubs = append(pubs, x.topic)
			}
			for _, x := range p.subs {
				filters = append(filters, x.filter)
			}
			if strings.Join(pubs, " ") != strings.Join(tc.pubs, " ") || strings.Join(filters, " ") != strings.Join(tc.filters, " ") {
				t.Errorf("publish %v subscribe %v; want %v %v", pubs, filters, tc.pubs, tc.filters)
			}
		})
	}
}

// conn with a topic subscribes every connection; with Persistent the
// sessions stay, and what is published meanwhile waits for them: compare.sh
// measures idle memory and fan-out to offline sessions this way.
func TestBenchConnSubscribesPersistent(t *testing.T) {
	brokers := []struct{ name, addr string }{
		{"tern", mt.StartBroker(t, broker.Options{}).Addr},
		{"mosquitto", mt.StartMosquitto(t, false).Addr},
	}
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) { testConnPersistent(t, b.addr) })
	}
	// Without a topic a conn connection subscribes to nothing.
	cfg, err := conf("conn", "127.0.0.1:1", nil).settle()
	if err != nil {
		t.Fatal(err)
	}
	if p := planBench(cfg); len(p.idle) != 10 || p.idle[0].filter != "" {
		t.Errorf("idle plan %+v", p.idle)
	}
}

func testConnPersistent(t *testing.T, addr string) {
	mt.Versions(t, func(t *testing.T, v byte) {
		prefix := fmt.Sprintf("keep-%d", v)
		res := run(t, conf("conn", addr, func(c *Config) {
			c.Clients, c.Topic, c.QoS, c.Persistent, c.IDPrefix, c.Version, c.Duration = 3, "keep/%i/"+prefix, 1, true, prefix, v, time.Millisecond
		}))
		checkBench(t, res, benchWant{conns: 3, noExpectation: true})
		if res.Topic != "keep/%i/"+prefix || !res.Persistent || !strings.Contains(res.text(), "each subscribed to keep/%i/") {
			t.Errorf("topic %q persistent %v; summary %s", res.Topic, res.Persistent, res.text())
		}
		res = run(t, conf("pub", addr, func(c *Config) {
			c.Clients, c.Topic, c.QoS, c.Count, c.Version = 3, "keep/%i/"+prefix, 1, 5, v
		}))
		checkBench(t, res, benchWant{conns: 3, sent: 15, acked: 15, noExpectation: true})
		// Connection 1's session kept its subscription and queued
		// publisher 1's messages.
		r := mt.Dial(t, addr, v)
		if ack := r.Connect(prefix+"-conn-1", false); !ack.SessionPresent {
			t.Fatal("no session present")
		}
		for i := range 5 {
			p := mt.Expect[*packet.Publish](r)
			if p.Topic != "keep/1/"+prefix || p.QoS != 1 {
				t.Fatalf("message %d: %q QoS %d", i, p.Topic, p.QoS)
			}
			r.Send(&packet.Puback{PacketID: p.PacketID})
		}
		r.ExpectNothing(100 * time.Millisecond)
	}, packet.V311, packet.V5)
}

// With a duration the counts are not known in advance, but everything
// sent before the deadline must arrive: the last buffered messages are
// flushed when publishing ends, not with the DISCONNECT.
func TestBenchDurationDeliversAll(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	for _, qos := range []int{0, 1} {
		t.Run(fmt.Sprint("QoS ", qos), func(t *testing.T) {
			res := run(t, conf("fanout", b.Addr, func(c *Config) {
				c.Clients, c.QoS, c.Duration, c.Rate = 2, qos, 100*time.Millisecond, 2000
			}))
			if res.Sent == 0 {
				t.Fatal("nothing sent")
			}
			acked := uint64(0)
			if qos == 1 {
				acked = res.Sent
			}
			checkBench(t, res, benchWant{conns: 3, sent: res.Sent, acked: acked, received: 2 * res.Sent, expected: 2 * res.Sent})
		})
	}
}

// The timeline has a sample about once a second from the start of
// publishing to the end of the drain.
func TestBenchTimeline(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	res := run(t, conf("p2p", b.Addr, func(c *Config) { c.Clients, c.QoS, c.Duration, c.Rate = 2, 1, 2500*time.Millisecond, 200 }))
	checkBench(t, res, benchWant{conns: 4, sent: res.Sent, acked: res.Sent, received: res.Sent, expected: res.Sent})
	tl := res.Timeline
	if len(tl) < 3 || len(tl) > 5 {
		t.Fatalf("%d samples for a 2.5 s run: %+v", len(tl), tl)
	}
	for i, s := range tl[:2] {
		if d := s.T - float64(i+1); d < -0.05 || d > 0.5 {
			t.Errorf("sample %d at %.3f s, want about %d s", i, s.T, i+1)
		}
		// 2 publishers at 200/s: 400 a second each way (a publisher that
		// fell behind catches up, so allow for a slow machine).
		if s.Sent < 200 || s.Sent > 600 || s.Received < 200 || s.Received > 600 {
			t.Errorf("sample %d: sent %d received %d, want about 400", i, s.Sent, s.Received)
		}
	}
	if last := tl[len(tl)-1].T; last < res.DurationS || last > res.DurationS+res.DrainS+0.1 {
		t.Errorf("last sample at %.3f s; publishing %.3f s, drain %.3f s", last, res.DurationS, res.DrainS)
	}
}

func putStamp(b []byte, sent time.Time, seq, pub, run uint32) {
	binary.BigEndian.PutUint64(b[benchStampTime:], uint64(sent.UnixNano()))
	binary.BigEndian.PutUint32(b[benchStampSeq:], seq)
	binary.BigEndian.PutUint32(b[benchStampPub:], pub)
	binary.BigEndian.PutUint32(b[benchStampRun:], run)
}
