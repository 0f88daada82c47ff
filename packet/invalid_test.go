package packet

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	connect4 = "00 04 4d 51 54 54 04" // "MQTT" level 4
	connect5 = "00 04 4d 51 54 54 05" // "MQTT" level 5
)

// TestDecodeInvalid checks each rule the decoder enforces: the error wraps
// the reason code the peer should be told.
// Checks [MQTT-1.5.3-1] [MQTT-1.5.3-2] [MQTT-1.5.4-1] [MQTT-1.5.4-2] [MQTT-1.5.7-1] [MQTT-2.1.3-1] [MQTT-2.2.2-1] [MQTT-2.2.2-2] [MQTT-2.3.1-1] [MQTT-3.1.2-9] [MQTT-3.1.2-11] [MQTT-3.1.2-12] [MQTT-3.1.2-13] [MQTT-3.1.2-14] [MQTT-3.1.2-15] [MQTT-3.1.2-16] [MQTT-3.1.2-17] [MQTT-3.1.2-18] [MQTT-3.1.2-19] [MQTT-3.1.2-20] [MQTT-3.1.2-21] [MQTT-3.1.2-22] [MQTT-3.1.3-3] [MQTT-3.1.3-4] [MQTT-3.1.3-10] [MQTT-3.1.3-11] [MQTT-3.1.3-12] [MQTT-3.2.2-1] [MQTT-3.2.2-8] [MQTT-3.3.1-2] [MQTT-3.3.1-4] [MQTT-3.3.2-1] [MQTT-3.3.2-13] [MQTT-3.3.2-19] [MQTT-3.4.2-1] [MQTT-3.5.2-1] [MQTT-3.6.1-1] [MQTT-3.6.2-1] [MQTT-3.7.2-1] [MQTT-3.8.1-1] [MQTT-3.8.3-1] [MQTT-3.8.3-2] [MQTT-3.8.3-3] [MQTT-3.8.3-4] [MQTT-3.8.3-5] [MQTT-3.9.3-2] [MQTT-3.10.1-1] [MQTT-3.10.3-1] [MQTT-3.10.3-2] [MQTT-3.11.3-2] [MQTT-3.14.1-1] [MQTT-3.14.2-1] [MQTT-3.15.1-1] [MQTT-3.15.2-1] [MQTT-4.7.3-2].
func TestDecodeInvalid(t *testing.T) {
	cases := []struct {
		name string
		v    byte
		h    byte
		body string // hex; framed with its remaining length
		want ReasonCode
	}{
		// Fixed header.
		{"packet type 0", V311, 0x00, "", MalformedPacket},
		{"AUTH before v5", V311, 0xF0, "", MalformedPacket},
		{"AUTH in 3.1", V31, 0xF0, "", MalformedPacket},
		{"AUTH before CONNECT", 0, 0xF0, "", MalformedPacket},
		{"PUBREL flags 0", V311, 0x60, "00 07", MalformedPacket},
		{"PUBREL with DUP in 3.1.1", V311, 0x6A, "00 07", MalformedPacket},
		{"SUBSCRIBE flags 0", V311, 0x80, "00 01 00 01 74 00", MalformedPacket},
		{"UNSUBSCRIBE flags 0", V5, 0xA0, "00 01 00 00 01 74", MalformedPacket},
		{"PUBACK flags 1", V311, 0x41, "00 07", MalformedPacket},
		{"PINGREQ flags 2", V311, 0xC2, "", MalformedPacket},
		{"CONNECT flags 1", 0, 0x11, connect4 + "02 00 3c 00 01 63", MalformedPacket},
		{"DISCONNECT flags 8", V5, 0xE8, "", MalformedPacket},

		// PUBLISH.
		{"PUBLISH QoS 3", V311, 0x36, "00 01 74 00 01", MalformedPacket},
		{"PUBLISH DUP at QoS 0", V311, 0x38, "00 01 74", MalformedPacket},
		{"PUBLISH QoS 1 packet id 0", V311, 0x32, "00 01 74 00 00", ProtocolError},
		{"PUBLISH QoS 2 packet id 0", V5, 0x34, "00 01 74 00 00 00", ProtocolError},
		{"PUBLISH topic not UTF-8", V311, 0x30, "00 02 c3 28", MalformedPacket},
		{"PUBLISH topic with U+0000", V311, 0x30, "00 03 61 00 62", MalformedPacket},
		{"PUBLISH topic with surrogate U+D800", V311, 0x30, "00 03 ed a0 80", MalformedPacket},
		{"PUBLISH topic overlong encoding", V31, 0x30, "00 02 c0 af", MalformedPacket},
		{"PUBLISH topic longer than packet", V311, 0x30, "00 05 61", MalformedPacket},
		{"PUBLISH no topic length", V311, 0x30, "00", MalformedPacket},
		{"PUBLISH truncated packet id", V311, 0x32, "00 01 74 00", MalformedPacket},
		{"v5 PUBLISH without property length", V5, 0x30, "00 01 74", MalformedPacket},
		{"v5 PUBLISH property length past end", V5, 0x30, "00 01 74 05 01", MalformedPacket},
		{"v5 PUBLISH Payload Format 2", V5, 0x30, "00 01 74 02 01 02", ProtocolError},
		{"v5 PUBLISH Subscription Identifier 0", V5, 0x30, "00 01 74 02 0b 00", ProtocolError},
		{"v5 PUBLISH Subscription Identifier of 5 bytes", V5, 0x30, "00 01 74 06 0b 80 80 80 80 01", MalformedPacket},
		{"v5 PUBLISH Topic Alias twice", V5, 0x30, "00 01 74 06 23 00 01 23 00 02", ProtocolError},
		{"v5 PUBLISH Session Expiry not allowed", V5, 0x30, "00 01 74 05 11 00 00 00 01", MalformedPacket},
		{"v5 PUBLISH property id 0", V5, 0x30, "00 01 74 02 00 00", MalformedPacket},
		{"v5 PUBLISH property id 0x80", V5, 0x30, "00 01 74 02 80 01", MalformedPacket},
		{"v5 PUBLISH truncated Message Expiry", V5, 0x30, "00 01 74 03 02 00 00", MalformedPacket},
		{"v5 PUBLISH Content Type not UTF-8", V5, 0x30, "00 01 74 05 03 00 02 c3 28", MalformedPacket},
		{"v5 PUBLISH User Property without value", V5, 0x30, "00 01 74 04 26 00 01 6b", MalformedPacket},
		{"v5 PUBLISH Correlation Data past property length", V5, 0x30, "00 01 74 03 09 00 02 61 62", MalformedPacket},

		// CONNECT.
		{"CONNECT protocol name MQTX", 0, 0x10, "00 04 4d 51 54 58 04 02 00 3c 00 01 63", ProtocolError},
		{"CONNECT protocol name not UTF-8", 0, 0x10, "00 02 c3 28 04 02 00 3c 00 01 63", MalformedPacket},
		{"CONNECT without protocol level", 0, 0x10, "00 04 4d 51 54 54", MalformedPacket},
		{"CONNECT MQTT level 3", 0, 0x10, "00 04 4d 51 54 54 03 02 00 3c 00 01 63", UnsupportedProtocolVersion},
		{"CONNECT MQTT level 6", 0, 0x10, "00 04 4d 51 54 54 06 02 00 3c 00 01 63", UnsupportedProtocolVersion},
		{"CONNECT MQIsdp level 4", 0, 0x10, "00 06 4d 51 49 73 64 70 04 02 00 3c 00 01 63", UnsupportedProtocolVersion},
		{"CONNECT bridge level 0x84", 0, 0x10, "00 04 4d 51 54 54 84 02 00 3c 00 01 63", UnsupportedProtocolVersion},
		{"CONNECT reserved flag", 0, 0x10, connect4 + "03 00 3c 00 01 63", MalformedPacket},
		{"CONNECT will QoS 3", 0, 0x10, connect4 + "1e 00 3c 00 01 63 00 01 74 00 00", MalformedPacket},
		{"CONNECT will QoS without will flag", 0, 0x10, connect4 + "0a 00 3c 00 01 63", MalformedPacket},
		{"CONNECT will retain without will flag", 0, 0x10, connect4 + "22 00 3c 00 01 63", MalformedPacket},
		{"3.1.1 CONNECT password without user name", 0, 0x10, connect4 + "42 00 3c 00 01 63 00 01 70", MalformedPacket},
		{"3.1 CONNECT password without user name", 0, 0x10, "00 06 4d 51 49 73 64 70 03 42 00 3c 00 01 63 00 01 70", MalformedPacket},
		{"3.1 CONNECT client id with U+0000", 0, 0x10, "00 06 4d 51 49 73 64 70 03 02 00 3c 00 01 00", MalformedPacket},
		{"CONNECT trailing byte", 0, 0x10, connect4 + "02 00 3c 00 01 63 00", MalformedPacket},
		{"CONNECT without client id", 0, 0x10, connect4 + "02 00 3c", MalformedPacket},
		{"CONNECT user name flag without user name", 0, 0x10, connect4 + "82 00 3c 00 01 63", MalformedPacket},
		{"CONNECT will flag without will topic", 0, 0x10, connect4 + "06 00 3c 00 01 63", MalformedPacket},
		{"CONNECT user name not UTF-8", 0, 0x10, connect4 + "82 00 3c 00 01 63 00 01 ff", MalformedPacket},
		{"v5 CONNECT Payload Format not allowed", 0, 0x10, connect5 + "02 00 3c 02 01 01 00 01 63", MalformedPacket},
		{"v5 CONNECT Session Expiry twice", 0, 0x10, connect5 + "02 00 3c 0a 11 00 00 00 01 11 00 00 00 02 00 01 63", ProtocolError},
		{"v5 CONNECT Receive Maximum 0", 0, 0x10, connect5 + "02 00 3c 03 21 00 00 00 01 63", ProtocolError},
		{"v5 CONNECT Maximum Packet Size 0", 0, 0x10, connect5 + "02 00 3c 05 27 00 00 00 00 00 01 63", ProtocolError},
		{"v5 CONNECT Request Problem Information 2", 0, 0x10, connect5 + "02 00 3c 02 17 02 00 01 63", ProtocolError},
		{"v5 CONNECT Request Response Information 2", 0, 0x10, connect5 + "02 00 3c 02 19 02 00 01 63", ProtocolError},
		{"v5 CONNECT will Session Expiry not allowed", 0, 0x10, connect5 + "06 00 3c 00 00 01 63 05 11 00 00 00 01 00 01 74 00 00", MalformedPacket},
		{"v5 CONNECT will Will Delay twice", 0, 0x10, connect5 + "06 00 3c 00 00 01 63 0a 18 00 00 00 01 18 00 00 00 01 00 01 74 00 00", ProtocolError},
		{"v5 CONNECT without property length", 0, 0x10, connect5 + "02 00 3c", MalformedPacket},

		// CONNACK.
		{"3.1.1 CONNACK length 3", V311, 0x20, "00 00 00", MalformedPacket},
		{"3.1.1 CONNACK reserved flags", V311, 0x20, "02 00", MalformedPacket},
		{"3.1.1 CONNACK return code 6", V311, 0x20, "00 06", ProtocolError},
		{"v5 CONNACK reason code 0x01", V5, 0x20, "00 01 00", ProtocolError},
		{"v5 CONNACK without property length", V5, 0x20, "00 00", MalformedPacket},
		{"v5 CONNACK Maximum QoS 2", V5, 0x20, "00 00 02 24 02", ProtocolError},
		{"v5 CONNACK Retain Available 2", V5, 0x20, "00 00 02 25 02", ProtocolError},
		{"v5 CONNACK Wildcard Subscription Available 2", V5, 0x20, "00 00 02 28 02", ProtocolError},
		{"v5 CONNACK Subscription Identifier Available 2", V5, 0x20, "00 00 02 29 02", ProtocolError},
		{"v5 CONNACK Shared Subscription Available 2", V5, 0x20, "00 00 02 2a 02", ProtocolError},
		{"v5 CONNACK Receive Maximum 0", V5, 0x20, "00 00 03 21 00 00", ProtocolError},
		{"v5 CONNACK Maximum Packet Size 0", V5, 0x20, "00 00 05 27 00 00 00 00", ProtocolError},
		{"v5 CONNACK Topic Alias not allowed", V5, 0x20, "00 00 03 23 00 01", MalformedPacket},

		// Acks.
		{"3.1.1 PUBACK length 3", V311, 0x40, "00 07 00", MalformedPacket},
		{"3.1.1 PUBACK length 1", V311, 0x40, "00", MalformedPacket},
		{"v5 PUBACK length 1", V5, 0x40, "00", MalformedPacket},
		{"3.1.1 PUBREC length 0", V311, 0x50, "", MalformedPacket},
		{"v5 PUBACK reason 0x92", V5, 0x40, "00 07 92", ProtocolError},
		{"v5 PUBREL reason 0x10", V5, 0x62, "00 07 10", ProtocolError},
		{"v5 PUBCOMP reason 0x80", V5, 0x70, "00 07 80", ProtocolError},
		{"v5 PUBACK Session Expiry not allowed", V5, 0x40, "00 07 00 05 11 00 00 00 01", MalformedPacket},
		{"v5 PUBACK Reason String twice", V5, 0x40, "00 07 00 08 1f 00 01 61 1f 00 01 62", ProtocolError},
		{"v5 PUBACK property length past end", V5, 0x40, "00 07 00 09 1f 00 01 61", MalformedPacket},
		{"v5 PUBACK trailing byte", V5, 0x40, "00 07 00 00 ff", MalformedPacket},

		// SUBSCRIBE / SUBACK.
		{"SUBSCRIBE without filters", V311, 0x82, "00 0a", ProtocolError},
		{"v5 SUBSCRIBE without filters", V5, 0x82, "00 0a 00", ProtocolError},
		{"SUBSCRIBE packet id 0", V311, 0x82, "00 00 00 01 74 00", ProtocolError},
		{"3.1.1 SUBSCRIBE option bit 2", V311, 0x82, "00 01 00 01 74 04", MalformedPacket},
		{"3.1 SUBSCRIBE option bit 7", V31, 0x82, "00 01 00 01 74 80", MalformedPacket},
		{"3.1.1 SUBSCRIBE QoS 3", V311, 0x82, "00 01 00 01 74 03", MalformedPacket},
		{"v5 SUBSCRIBE reserved bit 6", V5, 0x82, "00 01 00 00 01 74 40", MalformedPacket},
		{"v5 SUBSCRIBE reserved bit 7", V5, 0x82, "00 01 00 00 01 74 80", MalformedPacket},
		{"v5 SUBSCRIBE QoS 3", V5, 0x82, "00 01 00 00 01 74 03", ProtocolError},
		{"v5 SUBSCRIBE retain handling 3", V5, 0x82, "00 01 00 00 01 74 30", ProtocolError},
		{"SUBSCRIBE missing options byte", V311, 0x82, "00 01 00 01 74", MalformedPacket},
		{"SUBSCRIBE filter not UTF-8", V311, 0x82, "00 01 00 01 ff 00", MalformedPacket},
		{"v5 SUBSCRIBE Subscription Identifier twice", V5, 0x82, "00 01 04 0b 01 0b 02 00 01 74 00", ProtocolError},
		{"v5 SUBSCRIBE Subscription Identifier 0", V5, 0x82, "00 01 02 0b 00 00 01 74 00", ProtocolError},
		{"v5 SUBSCRIBE Reason String not allowed", V5, 0x82, "00 01 04 1f 00 01 61 00 01 74 00", MalformedPacket},
		{"SUBACK without codes", V311, 0x90, "00 0a", ProtocolError},
		{"3.1.1 SUBACK code 3", V311, 0x90, "00 0a 03", ProtocolError},
		{"v5 SUBACK code 0x11", V5, 0x90, "00 0a 00 11", ProtocolError},
		{"v5 SUBACK without codes", V5, 0x90, "00 0a 00", ProtocolError},

		// UNSUBSCRIBE / UNSUBACK.
		{"UNSUBSCRIBE without filters", V311, 0xA2, "00 0b", ProtocolError},
		{"UNSUBSCRIBE packet id 0", V311, 0xA2, "00 00 00 01 74", ProtocolError},
		{"UNSUBSCRIBE filter with U+0000", V311, 0xA2, "00 01 00 01 00", MalformedPacket},
		{"UNSUBSCRIBE truncated filter", V311, 0xA2, "00 01 00 02 74", MalformedPacket},
		{"v5 UNSUBSCRIBE Reason String not allowed", V5, 0xA2, "00 01 04 1f 00 01 61 00 01 74", MalformedPacket},
		{"3.1.1 UNSUBACK length 3", V311, 0xB0, "00 0b 00", MalformedPacket},
		{"v5 UNSUBACK without codes", V5, 0xB0, "00 0b 00", ProtocolError},
		{"v5 UNSUBACK code 0x01", V5, 0xB0, "00 0b 00 01", ProtocolError},

		// PINGREQ, PINGRESP, DISCONNECT, AUTH.
		{"PINGREQ length 1", V311, 0xC0, "00", MalformedPacket},
		{"PINGRESP length 1", V5, 0xD0, "00", MalformedPacket},
		{"3.1.1 DISCONNECT length 1", V311, 0xE0, "00", MalformedPacket},
		{"v5 DISCONNECT reason 0x05", V5, 0xE0, "05", ProtocolError},
		{"v5 DISCONNECT Receive Maximum not allowed", V5, 0xE0, "00 03 21 00 01", MalformedPacket},
		{"v5 DISCONNECT trailing byte", V5, 0xE0, "00 00 00", MalformedPacket},
		{"v5 AUTH reason 0x80", V5, 0xF0, "80", ProtocolError},
		{"v5 AUTH Session Expiry not allowed", V5, 0xF0, "18 05 11 00 00 00 01", MalformedPacket},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := frame(c.h, unhex(t, c.body))
			p, _, err := DecodeBytes(b, c.v, 0)
			if !errors.Is(err, c.want) {
				t.Fatalf("DecodeBytes(% x) = %#v, %v; want error wrapping %v", b, p, err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "packet: ") || !strings.HasSuffix(err.Error(), ": "+c.want.Error()) {
				t.Errorf("error message %q", err)
			}
			if p != nil && c.want != UnsupportedProtocolVersion {
				t.Errorf("got a packet with the error: %#v", p)
			}
			if _, err := Decode(c.h, unhex(t, c.body), c.v); !errors.Is(err, c.want) {
				t.Errorf("Decode: err = %v, want %v", err, c.want)
			}
		})
	}
}

