// Package packet is the MQTT wire codec for protocol levels 3 (3.1),
// 4 (3.1.1) and 5 (5.0): one Go type per control packet, v5 properties,
// variable byte integers and reason codes.
//
// Decoding never trusts a length field: the remaining length is checked
// against the configured maximum packet size before any payload is read,
// and every inner length is checked against what is left of the packet.
//
// Decode errors wrap the reason code to tell the peer (MalformedPacket,
// ProtocolError, PacketTooLarge, UnsupportedProtocolVersion): test them
// with errors.Is. Rules that need session or broker state (topic syntax,
// Topic Alias ranges, No Local on shared subscriptions, the direction a
// packet travels) are left to the broker.
//
// A reader of many packets passes a Scratch to ReadPacketScratch: PUBLISH
// and the acknowledgements are then decoded into it, reused from one read
// to the next, and a PUBLISH costs only the body its payload aliases (and
// its topic, when it is not the same as the last one).
//
// Encoding appends to a caller's buffer and allocates only to grow it.
// Append leaves out what the version cannot carry (properties and reason
// codes before v5) and refuses, with an error, what would not fit the wire
// or would make the peer see a malformed packet.
package packet
