package broker

import "github.com/ternmq/tern/packet"

// Topic aliases (v5) replace a repeated topic name by a two-byte number
// per connection, in each direction.

// maxAliasGrowth is the most appendAliased can add to a packet: the
// property (3 bytes) and one more byte in each of two variable byte
// integers.
const maxAliasGrowth = 5

// outAliases is the server-to-client alias table of one connection.
// ob.mu must be held to use it: aliases are assigned in wire order.
type outAliases struct {
	max     int // the client's Topic Alias Maximum; 0: none
	byTopic map[string]uint16
}

// appendAliased appends PUBLISH b (as encodePublish made it, v5, with a
// packet id when hasID) to dst using a topic alias: the topic is left out
// when the client already knows its alias, or sent with a new alias while
// the client's maximum allows [MQTT-3.3.2-11]. Otherwise b is appended as
// it is. ob.mu must be held.
func (c *conn) appendAliased(dst, b []byte, hasID bool) []byte {
	a := &c.aliases
	_, n := packet.ConsumeVarint(b[1:])
	i := 1 + n
	tl := int(b[i])<<8 | int(b[i+1])
	topic := b[i+2 : i+2+tl]
	rest := b[i+2+tl:] // [packet id] property length, properties, payload
	alias, known := a.byTopic[string(topic)]
	if !known {
		if len(a.byTopic) >= a.max {
			return append(dst, b...)
		}
		if a.byTopic == nil {
			a.byTopic = make(map[string]uint16)
		}
		alias = uint16(len(a.byTopic) + 1)
		a.byTopic[string(topic)] = alias
	} else {
		topic = nil
	}
	idLen := 0
	if hasID {
		idLen = 2
	}
	plen, pn := packet.ConsumeVarint(rest[idLen:])
	props, payload := rest[idLen+pn:idLen+pn+int(plen)], rest[idLen+pn+int(plen):]
	plen += 3 // Topic Alias: identifier 0x23 and two bytes
	remaining := uint32(2+len(topic)+idLen+packet.VarintLen(plen)) + plen + uint32(len(payload))
	dst = append(dst, b[0])
	dst = packet.AppendVarint(dst, remaining)
	dst = append(dst, byte(len(topic)>>8), byte(len(topic)))
	dst = append(dst, topic...)
	dst = append(dst, rest[:idLen]...)
	dst = packet.AppendVarint(dst, plen)
	dst = append(dst, 0x23, byte(alias>>8), byte(alias))
	dst = append(dst, props...)
	return append(dst, payload...)
}

// resolveAlias applies an inbound Topic Alias to p: it sets up or replaces
// the alias when p has a topic, and fills the topic in when it has none.
func (c *conn) resolveAlias(p *packet.Publish) error {
	a := p.Properties.TopicAlias
	if a == nil {
		return nil
	}
	if *a == 0 || int(*a) > c.announced.TopicAliasMaximum {
		// [MQTT-3.3.2-8] [MQTT-3.3.2-9] 0, or above what we allowed.
		return packet.TopicAliasInvalid
	}
	if p.Topic != "" {
		x := c.rare()
		if x.inAliases == nil {
			x.inAliases = make(map[uint16]string)
		}
		x.inAliases[*a] = p.Topic
		return nil
	}
	t, ok := c.rare().inAliases[*a]
	if !ok {
		return packet.ProtocolError // an alias the client never set up
	}
	p.Topic = t
	return nil
}
