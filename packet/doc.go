// Package packet is the MQTT wire codec for protocol levels 3 (3.1),
// 4 (3.1.1) and 5 (5.0): one Go type per control packet, v5 properties,
// variable byte integers and reason codes.
//
// Decoding never trusts a length field: the remaining length is checked
// against the configured maximum packet size before any payload is read,
// and every inner length is checked against what is left of the packet.
package packet
