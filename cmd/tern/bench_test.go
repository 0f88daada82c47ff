package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// runBenchJSON runs tern bench with --json against addr and decodes the
// summary.
func runBenchJSON(t *testing.T, addr string, args ...string) benchResult {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	full := append([]string{"bench"}, args[0], "-h", host, "-p", port, "--json")
	full = append(full, args[1:]...)
	return runBenchArgs(t, full)
}

func runBenchArgs(t *testing.T, args []string) benchResult {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, nil, &out, &errb); code != 0 {
		t.Fatalf("tern %s: exit %d, stderr %q", strings.Join(args, " "), code, errb.String())
	}
	if errb.Len() > 0 {
		t.Errorf("stderr not quiet when it is not a terminal: %q", errb.String())
	}
	var res benchResult
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("--json output %q: %v", out.String(), err)
	}
	if dec.More() {
		t.Fatalf("--json printed more than one object: %q", out.String())
	}
	return res
}

// want is what a scenario must report, exactly.
type benchWant struct {
	conns, sent, acked, refused, received, expected, loss, dups uint64
	noExpectation                                               bool
}

func checkBench(t *testing.T, res benchResult, w benchWant) {
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
		name string
		args []string
		want benchWant
	}{
		{"fanout QoS 1: 1 x 200 x 5", []string{"fanout", "-c", "5", "-n", "200", "-q", "1"},
			benchWant{conns: 6, sent: 200, acked: 200, received: 1000, expected: 1000}},
		{"fanout QoS 0 v5", []string{"fanout", "-c", "3", "-n", "50", "-V", "5", "-s", "20"},
			benchWant{conns: 4, sent: 50, received: 150, expected: 150}},
		{"fanin QoS 1: 4 x 100 -> 1", []string{"fanin", "-c", "4", "-n", "100", "-q", "1", "-w", "7"},
			benchWant{conns: 5, sent: 400, acked: 400, received: 400, expected: 400}},
		{"p2p QoS 2 v5: 3 pairs x 100", []string{"p2p", "-c", "3", "-n", "100", "-q", "2", "-V", "5", "-w", "10"},
			benchWant{conns: 6, sent: 300, acked: 300, received: 300, expected: 300}},
		// -w 20: mosquitto's default max_inflight_messages. A 3.1.1
		// publisher beyond it has its QoS 2 messages dropped, yet
		// acknowledged (3.1.1 cannot say "quota exceeded"), and tern bench
		// reports them as loss.
		{"p2p QoS 2 3.1.1", []string{"p2p", "-c", "2", "-n", "100", "-q", "2", "-t", "p2p/%i/x", "-w", "20"},
			benchWant{conns: 4, sent: 200, acked: 200, received: 200, expected: 200}},
		{"pub QoS 1: 3 x 100", []string{"pub", "-c", "3", "-n", "100", "-q", "1", "-w", "1"},
			benchWant{conns: 3, sent: 300, acked: 300, noExpectation: true}},
		{"paced pub QoS 1", []string{"pub", "-c", "2", "-n", "20", "-q", "1", "-r", "2000"},
			benchWant{conns: 2, sent: 40, acked: 40, noExpectation: true}},
		{"fanout shared group: each message once to the group", []string{"fanout", "-c", "3", "-n", "90", "-q", "1", "--shared", "g"},
			benchWant{conns: 4, sent: 90, acked: 90, received: 90, expected: 90}},
		{"conn", []string{"conn", "-c", "50", "-d", "1ms", "--connect-rate", "5000"},
			benchWant{conns: 50, noExpectation: true}},
	}
	for _, b := range brokers {
		for _, tc := range cases {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				res := runBenchJSON(t, b.addr, tc.args...)
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
	if len(m.Payload) >= benchHeaderLen && binary.BigEndian.Uint32(m.Payload[benchStampSeq:])%d.n == 0 {
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
		name string
		args []string
		want benchWant
	}{
		// Sequences 0, 25, 50, 75 are dropped: 4 of 100, at each of 3 subscribers.
		{"3.1.1: acked, then lost", []string{"fanout", "-c", "3", "-n", "100", "-q", "1"},
			benchWant{conns: 4, sent: 100, acked: 100, received: 288, expected: 300, loss: 12}},
		// v5 tells the publisher (Unspecified error); the subscribers still miss them.
		{"v5: refused", []string{"fanout", "-c", "3", "-n", "100", "-q", "1", "-V", "5"},
			benchWant{conns: 4, sent: 100, acked: 96, refused: 4, received: 288, expected: 300, loss: 12}},
		{"p2p QoS 0: each pair loses its own", []string{"p2p", "-c", "2", "-n", "50"},
			benchWant{conns: 4, sent: 100, received: 96, expected: 100, loss: 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := runBenchJSON(t, b.Addr, append(tc.args, "--drain", "500ms")...)
			checkBench(t, res, tc.want)
			if res.ReceiversWithLoss != res.Receivers {
				t.Errorf("%d of %d receivers with loss, want all", res.ReceiversWithLoss, res.Receivers)
			}
		})
	}
}

// tern bench sub counts what other publishers send, with latency when the
// payload carries a stamp.
func TestBenchSubCountsForeignPublishers(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	host, port, _ := net.SplitHostPort(b.Addr)
	type outcome struct {
		res benchResult
		out string
		err string
	}
	done := make(chan outcome, 1)
	go func() {
		var out, errb bytes.Buffer
		run(context.Background(), []string{"bench", "sub", "-h", host, "-p", port, "-c", "2", "-q", "1", "-t", "ext/#", "-n", "4", "--json"}, nil, &out, &errb)
		var o outcome
		o.out, o.err = out.String(), errb.String()
		_ = json.Unmarshal(out.Bytes(), &o.res)
		done <- o
	}()
	mt.Eventually(t, "two subscriptions", func() bool { return b.Stats().Subscriptions == 2 })
	pub := mt.Dial(t, b.Addr, packet.V311)
	pub.Connect("ext-pub", true)
	for i := range 3 {
		stamp := make([]byte, benchHeaderLen+5)
		binary.BigEndian.PutUint64(stamp, uint64(time.Now().UnixNano()))
		binary.BigEndian.PutUint32(stamp[benchStampSeq:], uint32(i))
		pub.Send(&packet.Publish{Topic: "ext/a", QoS: 1, PacketID: uint16(i + 1), Payload: stamp})
		mt.Expect[*packet.Puback](pub)
	}
	pub.Send(&packet.Publish{Topic: "ext/b", Payload: []byte("not a bench message, but a message")})
	var o outcome
	select {
	case o = <-done:
	case <-time.After(mt.Timeout):
		t.Fatal("tern bench sub did not end after -n messages")
	}
	if o.res.Received != 8 || o.res.Latency.Count != 6 || o.res.Expected != nil || o.res.Connections.OK != 2 {
		t.Fatalf("received %d, latency samples %d, expected %v, conns %+v; want 8, 6, null, 2\n%s%s",
			o.res.Received, o.res.Latency.Count, ptrText(o.res.Expected), o.res.Connections, o.out, o.err)
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
	res := runBenchArgs(t, []string{"bench", "p2p", "--url", url, "-c", "2", "-n", "100", "-q", "1", "--json"})
	checkBench(t, res, benchWant{conns: 4, sent: 200, acked: 200, received: 200, expected: 200})
	if res.URL != url+"/mqtt" {
		t.Errorf("url %q", res.URL)
	}
}

func TestBenchTLS(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	cert, caFile := selfSigned(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
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
	url := "tls://" + ln.Addr().String()
	for _, trust := range [][]string{{"--cafile", caFile}, {"--insecure"}} {
		t.Run(trust[0], func(t *testing.T) {
			args := append([]string{"bench", "fanout", "--url", url, "-c", "2", "-n", "50", "-q", "1", "--json"}, trust...)
			checkBench(t, runBenchArgs(t, args), benchWant{conns: 3, sent: 50, acked: 50, received: 100, expected: 100})
		})
	}
	// Without trust, every handshake fails and says why.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"bench", "conn", "--url", url, "-c", "2", "-d", "1ms"}, nil, &out, &errb); code != exitFail ||
		!strings.Contains(out.String(), "2 failed") || !strings.Contains(out.String(), "certificate") {
		t.Errorf("untrusted certificate: exit %d, output %q", code, out.String())
	}
}

// selfSigned makes a certificate for 127.0.0.1 and writes it, as its own
// CA, to a PEM file.
func selfSigned(t *testing.T) (tls.Certificate, string) {
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
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}

func TestBenchTextSummary(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	host, port, _ := net.SplitHostPort(b.Addr)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"bench", "fanin", "-h", host, "-p", port, "-c", "2", "-n", "10", "-q", "1"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"2 publishers -> 1 subscriber", "3 ok, 0 failed, 0 lost", "sent         20", "acked        20",
		"received     20", "expected     20; loss 0 (0.000%) at 0 of 1 receivers; duplicates 0", "latency      p50 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBenchFlags(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, exitUsage, "name a scenario"},
		{[]string{"flood"}, exitUsage, "unknown scenario"},
		{[]string{"pub", "-q", "3"}, exitUsage, "-q 3"},
		{[]string{"pub", "-s", "8"}, exitUsage, "at least 20 bytes"},
		{[]string{"pub", "-d", "1s", "-n", "5"}, exitUsage, "not both"},
		{[]string{"pub", "-w", "0"}, exitUsage, "-w 0"},
		{[]string{"p2p", "-t", "same/topic"}, exitUsage, "needs %i"},
		{[]string{"fanin", "-t", "a/x%i"}, exitUsage, "filter"},
		{[]string{"pub", "--url", "http://x"}, exitUsage, "want tcp://"},
		{[]string{"pub", "--insecure"}, exitUsage, "need a tls://"},
		{[]string{"sub", "--shared", "a/b"}, exitUsage, "--shared"},
		{[]string{"--help"}, exitOK, "tern bench conn|pub|sub"},
		{[]string{"pub", "--help"}, exitOK, "--connect-rate"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"bench"}, tc.args...), nil, &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), tc.code, tc.want)
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
			p := planBench(&benchConfig{scenario: tc.scenario, topic: tc.topic, shared: tc.shared, clients: 2, idPrefix: "x"})
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

// With -d the counts are not known in advance, but everything sent before
// the deadline must arrive: the last buffered messages are flushed when
// publishing ends, not with the DISCONNECT.
func TestBenchDurationDeliversAll(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	for _, qos := range []string{"0", "1"} {
		t.Run("QoS "+qos, func(t *testing.T) {
			res := runBenchJSON(t, b.Addr, "fanout", "-c", "2", "-q", qos, "-d", "100ms", "-r", "2000")
			if res.Sent == 0 {
				t.Fatal("nothing sent")
			}
			checkBench(t, res, benchWant{conns: 3, sent: res.Sent, acked: map[string]uint64{"0": 0, "1": res.Sent}[qos],
				received: 2 * res.Sent, expected: 2 * res.Sent})
		})
	}
}
