package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternmq/tern/admin"
	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// countingConn counts the bytes a client writes and reads: what the
// broker must count as received and sent.
type countingConn struct {
	net.Conn
	read, written *atomic.Int64 // shared by all the test's clients
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// apiStats is the part of GET /api/v1/stats the test reads.
type apiStats struct {
	Connections         int64    `json:"connections"`
	ConnectionsMax      int64    `json:"connections_max"`
	ConnectionsTotal    int64    `json:"connections_total"`
	Sessions            int64    `json:"sessions"`
	SessionsExpired     int64    `json:"sessions_expired"`
	Subscriptions       int64    `json:"subscriptions"`
	Retained            int64    `json:"retained"`
	MessagesReceived    int64    `json:"messages_received"`
	MessagesSent        int64    `json:"messages_sent"`
	MessagesReceivedQoS [3]int64 `json:"messages_received_qos"`
	MessagesSentQoS     [3]int64 `json:"messages_sent_qos"`
	BytesReceived       int64    `json:"bytes_received"`
	BytesSent           int64    `json:"bytes_sent"`
	Queued              int64    `json:"queued"`
	Inflight            int64    `json:"inflight"`
	Kicked              int64    `json:"kicked"`
	AuthFailures        int64    `json:"auth_failures"`
	RefusedConnects     struct {
		BadCredentials int64 `json:"bad_credentials"`
	} `json:"refused_connects"`
	Dropped struct {
		QueueFull      int64 `json:"queue_full"`
		Slow           int64 `json:"slow"`
		Expired        int64 `json:"expired"`
		NotAuthorized  int64 `json:"not_authorized"`
		NoSharedMember int64 `json:"no_shared_member"`
		TooLarge       int64 `json:"too_large"`
		RetainedFull   int64 `json:"retained_full"`
		QueueRefused   int64 `json:"queue_refused"`
	} `json:"dropped"`
}

// TestObservabilityExact runs `tern serve` with the admin server and
// $SYS every second, drives a known workload with raw 3.1.1 and 5.0
// clients, and checks the exact values of /metrics, /api/v1/stats and
// the $SYS topics as mosquitto_sub reads them.
func TestObservabilityExact(t *testing.T) {
	mosqSub := mosquitto(t, "mosquitto_sub")
	const (
		n0, n1, n2 = 3, 4, 5 // messages published at QoS 0, 1 and 2
		user, pw   = "worker", "worker-pw"
		token      = "admin-token"
	)
	cfg := defaultConfig()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Storage.Persist = new(false)
	cfg.SysInterval = new(time.Second)
	cfg.Users = map[string]string{user: pw} // anonymous access off
	adminAddr := freeAddr(t)
	cfg.Admin.Address = new(adminAddr)
	cfg.Admin.Token = token
	addr := startServe(t, cfg)
	base := "http://" + adminAddr
	get := func(path string) string {
		t.Helper()
		code, body := adminDo(t, "GET", base+path, "Bearer "+token)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		return body
	}
	stats := func() apiStats {
		t.Helper()
		var s apiStats
		if err := json.Unmarshal([]byte(get("/api/v1/stats")), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Every byte the clients write and read goes through these.
	var clientRead, clientWritten atomic.Int64
	dial := func(v byte) *mt.Raw {
		nc, err := net.DialTimeout("tcp", addr, mt.Timeout)
		if err != nil {
			t.Fatal(err)
		}
		return mt.Wrap(t, countingConn{Conn: nc, read: &clientRead, written: &clientWritten}, v)
	}
	connect := func(c *mt.Raw, id, password string) *packet.Connack {
		t.Helper()
		return c.ConnectWith(&packet.Connect{ClientID: id, CleanStart: true, KeepAlive: 60,
			UsernameFlag: true, Username: user, PasswordFlag: true, Password: []byte(password)})
	}

	// The subscriber (5.0): w/# at QoS 2, so every message goes out at
	// the QoS it was published with.
	sub := dial(packet.V5)
	if ack := connect(sub, "sub", pw); ack.ReasonCode != 0 {
		t.Fatalf("sub: CONNACK %v", ack.ReasonCode)
	}
	if ack := sub.Subscribe(1, 2, "w/#"); ack.ReasonCodes[0] != packet.GrantedQoS2 {
		t.Fatalf("sub: SUBACK %v", ack.ReasonCodes)
	}

	// The publisher (3.1.1): n0, n1 and n2 messages at QoS 0, 1 and 2,
	// each QoS 1 and 2 flow complete before the next message.
	pub := dial(packet.V311)
	if ack := connect(pub, "pub", pw); ack.ReasonCode != 0 {
		t.Fatalf("pub: CONNACK %v", ack.ReasonCode)
	}
	id := uint16(0)
	for q, n := range [3]int{n0, n1, n2} {
		for i := range n {
			p := &packet.Publish{Topic: fmt.Sprintf("w/%d/%d", q, i), QoS: byte(q), Payload: []byte("payload")}
			if q > 0 {
				id++
				p.PacketID = id
			}
			pub.Send(p)
			switch q {
			case 1:
				if ack := mt.Expect[*packet.Puback](pub); ack.PacketID != id {
					t.Fatalf("PUBACK %d, want %d", ack.PacketID, id)
				}
			case 2:
				mt.Expect[*packet.Pubrec](pub)
				pub.Send(&packet.Pubrel{PacketID: id})
				if ack := mt.Expect[*packet.Pubcomp](pub); ack.PacketID != id {
					t.Fatalf("PUBCOMP %d, want %d", ack.PacketID, id)
				}
			}
		}
	}
	// The subscriber takes them all and completes its side of each flow.
	var got [3]int
	for released := 0; got[0]+got[1]+got[2] < n0+n1+n2 || released < n2; {
		switch p := sub.Read().(type) {
		case *packet.Publish:
			got[p.QoS]++
			switch p.QoS {
			case 1:
				sub.Send(&packet.Puback{PacketID: p.PacketID})
			case 2:
				sub.Send(&packet.Pubrec{PacketID: p.PacketID})
			}
		case *packet.Pubrel:
			released++
			sub.Send(&packet.Pubcomp{PacketID: p.PacketID})
		default:
			t.Fatalf("sub got %s %+v", p.Type(), p)
		}
	}
	if got != [3]int{n0, n1, n2} {
		t.Fatalf("sub got %v messages by QoS, want %v", got, [3]int{n0, n1, n2})
	}

	// One refused CONNECT: a wrong password (3.1.1: return code 4).
	bad := dial(packet.V311)
	if ack := connect(bad, "bad", "wrong"); ack.ReasonCode != packet.RefusedBadUsernamePassword {
		t.Fatalf("wrong password: CONNACK %v", ack.ReasonCode)
	}
	bad.ExpectClosed(mt.Timeout)

	// One kick through the API: a 5.0 client is told why.
	victim := dial(packet.V5)
	if ack := connect(victim, "victim", pw); ack.ReasonCode != 0 {
		t.Fatalf("victim: CONNACK %v", ack.ReasonCode)
	}
	if code, body := adminDo(t, "POST", base+"/api/v1/clients/victim/disconnect", "Bearer "+token); code != 204 {
		t.Fatalf("kick: %d %s", code, body)
	}
	if ps := victim.ExpectClosed(mt.Timeout); len(ps) != 1 || ps[0].(*packet.Disconnect).ReasonCode != packet.AdministrativeAction {
		t.Fatalf("kicked client got %v, want one DISCONNECT 0x98", ps)
	}

	// The workload is over once the broker has read all the clients
	// wrote (the last PUBCOMP), counted all they read (the writer counts
	// after its write returns, the client may read before) and let the
	// kicked client's session go. Nothing moves after that: the clients
	// are quiet, $SYS has no subscriber, and HTTP requests are not MQTT.
	var s apiStats
	deadline := time.Now().Add(mt.Timeout)
	for {
		s = stats()
		if s.BytesReceived == clientWritten.Load() && s.BytesSent == clientRead.Load() &&
			s.Connections == 2 && s.Sessions == 2 && s.Inflight == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broker's counters did not settle: %+v; clients wrote %d bytes and read %d",
				s, clientWritten.Load(), clientRead.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The bytes either way, packet by packet. The clients wrote: the
	// CONNECTs of sub (37 bytes), pub (36), the refused one (32) and the
	// victim (40), the SUBSCRIBE (11), the PUBLISHes (n0 of 16 bytes, n1
	// + n2 of 18), and 4 bytes for each PUBACK (n1, the subscriber),
	// PUBREL (n2, the publisher), PUBREC and PUBCOMP (n2 each, the
	// subscriber).
	const bytesIn = 37 + 36 + 32 + 40 + 11 + n0*16 + (n1+n2)*18 + 4*n1 + 3*4*n2
	// They read: the 5.0 CONNACKs of sub and the victim (16 bytes each:
	// Receive Maximum, Topic Alias Maximum, Maximum Packet Size), the
	// 3.1.1 ones of pub and of the refused client (4 each), the SUBACK
	// (6); the publisher 4 bytes for each PUBACK (n1), PUBREC and PUBCOMP
	// (n2 each); the subscriber the PUBLISHes (5.0, one more byte for the
	// empty properties: n0 of 17, n1 + n2 of 19) and a PUBREL for each
	// QoS 2 one (4); the victim DISCONNECT 0x98 with its reason string
	// "disconnected by an administrator" (39). The broker's defaults shape
	// this side: should they change, the clients' own count is the
	// reference, and the constant follows it.
	const bytesOut = 2*16 + 2*4 + 6 + 4*n1 + 2*4*n2 + n0*17 + (n1+n2)*19 + 4*n2 + 39
	if w, r := clientWritten.Load(), clientRead.Load(); w != bytesIn || r != bytesOut {
		t.Errorf("the clients wrote %d bytes and read %d, want %d and %d", w, r, bytesIn, bytesOut)
	}

	// Exact values, by series as /metrics writes them.
	want := map[string]int64{
		`tern_connections`:                                         2, // sub and pub
		`tern_connections_max`:                                     3, // and the victim
		`tern_connections_total`:                                   3, // the refused CONNECT is not accepted
		`tern_sessions`:                                            2, // the victim's clean session ended with it
		`tern_sessions_expired_total`:                              0,
		`tern_subscriptions`:                                       1,
		`tern_retained_messages`:                                   admin.SysTopics, // $SYS's own, all from its first update
		`tern_queued_messages`:                                     0,
		`tern_inflight_messages`:                                   0,
		`tern_messages_received_total{qos="0"}`:                    n0,
		`tern_messages_received_total{qos="1"}`:                    n1,
		`tern_messages_received_total{qos="2"}`:                    n2,
		`tern_messages_sent_total{qos="0"}`:                        n0,
		`tern_messages_sent_total{qos="1"}`:                        n1,
		`tern_messages_sent_total{qos="2"}`:                        n2,
		`tern_delivery_latency_seconds_count{qos="0"}`:             n0,
		`tern_delivery_latency_seconds_count{qos="1"}`:             n1,
		`tern_delivery_latency_seconds_count{qos="2"}`:             n2,
		`tern_bytes_received_total`:                                bytesIn,
		`tern_bytes_sent_total`:                                    bytesOut,
		`tern_auth_failures_total`:                                 1,
		`tern_clients_kicked_total`:                                1,
		`tern_refused_connections_total{reason="bad_credentials"}`: 1,
	}
	for _, r := range []string{"not_authorized", "client_id_rejected", "protocol_version", "server_unavailable",
		"connect_size", "preauth_memory", "connection_limit", "keep_alive", "other"} {
		want[`tern_refused_connections_total{reason="`+r+`"}`] = 0
	}
	for _, r := range []string{"queue_full", "slow", "expired", "not_authorized", "no_shared_member",
		"too_large", "retained_full", "queue_refused"} {
		want[`tern_dropped_messages_total{reason="`+r+`"}`] = 0
	}
	metrics := parseMetrics(t, get("/metrics"))
	for series, w := range want {
		v, ok := metrics[series]
		if !ok {
			t.Errorf("/metrics has no %s", series)
		} else if v != float64(w) {
			t.Errorf("%s = %v, want %d", series, v, w)
		}
	}

	// /api/v1/stats agrees, in a snapshot taken after the scrape: the
	// broker is quiet, so it is the same instant.
	s = stats()
	wantStats := apiStats{
		Connections: 2, ConnectionsMax: 3, ConnectionsTotal: 3, Sessions: 2, Subscriptions: 1,
		Retained: admin.SysTopics, MessagesReceived: n0 + n1 + n2, MessagesSent: n0 + n1 + n2,
		MessagesReceivedQoS: [3]int64{n0, n1, n2}, MessagesSentQoS: [3]int64{n0, n1, n2},
		BytesReceived: bytesIn, BytesSent: bytesOut, Kicked: 1, AuthFailures: 1,
	}
	wantStats.RefusedConnects.BadCredentials = 1
	if s != wantStats { // nothing dropped, nothing queued or expired
		t.Errorf("/api/v1/stats\n got %+v\nwant %+v", s, wantStats)
	}
	if t.Failed() {
		t.FailNow()
	}

	// $SYS as mosquitto_sub reads it. mosquitto_sub is a client too: its
	// CONNECT, SUBSCRIBE and the 40 retained messages it is sent move
	// the counters, but only after it connects, and $SYS publishes what
	// the counters were at its last update. So: take the expected values
	// from a snapshot of the quiet broker, wait until an update has read
	// the counters after that snapshot (the second change of
	// $SYS/broker/uptime, which every update publishes, watched through
	// the API, which is not MQTT), and read the retained values before
	// the next update can count mosquitto_sub itself. An update landing
	// while mosquitto_sub reads (uptime changed meanwhile, or fewer than
	// all topics, --retained-only stopping at a live update) makes the
	// reading void: again, with a new snapshot once mosquitto_sub is gone.
	// The first snapshot is the workload's, checked exactly above.
	uptime := func() string {
		var m struct {
			PayloadText string `json:"payload_text"`
		}
		if err := json.Unmarshal([]byte(get("/api/v1/retained/message?topic=%24SYS%2Fbroker%2Fuptime")), &m); err != nil {
			t.Fatal(err)
		}
		return m.PayloadText
	}
	h, port := hostPort(t, addr)
	for attempt := 1; ; attempt++ {
		snap := stats()
		if attempt == 1 && snap.BytesSent != bytesOut {
			t.Fatalf("the broker moved after the workload: %+v", snap)
		}
		up := uptime()
		for changes := 0; changes < 2; {
			mt.Eventually(t, "a $SYS update", func() bool { return uptime() != up })
			up = uptime()
			changes++
		}
		// The update that published uptime publishes the rest at once.
		time.Sleep(50 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// -F: topic and payload apart by a tab, since a topic ("retained
		// messages/count") and payloads ("12 seconds") have spaces.
		out, err := exec.CommandContext(ctx, mosqSub, "-h", h, "-p", port, "-u", user, "-P", pw,
			"-t", "$SYS/broker/#", "-F", `%t\t%p`, "-C", fmt.Sprint(admin.SysTopics), "-W", "5", "--retained-only").Output()
		cancel()
		sys := make(map[string]string)
		for line := range strings.Lines(string(out)) {
			topic, payload, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
			if !ok {
				t.Fatalf("mosquitto_sub line %q", line)
			}
			sys[strings.TrimPrefix(topic, admin.SysPrefix)] = payload
		}
		if uptime() != up || err != nil || len(sys) != admin.SysTopics {
			if attempt == 3 {
				t.Fatalf("mosquitto_sub: %v; %d topics of %d; uptime %q then %q", err, len(sys), admin.SysTopics, up, uptime())
			}
			t.Logf("attempt %d: an update while mosquitto_sub read (%v, %d topics): again", attempt, err, len(sys))
			mt.Eventually(t, "mosquitto_sub gone", func() bool { s := stats(); return s.Connections == 2 && s.Sessions == 2 })
			continue
		}
		n := func(v int64) string { return strconv.FormatInt(v, 10) }
		for topic, want := range map[string]string{
			"messages/received":         n(snap.MessagesReceived), // attempt 1: n0+n1+n2, as all that follow
			"publish/messages/received": n(snap.MessagesReceived),
			"messages/sent":             n(snap.MessagesSent), // attempt 1: n0+n1+n2
			"publish/messages/sent":     n(snap.MessagesSent),
			"publish/messages/dropped":  "0",
			"clients/connected":         n(snap.Connections), // 2
			"clients/total":             n(snap.Sessions),    // 2
			"clients/disconnected":      "0",
			"clients/maximum":           n(snap.ConnectionsMax), // 3
			"clients/expired":           "0",
			"subscriptions/count":       n(snap.Subscriptions), // 1
			"bytes/received":            n(snap.BytesReceived), // attempt 1: bytesIn
			"bytes/sent":                n(snap.BytesSent),     // attempt 1: bytesOut
			"retained messages/count":   n(admin.SysTopics),    // $SYS's own
			"messages/stored":           n(admin.SysTopics),    // those, nothing queued or in flight
			"version":                   "tern " + versionString(),
		} {
			if sys[topic] != want {
				t.Errorf("$SYS/broker/%s = %q, want %q (attempt %d)", topic, sys[topic], want, attempt)
			}
		}
		// Whatever the attempt, the workload's own counts are exact.
		if snap.MessagesReceived != n0+n1+n2 || snap.Subscriptions != 1 || snap.Kicked != 1 || snap.AuthFailures != 1 {
			t.Errorf("snapshot %+v", snap)
		}
		return
	}
}

// parseMetrics reads Prometheus text exposition into series -> value,
// a series written as /metrics writes it: name{labels}.
func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	m := make(map[string]float64)
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("/metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}
