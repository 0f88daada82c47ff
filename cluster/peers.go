package cluster

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Nodes announce themselves on peersSubject every heartbeat; a node not
// heard from for peerTimeout has left.
const (
	peersSubject = "tern.nodes"
	heartbeat    = time.Second
	peerTimeout  = 5 * time.Second
)

type peers struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

type announce struct {
	Node string `json:"node"`
}

// NodeInfo is a member of the cluster as this node sees it.
type NodeInfo struct {
	Name     string    `json:"name"`
	Self     bool      `json:"self"`
	LastSeen time.Time `json:"last_seen"`
}

func (p *peers) start(n *Node) {
	p.seen = make(map[string]time.Time)
	n.queue.Subscribe(peersSubject, func(m *nats.Msg) {
		var a announce
		if json.Unmarshal(m.Data, &a) == nil && a.Node != "" {
			p.mu.Lock()
			p.seen[a.Node] = time.Now()
			p.mu.Unlock()
		}
	})
	hello, _ := json.Marshal(announce{Node: n.cfg.Node})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			n.queue.Publish(peersSubject, hello)
			select {
			case <-t.C:
			case <-n.stop:
				return
			}
		}
	}()
}

// Nodes returns the nodes of the cluster heard from lately, this one
// included, by name.
func (n *Node) Nodes() []NodeInfo {
	p := &n.peers
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	out := []NodeInfo{{Name: n.cfg.Node, Self: true, LastSeen: now}}
	for name, at := range p.seen {
		if now.Sub(at) > peerTimeout {
			delete(p.seen, name)
		} else if name != n.cfg.Node {
			out = append(out, NodeInfo{Name: name, LastSeen: at})
		}
	}
	slices.SortFunc(out, func(a, b NodeInfo) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return out
}
