package bench

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
)

// nodes is one broker serving on several loopback listeners, standing in
// for the nodes of a cluster: a message published through one reaches
// subscribers on every other. It records which listener each client came
// through.
type nodes struct {
	addrs []string

	mu     sync.Mutex
	remote map[string]int // a connection's remote address -> its listener
	ids    [][]string     // client ids, by listener
}

func startNodes(t *testing.T, n int) *nodes {
	t.Helper()
	ns := &nodes{remote: map[string]int{}, ids: make([][]string, n)}
	b := mt.StartBroker(t, broker.Options{Hooks: []any{ns}})
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ns.addrs = append(ns.addrs, "tcp://"+ln.Addr().String())
		go func() { _ = b.Serve(&nodeListener{Listener: ln, ns: ns, i: i}) }()
	}
	return ns
}

// OnConnect is the broker hook that files the client under its listener.
func (ns *nodes) OnConnect(c *auth.Client) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if i, ok := ns.remote[c.RemoteAddr.String()]; ok {
		ns.ids[i] = append(ns.ids[i], c.ClientID)
	}
}

var _ broker.OnConnect = (*nodes)(nil)

// clients returns the client ids (without the prefix) each listener saw, sorted.
func (ns *nodes) clients(prefix string) [][]string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	out := make([][]string, len(ns.ids))
	for i, ids := range ns.ids {
		for _, id := range ids {
			out[i] = append(out[i], strings.TrimPrefix(id, prefix+"-"))
		}
		slices.Sort(out[i])
	}
	return out
}

type nodeListener struct {
	net.Listener
	ns *nodes
	i  int
}

func (l *nodeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.ns.mu.Lock()
		l.ns.remote[c.RemoteAddr().String()] = l.i
		l.ns.mu.Unlock()
	}
	return c, err
}

// Several URLs: connection i of each kind goes to URL i mod n; with
// SubURLs, the subscribers go there and the publishers to URLs.
func TestBenchSeveralURLs(t *testing.T) {
	cases := []struct {
		name     string
		scenario string
		clients  int
		urls     []int // indexes into the nodes
		subURLs  []int
		want     [2][]string // client ids by node
		received uint64
	}{
		{"conn over two", "conn", 6, []int{0, 1}, nil,
			[2][]string{{"conn-0", "conn-2", "conn-4"}, {"conn-1", "conn-3", "conn-5"}}, 0},
		{"pub over two", "pub", 3, []int{0, 1}, nil,
			[2][]string{{"pub-0", "pub-2"}, {"pub-1"}}, 0},
		{"p2p over two: pair i on node i mod 2", "p2p", 4, []int{0, 1}, nil,
			[2][]string{{"pub-0", "pub-2", "sub-0", "sub-2"}, {"pub-1", "pub-3", "sub-1", "sub-3"}}, 4 * 50},
		{"fanout, subscribers on the second node", "fanout", 3, []int{0}, []int{1},
			[2][]string{{"pub-0"}, {"sub-0", "sub-1", "sub-2"}}, 3 * 50},
		{"p2p, publishers on the second, subscribers on the first", "p2p", 2, []int{1}, []int{0},
			[2][]string{{"sub-0", "sub-1"}, {"pub-0", "pub-1"}}, 2 * 50},
		{"fanin, subscriber spread over both (one: the first)", "fanin", 2, []int{1, 0}, []int{0, 1},
			[2][]string{{"pub-1", "sub-0"}, {"pub-0"}}, 2 * 50},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := startNodes(t, 2)
			urls := func(is []int) []string {
				var s []string
				for _, i := range is {
					s = append(s, ns.addrs[i])
				}
				return s
			}
			cfg := conf(tc.scenario, "", func(c *Config) {
				c.Clients, c.QoS, c.IDPrefix = tc.clients, 1, "x"
				if tc.scenario == "conn" {
					c.Duration = time.Millisecond
				} else {
					c.Count = 50
				}
			})
			cfg.URLs, cfg.SubURLs = urls(tc.urls), urls(tc.subURLs)
			res := run(t, cfg)
			got := ns.clients("x")
			for i := range 2 {
				if strings.Join(got[i], " ") != strings.Join(tc.want[i], " ") {
					t.Errorf("node %d had %v, want %v", i, got[i], tc.want[i])
				}
			}
			if res.Connections.OK != len(tc.want[0])+len(tc.want[1]) || res.Received != tc.received ||
				(res.Loss != nil && *res.Loss != 0) {
				t.Errorf("connections %+v received %d loss %v; want all, %d, 0", res.Connections, res.Received, ptrText(res.Loss), tc.received)
			}
			// The result says how many went where.
			var servers []string
			for _, s := range res.Servers {
				servers = append(servers, fmt.Sprintf("%s %d", s.URL, s.OK))
			}
			var want []string
			for i, ids := range tc.want {
				if len(ids) > 0 {
					want = append(want, fmt.Sprintf("%s %d", ns.addrs[i], len(ids)))
				}
			}
			slices.Sort(want)
			if len(want) < 2 {
				want = nil // one server: no breakdown
			}
			if strings.Join(servers, ", ") != strings.Join(want, ", ") {
				t.Errorf("servers %v, want %v", servers, want)
			}
			var text strings.Builder
			_ = res.WriteText(&text)
			if tc.subURLs != nil && !strings.Contains(text.String(), "subscribers on "+ns.addrs[tc.subURLs[0]]) {
				t.Errorf("the summary does not say where the subscribers went:\n%s", text.String())
			}
		})
	}
}

// A URL where nothing listens fails its share of the connections, and
// the result says which.
func TestBenchDeadURL(t *testing.T) {
	ns := startNodes(t, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "tcp://" + ln.Addr().String()
	ln.Close()
	cfg := conf("conn", "", func(c *Config) { c.Clients, c.Duration = 4, time.Millisecond })
	cfg.URLs = []string{ns.addrs[0], dead}
	res := run(t, cfg)
	if res.Connections.OK != 2 || res.Connections.Failed != 2 {
		t.Errorf("connections %+v, want 2 ok and 2 failed", res.Connections)
	}
	want := []ServerConns{{URL: ns.addrs[0], OK: 2}, {URL: dead, Failed: 2}}
	slices.SortFunc(want, func(a, b ServerConns) int { return strings.Compare(a.URL, b.URL) })
	if !slices.Equal(res.Servers, want) {
		t.Errorf("servers %+v, want %+v", res.Servers, want)
	}
	var text strings.Builder
	_ = res.WriteText(&text)
	if !strings.Contains(text.String(), dead+" 0 ok, 2 failed") {
		t.Errorf("summary:\n%s", text.String())
	}
}
