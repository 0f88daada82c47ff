package broker

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ternmq/tern/packet"
)

// newTestConn returns a v5 conn whose writer never starts (ob.writing = true), so
// sendPublish's output stays in ob.out for inspection.
func newTestConn(aliasMax, maxOut int) *conn {
	b := &Broker{}
	b.options.Store(&Options{MaxWriteBuffer: 64 << 20})
	c := &conn{b: b, version: packet.V5, maxOut: maxOut}
	c.aliases.max = aliasMax
	c.ob.writing = true
	return c
}

func drain(c *conn) []byte {
	if c.ob.out == nil {
		return nil
	}
	out := append([]byte(nil), (*c.ob.out)...)
	*c.ob.out = (*c.ob.out)[:0]
	return out
}

// TestAppendAliasedDecodes: aliased rewrites decode, for sizes around the
// 1-, 2- and 3-byte varint boundaries of the remaining length and the
// property length, every QoS, new and known aliases.
func TestAppendAliasedDecodes(t *testing.T) {
	edges := []int{0, 1, 121, 122, 123, 124, 125, 126, 127, 128, 129, 16379, 16380, 16381, 16382, 16383, 16384, 16385}
	n, fails := 0, 0
	for _, topicLen := range []int{1, 7, 200} {
		tp := strings.Repeat("t", topicLen)
		for _, ul := range edges {
			for _, pl := range edges {
				for _, qos := range []byte{0, 1, 2} {
					m := &Message{Topic: tp, Payload: bytes.Repeat([]byte{'p'}, pl), QoS: qos}
					if ul > 0 {
						// one user property: 1 id + 2+1 key + 2+len value = 6+len bytes; tune to hit ul
						m.Properties.User = userProps(ul)
					}
					b := encodePublish(nil, packet.V5, m, qos > 0, nil)
					c := newTestConn(10, 0)
					for round, wantTopic := range []string{tp, ""} { // new alias, then known alias
						c.sendPublish(nil, b, qos, false, round == 1 && qos > 0, 0x1234)
						out := drain(c)
						n++
						p, used, err := packet.DecodeBytes(out, packet.V5, 1<<30)
						if err == nil && used != len(out) {
							err = fmt.Errorf("decoded %d of %d bytes", used, len(out))
						}
						var pp *packet.Publish
						if err == nil {
							pp = p.(*packet.Publish)
							switch {
							case pp.Topic != wantTopic:
								err = fmt.Errorf("topic len %d, want %d", len(pp.Topic), len(wantTopic))
							case pp.Properties.TopicAlias == nil || *pp.Properties.TopicAlias != 1:
								err = fmt.Errorf("alias %v", pp.Properties.TopicAlias)
							case qos > 0 && pp.PacketID != 0x1234:
								err = fmt.Errorf("packet id %#x", pp.PacketID)
							case !bytes.Equal(pp.Payload, m.Payload):
								err = fmt.Errorf("payload len %d want %d", len(pp.Payload), len(m.Payload))
							case fmt.Sprint(m.Properties.User) != fmt.Sprint(pp.Properties.User):
								err = fmt.Errorf("user properties differ")
							case pp.QoS != qos:
								err = fmt.Errorf("qos %d", pp.QoS)
							}
						}
						if err != nil {
							fails++
							if fails < 10 {
								t.Errorf("topic %d props~%d payload %d qos %d round %d: %v", topicLen, ul, pl, qos, round, err)
							}
						}
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no packets tried")
	}
}

// A message that exactly fits the client's Maximum Packet Size is sent,
// not counted in flight and dropped (which would leak a window slot).
func TestMaxPacketSizeDoesNotLeakWindow(t *testing.T) {
	m := &Message{Topic: "t", Payload: bytes.Repeat([]byte{'p'}, 50), QoS: 1}
	b := encodePublish(nil, packet.V5, m, true, nil)
	c := newTestConn(0, len(b)) // no aliases at all; packet fits exactly
	br := &Broker{}
	br.options.Store(&Options{MaxWriteBuffer: 1 << 20, MaxInflight: 10, MaxQueued: 10})
	c.b = br
	s := newSession(br, "x", false)
	s.conn = c
	s.mu.Lock()
	s.seq++
	s.sendNew(c, delivery{qos: 1}.outbound(s.seq, m), &encoder{})
	s.mu.Unlock()
	out := drain(c)
	if len(out) != len(b) || len(s.inflight) != 1 {
		t.Errorf("message recorded in flight but never sent: window slot leaked")
	}
}

// userProps returns user properties encoding to about n bytes, each value
// within the 65535-byte string limit.
func userProps(n int) []packet.UserProperty {
	var ps []packet.UserProperty
	for n > 0 {
		v := min(max(n-6, 0), 60000)
		ps = append(ps, packet.UserProperty{Key: "k", Value: strings.Repeat("v", v)})
		n -= 6 + v
	}
	return ps
}

func TestReviewAliasGrowthFive(t *testing.T) {
	m := &Message{Topic: "t", Payload: make([]byte, 2097017), QoS: 1, Properties: packet.Properties{User: userProps(125)}}
	b := encodePublish(nil, packet.V5, m, true, nil)
	c := newTestConn(10, 0)
	c.sendPublish(nil, b, 1, false, false, 1)
	out := drain(c)
	_, _, err := packet.DecodeBytes(out, packet.V5, 1<<30)
	t.Logf("len(b)=%d, rewritten=%d (growth %d), decode err=%v", len(b), len(out), len(out)-len(b), err)
}
