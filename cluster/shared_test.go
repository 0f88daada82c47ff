package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
)

// TestSharedAcrossNodes: a group with a member on each node gets each
// message once cluster-wide [MQTT-4.8.2-3], spread over the members, and
// when a member leaves the others take its share.
func TestSharedAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 3)
	var members []*client.Client
	var got []*collector
	for i, tn := range nodes {
		c, g := connect(t, tn.addr, client.Options{ClientID: fmt.Sprintf("member-%d", i), CleanStart: true})
		subscribe(t, c, "$share/g/sh/#", 1)
		members, got = append(members, c), append(got, g)
	}
	other, gotOther := connect(t, nodes[2].addr, client.Options{ClientID: "other-group", CleanStart: true})
	subscribe(t, other, "$share/h/sh/+", 1)
	plain, gotPlain := connect(t, nodes[1].addr, client.Options{ClientID: "plain", CleanStart: true})
	subscribe(t, plain, "sh/#", 1)
	waitForInterest(t, nodes[0], "sh/x")
	time.Sleep(300 * time.Millisecond) // every member's interest reaches every node
	pub, _ := connect(t, nodes[0].addr, client.Options{ClientID: "shared-pub", CleanStart: true})
	const n = 300
	for i := range n {
		publish(t, pub, &packet.Publish{Topic: "sh/x", QoS: 1, Payload: fmt.Appendf(nil, "%d", i)})
	}
	total := func() int { return got[0].len() + got[1].len() + got[2].len() }
	waitFor(t, 20*time.Second, "every message in each group", func() bool {
		return total() >= n && gotOther.len() >= n && gotPlain.len() >= n
	})
	time.Sleep(200 * time.Millisecond)
	if total() != n || gotOther.len() != n || gotPlain.len() != n {
		t.Fatalf("group g got %d (%d+%d+%d), group h %d, plain %d; want %d each", total(), got[0].len(), got[1].len(), got[2].len(),
			gotOther.len(), gotPlain.len(), n)
	}
	seen := map[string]bool{}
	for i, g := range got {
		// Uniform over three members: each gets about 100; fewer than 50
		// is far outside chance (p < 1e-9).
		if g.len() < 50 {
			t.Errorf("member %d got %d of %d", i, g.len(), n)
		}
		for _, m := range g.all() {
			if seen[string(m.Payload)] {
				t.Fatalf("message %s delivered twice in the group", m.Payload)
			}
			seen[string(m.Payload)] = true
		}
	}
	t.Logf("group g: %d/%d/%d of %d", got[0].len(), got[1].len(), got[2].len(), n)

	// Member 2 leaves: the others take everything.
	ctx, cancel := ctxT()
	defer cancel()
	members[2].Unsubscribe(ctx, "$share/g/sh/#")
	members[2].Disconnect()
	time.Sleep(200 * time.Millisecond)
	before := [3]int{got[0].len(), got[1].len(), got[2].len()}
	for i := range 100 {
		publish(t, pub, &packet.Publish{Topic: "sh/x", QoS: 1, Payload: fmt.Appendf(nil, "b%d", i)})
	}
	waitFor(t, 20*time.Second, "the rest of the group takes all", func() bool {
		return got[0].len()+got[1].len()-before[0]-before[1] >= 100
	})
	time.Sleep(200 * time.Millisecond)
	if d := got[0].len() + got[1].len() - before[0] - before[1]; d != 100 || got[2].len() != before[2] {
		t.Fatalf("after a member left: %d delivered to the others, %d to the one gone", d, got[2].len()-before[2])
	}
}
