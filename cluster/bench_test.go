package cluster

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// BenchmarkRoute publishes QoS 0 and 1 messages through Tern's client to
// one subscriber: on one node without a cluster, within one node of a
// cluster, and from one node of a cluster to another.
func BenchmarkRoute(b *testing.B) {
	for _, qos := range []byte{0, 1} {
		b.Run(fmt.Sprintf("qos%d/single", qos), func(b *testing.B) {
			tb := mqtttest.StartBroker(b, broker.Options{})
			benchRoute(b, tb.Addr, tb.Addr, qos, tb.Broker)
		})
		b.Run(fmt.Sprintf("qos%d/cluster-local", qos), func(b *testing.B) {
			nodes := startCluster(b, 2)
			benchRoute(b, nodes[0].addr, nodes[0].addr, qos, nodes[0].b)
		})
		b.Run(fmt.Sprintf("qos%d/cluster-remote", qos), func(b *testing.B) {
			nodes := startCluster(b, 2)
			benchRoute(b, nodes[0].addr, nodes[1].addr, qos, nodes[1].b)
		})
	}
}

// benchRoute counts what arrives, and what the subscriber's broker
// dropped because the subscriber fell behind (a full queue: the broker's
// policy, not a loss in transit).
func benchRoute(b *testing.B, pubAddr, subAddr string, qos byte, subBroker *broker.Broker) {
	var got atomic.Int64
	sub, _ := connect(b, subAddr, client.Options{ClientID: "bench-sub", CleanStart: true,
		OnMessage: func(*packet.Publish) { got.Add(1) }})
	subscribe(b, sub, "bench/#", qos)
	time.Sleep(300 * time.Millisecond) // interest reaches the other node
	pub, _ := connect(b, pubAddr, client.Options{ClientID: "bench-pub", CleanStart: true})
	payload := make([]byte, 64)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if err := pub.Publish(ctx, &packet.Publish{Topic: "bench/x", QoS: qos, Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	dropped := func() int64 { return int64(subBroker.Stats().Dropped.QueueFull) }
	deadline := time.Now().Add(30 * time.Second)
	for got.Load()+dropped() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if n, d := got.Load(), dropped(); n+d != int64(b.N) {
		b.Fatalf("received %d and dropped %d of %d", n, d, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	b.ReportMetric(float64(dropped()), "dropped")
}

// BenchmarkDurableOffline publishes QoS 1 and QoS 2 messages from 16
// persistent sessions on node 1 of a three-node cluster to one offline
// persistent session homed on node 2: each is acknowledged once the
// replicated stream has it (at QoS 2, after the packet id is stored),
// and node 2 queues it in the replicated store.
func BenchmarkDurableOffline(b *testing.B) {
	for _, qos := range []byte{1, 2} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) { benchDurableOffline(b, qos) })
	}
}

func benchDurableOffline(b *testing.B, qos byte) {
	nodes := startCluster(b, 3)
	away, _ := connect(b, nodes[1].addr, client.Options{ClientID: "bench-away", Properties: expiry(3600)})
	subscribe(b, away, "dur/#", qos)
	away.Disconnect()
	<-away.Done()
	const clients = 16
	var pubs []*client.Client
	for i := range clients {
		p, _ := connect(b, nodes[0].addr, client.Options{ClientID: fmt.Sprintf("bench-pub-%d", i), Properties: expiry(3600)})
		pubs = append(pubs, p)
	}
	payload := make([]byte, 64)
	var next atomic.Int64
	b.ResetTimer()
	done := make(chan error, clients)
	for _, p := range pubs {
		go func() {
			for next.Add(1) <= int64(b.N) {
				if err := p.Publish(context.Background(), &packet.Publish{Topic: "dur/x", QoS: qos, Payload: payload}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range clients {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