// TestUnsupportedProtocolVersion checks that the broker gets the partly
// decoded CONNECT with the error, to answer CONNACK 0x01 [MQTT-3.1.2-2].
func TestUnsupportedProtocolVersion(t *testing.T) {
	b := frame(0x10, unhex(t, "00 04 4d 51 54 54 06 02 00 3c 00 01 63"))
	p, n, err := DecodeBytes(b, 0, 0)
	if !errors.Is(err, UnsupportedProtocolVersion) {
		t.Fatalf("err = %v", err)
	}
	if want := (&Connect{ProtocolName: "MQTT", ProtocolLevel: 6}); !reflect.DeepEqual(p, want) {
		t.Errorf("packet = %#v", p)
	}
	if n != len(b) {
		t.Errorf("consumed %d of %d", n, len(b))
	}
}

func TestDecodeFiveByteVarint(t *testing.T) {
	for _, v := range versions {
		_, _, err := DecodeBytes(unhex(t, "30 ff ff ff ff 01"), v, 0)
		if !errors.Is(err, MalformedPacket) {
			t.Errorf("v%d: err = %v", v, err)
		}
	}
}

// TestPropertiesAllowed checks every property identifier against every
// packet type: the ones MQTT 5.0 table 2-4 lists decode and encode; any
// other is a malformed packet on decode and refused by Append.
func TestPropertiesAllowed(t *testing.T) {
	everything := propSet{allowed: ^uint64(0), repeat: ^uint64(0)}
	propBytes := func(id byte) []byte {
		p := propsWith(id)
		n, err := p.size(&everything)
		if err != nil {
			t.Fatal(err)
		}
		return p.append(nil, n)
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	h := func(s string) []byte { return unhex(t, s) }
	kinds := []struct {
		name    string
		allowed []byte
		wire    func(props []byte) []byte                  // whole packet
		packet  func(p Properties) Packet                  // for Append
		check   func(got Packet, p Properties) *Properties // where the decoded properties are
	}{
		{"CONNECT", specConnect,
			func(pb []byte) []byte { return frame(0x10, cat(h(connect5+"02 00 3c"), pb, h("00 01 63"))) },
			func(p Properties) Packet { return &Connect{ProtocolLevel: 5, ClientID: "c", Properties: p} },
			func(g Packet, _ Properties) *Properties { return &g.(*Connect).Properties }},
		{"CONNECT will", specWill,
			func(pb []byte) []byte {
				return frame(0x10, cat(h(connect5+"06 00 3c 00 00 01 63"), pb, h("00 01 74 00 00")))
			},
			func(p Properties) Packet { return &Connect{ProtocolLevel: 5, Will: &Will{Topic: "t", Properties: p}} },
			func(g Packet, _ Properties) *Properties { return &g.(*Connect).Will.Properties }},
		{"CONNACK", specConnack,
			func(pb []byte) []byte { return frame(0x20, cat(h("00 00"), pb)) },
			func(p Properties) Packet { return &Connack{Properties: p} },
			func(g Packet, _ Properties) *Properties { return &g.(*Connack).Properties }},
		{"PUBLISH", specPublish,
			func(pb []byte) []byte { return frame(0x30, cat(h("00 01 74"), pb)) },
			func(p Properties) Packet { return &Publish{Topic: "t", Properties: p} },
			func(g Packet, _ Properties) *Properties { return &g.(*Publish).Properties }},
		{"PUBACK", specAck,
			func(pb []byte) []byte { return frame(0x40, cat(h("00 01 00"), pb)) },
			func(p Properties) Packet { return &Puback{PacketID: 1, Properties: p} },
			func(g Packet, _ Properties) *Properties { return &g.(*Puback).Properties }},
		{"PUBREC", specAck,
			func(pb []byte) []byte { return frame(0x50, cat(h("00 01 00"), pb)) },
			func(p Properties) Packet { return &Pubrec{PacketID: 1, Properties: p} },
			func(g Packet, _ Properties) *Properties { return &g.(*Pubrec).Properties }},
		{"PUBREL", specAck,
			func(pb []byte) []byte { return frame(0x62, cat(h("00 01 00"), pb)) },
			func(p Properties) Packet { return &Pubrel{PacketID: 1, Properties: p} },
			func(g Packet, _ Properties) *Properties { return &g.(*Pubrel).Properties }},
		{"PUBCOMP", specAck,
			func(pb []byte) []byte { return frame(0x70, cat(h("00 01 00"), pb)) },
			func(p Properties) Packet { return &Pubcomp{PacketID: 1, Properties: p} },
			func(g Packet, _ Properties) *Properties { return &g.(*Pubcomp).Properties }},
		{"SUBSCRIBE", specSubscribe,
			func(pb []byte) []byte { return frame(0x82, cat(h("00 01"), pb, h("00 01 74 00"))) },
			func(p Properties) Packet {
				return &Subscribe{PacketID: 1, Properties: p, Subscriptions: []Subscription{{Filter: "t"}}}
			},
			func(g Packet, _ Properties) *Properties { return &g.(*Subscribe).Properties }},
		{"SUBACK", specAck,
			func(pb []byte) []byte { return frame(0x90, cat(h("00 01"), pb, h("00"))) },
			func(p Properties) Packet { return &Suback{PacketID: 1, Properties: p, ReasonCodes: []ReasonCode{0}} },
			func(g Packet, _ Properties) *Properties { return &g.(*Suback).Properties }},
		{"UNSUBSCRIBE", specUnsub,
			func(pb []byte) []byte { return frame(0xA2, cat(h("00 01"), pb, h("00 01 74"))) },
			func(p Properties) Packet { return &Unsubscribe{PacketID: 1, Properties: p, Filters: []string{"t"}} },
			func(g Packet, _ Properties) *Properties { return &g.(*Unsubscribe).Properties }},
		{"UNSUBACK", specAck,
			func(pb []byte) []byte { return frame(0xB0, cat(h("00 01"), pb, h("00"))) },
			func(p Properties) Packet { return &Unsuback{PacketID: 1, Properties: p, ReasonCodes: []ReasonCode{0}} },
			func(g Packet, _ Properties) *Properties { return &g.(*Unsuback).Properties }},
		{"DISCONNECT", specDisconnect,
			func(pb []byte) []byte { return frame(0xE0, cat(h("00"), pb)) },
			func(p Properties) Packet { return &Disconnect{Properties: p} },
			func(g Packet, _ Properties) *Properties { return &g.(*Disconnect).Properties }},
		{"AUTH", specAuth,
			func(pb []byte) []byte { return frame(0xF0, cat(h("00"), pb)) },
			func(p Properties) Packet { return &Auth{Properties: p} },
			func(g Packet, _ Properties) *Properties { return &g.(*Auth).Properties }},
	}
	for _, k := range kinds {
		for _, id := range allPropIDs {
			allowed := false
			for _, a := range k.allowed {
				allowed = allowed || a == id
			}
			b := k.wire(propBytes(id))
			got, _, err := DecodeBytes(b, V5, 0)
			_, encErr := k.packet(propsWith(id)).Append(nil, V5)
			if allowed {
				if err != nil {
					t.Errorf("%s with %s: %v", k.name, propNames[id], err)
				} else if want := propsWith(id); !reflect.DeepEqual(*k.check(got, want), want) {
					t.Errorf("%s with %s: decoded %#v", k.name, propNames[id], *k.check(got, want))
				}
				if encErr != nil {
					t.Errorf("%s with %s: Append: %v", k.name, propNames[id], encErr)
				}
			} else {
				if !errors.Is(err, MalformedPacket) {
					t.Errorf("%s with %s: decode err = %v, want malformed", k.name, propNames[id], err)
				}
				if !errors.Is(encErr, MalformedPacket) {
					t.Errorf("%s with %s: Append err = %v, want malformed", k.name, propNames[id], encErr)
				}
			}
		}
	}
}
