package jsstore_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	jsstore "github.com/ternmq/tern/store/jetstream"
)

// servers is an embedded NATS deployment for a test: one server with
// JetStream, or several joined by routes into a JetStream cluster.
type servers struct {
	srvs []*server.Server
	opts []*server.Options
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServers starts n servers (n > 1: a cluster) with their JetStream
// files in temporary directories; they stop when the test ends.
func startServers(t testing.TB, n int, mods ...func(*server.Options)) *servers {
	t.Helper()
	ports, clientPorts := make([]int, n), make([]int, n)
	for i := range ports {
		ports[i], clientPorts[i] = freePort(t), freePort(t)
	}
	ss := &servers{}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("s%d", i+1),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "jsstore", Host: "127.0.0.1", Port: ports[i]}
			for j, p := range ports {
				if j != i {
					o.Routes = append(o.Routes, server.RoutesFromStr(fmt.Sprintf("nats-route://127.0.0.1:%d", p))...)
				}
			}
		}
		for _, mod := range mods {
			mod(o)
		}
		ss.opts = append(ss.opts, o)
		ss.srvs = append(ss.srvs, nil)
		ss.start(t, i)
	}
	t.Cleanup(func() {
		for _, s := range ss.srvs {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	if n > 1 {
		waitFor(t, 30*time.Second, "the servers route to each other", func() bool {
			for _, s := range ss.srvs {
				if s.NumRoutes() < n-1 {
					return false
				}
			}
			return true
		})
	}
	return ss
}

// start starts server i (again: with the same ports and files).
func (ss *servers) start(t testing.TB, i int) {
	t.Helper()
	srv, err := server.NewServer(ss.opts[i].Clone())
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatalf("server %d did not start", i+1)
	}
	ss.srvs[i] = srv
}

// connect connects to server i first, and to the others when it goes.
func (ss *servers) connect(t testing.TB, i int) jetstream.JetStream {
	t.Helper()
	url := func(j int) string { return fmt.Sprintf("nats://127.0.0.1:%d", ss.opts[j].Port) }
	urls := []string{url(i)}
	for j := range ss.srvs {
		if j != i {
			urls = append(urls, url(j))
		}
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.DontRandomize(), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func (ss *servers) shutdown(i int) {
	ss.srvs[i].Shutdown()
	ss.srvs[i].WaitForShutdown()
}

// index returns the index of the server named name.
func (ss *servers) index(name string) int {
	for i, s := range ss.srvs {
		if s.Name() == name {
			return i
		}
	}
	return -1
}

var buckets atomic.Int64

// bucket returns a bucket name no other test uses.
func bucket() string { return fmt.Sprintf("b%d", buckets.Add(1)) }

func mustOpen(t testing.TB, js jetstream.JetStream, o jsstore.Options) *jsstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := jsstore.Open(ctx, js, o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keys lists the bucket's keys.
func keys(t testing.TB, js jetstream.JetStream, b string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	l, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for k := range l.Keys() {
		ks = append(ks, k)
	}
	return ks
}

// count counts the keys that start with prefix.
func count(ks []string, prefix string) int {
	n := 0
	for _, k := range ks {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}
