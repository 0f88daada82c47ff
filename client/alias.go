package client

import "github.com/ternmq/tern/packet"

// minAliasTopic is the shortest topic worth an alias: the Topic Alias
// property costs 3 bytes, a topic 2 plus its length.
const minAliasTopic = 4

// aliasOut assigns v5 Topic Aliases to outgoing PUBLISH packets: a topic
// gets an alias the second time it is published, while the server's Topic
// Alias Maximum allows; the first packet with an alias carries the topic
// too and later ones an empty topic. Aliases live as long as the
// connection [MQTT-3.3.2-7], so a new connection starts again with full
// topics. The writer applies it under its lock, so that a packet setting
// up an alias is written before the packets that use it.
type aliasOut struct {
	max     uint16            // the server's Topic Alias Maximum
	maxSize uint32            // the server's Maximum Packet Size; 0: none
	byTopic map[string]uint16 // aliases set up on this connection
	seen    map[string]bool   // topics published once, candidates
}

func newAliasOut(max uint16, maxSize uint32) *aliasOut {
	return &aliasOut{max: max, maxSize: maxSize, byTopic: make(map[string]uint16), seen: make(map[string]bool)}
}

// apply returns the packet to send for p: p itself, or a copy using an
// alias. commit must be called once the packet was encoded, so that an
// alias the server never heard of is never used.
func (a *aliasOut) apply(p *packet.Publish) (out *packet.Publish, commit func()) {
	if p.Properties.TopicAlias != nil || len(p.Topic) < minAliasTopic {
		return p, nil // the caller manages aliases itself, or not worth it
	}
	if n, ok := a.byTopic[p.Topic]; ok {
		pp := *p
		pp.Topic = ""
		pp.Properties.TopicAlias = &n
		return &pp, nil
	}
	if len(a.byTopic) >= int(a.max) {
		return p, nil
	}
	if !a.seen[p.Topic] {
		return p, func() {
			// Bound the candidates: a stream of distinct topics must not
			// grow this map without end.
			if len(a.seen) >= 4*int(a.max)+64 {
				clear(a.seen)
			}
			a.seen[p.Topic] = true
		}
	}
	if a.maxSize != 0 && uint64(p.Size(packet.V5))+3 > uint64(a.maxSize) {
		// [MQTT-3.2.2-15] the Topic Alias property (3 bytes) would take
		// the packet that sets it up past the server's maximum.
		return p, nil
	}
	// [MQTT-3.3.2-8] aliases from 1 to the server's maximum.
	n := uint16(len(a.byTopic) + 1)
	pp := *p
	pp.Properties.TopicAlias = &n
	return &pp, func() {
		delete(a.seen, p.Topic)
		a.byTopic[p.Topic] = n
	}
}
