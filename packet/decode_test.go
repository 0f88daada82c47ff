package packet

import (
	"bytes"
	"reflect"
	"testing"
)

// TestDecodeKnownGood decodes packets written out by hand from the specs
// (and as mosquitto sends them). When canonical, encoding the expected
// packet must give back exactly these bytes.
func TestDecodeKnownGood(t *testing.T) {
	cases := []struct {
		name      string
		v         byte
		hex       string
		want      Packet
		canonical bool // Append reproduces the bytes
	}{
		{"3.1.1 CONNECT as mosquitto_sub -i mosq-client sends it", V311,
			"10 17 00 04 4d 51 54 54 04 02 00 3c 00 0b 6d 6f 73 71 2d 63 6c 69 65 6e 74",
			&Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanStart: true, KeepAlive: 60, ClientID: "mosq-client"}, true},
		{"3.1.1 CONNECT with will, user name and password", V311,
			"10 23 00 04 4d 51 54 54 04 ee 00 1e 00 02 63 31 00 02 77 74 00 03 62 79 65 00 04 75 73 65 72 00 04 70 61 73 73",
			&Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanStart: true, KeepAlive: 30, ClientID: "c1",
				Will:         &Will{QoS: 1, Retain: true, Topic: "wt", Payload: []byte("bye")},
				UsernameFlag: true, Username: "user", PasswordFlag: true, Password: []byte("pass")}, true},
		{"3.1 CONNECT (MQIsdp)", V31,
			"10 12 00 06 4d 51 49 73 64 70 03 02 00 3c 00 04 61 62 63 64",
			&Connect{ProtocolName: "MQIsdp", ProtocolLevel: 3, CleanStart: true, KeepAlive: 60, ClientID: "abcd"}, true},
		{"v5 CONNECT with properties", V5,
			"10 1e 00 04 4d 51 54 54 05 02 00 3c 0f 11 00 00 00 78 21 00 14 26 00 01 61 00 01 62 00 02 63 31",
			&Connect{ProtocolName: "MQTT", ProtocolLevel: 5, CleanStart: true, KeepAlive: 60,
				Properties: Properties{SessionExpiry: new(uint32(120)), ReceiveMaximum: new(uint16(20)),
					User: []UserProperty{{"a", "b"}}},
				ClientID: "c1"}, true},
		{"v5 CONNECT, will properties out of identifier order", 0,
			"10 1d 00 04 4d 51 54 54 05 06 00 00 00 00 01 63 07 18 00 00 00 05 01 01 00 01 74 00 02 68 69",
			&Connect{ProtocolName: "MQTT", ProtocolLevel: 5, CleanStart: true, ClientID: "c",
				Will: &Will{Properties: Properties{WillDelay: new(uint32(5)), PayloadFormat: new(byte(1))},
					Topic: "t", Payload: []byte("hi")}}, false},

		{"3.1 CONNACK return code 5", V31, "20 02 00 05", &Connack{ReasonCode: RefusedNotAuthorized}, true},
		{"3.1.1 CONNACK session present", V311, "20 02 01 00", &Connack{SessionPresent: true}, true},
		{"v5 CONNACK no properties", V5, "20 03 00 00 00", &Connack{}, true},
		{"v5 CONNACK with properties", V5, "20 09 00 00 06 24 01 25 00 2a 01",
			&Connack{Properties: Properties{MaximumQoS: new(byte(1)), RetainAvailable: new(byte(0)),
				SharedSubAvailable: new(byte(1))}}, true},

		{"PUBLISH QoS 1", V311, "32 0a 00 03 61 2f 62 00 07 68 69 21",
			&Publish{QoS: 1, Topic: "a/b", PacketID: 7, Payload: []byte("hi!")}, true},
		{"PUBLISH QoS 0 retained, empty payload", V311, "31 03 00 01 74", &Publish{Retain: true, Topic: "t"}, true},
		{"PUBLISH QoS 2 DUP", V31, "3c 06 00 01 74 ff ff 00",
			&Publish{Dup: true, QoS: 2, Topic: "t", PacketID: 0xFFFF, Payload: []byte{0}}, true},
		{"v5 PUBLISH with Message Expiry", V5, "30 0a 00 01 74 05 02 00 00 00 3c 78",
			&Publish{Topic: "t", Properties: Properties{MessageExpiry: new(uint32(60))}, Payload: []byte("x")}, true},

		{"3.1.1 PUBACK", V311, "40 02 00 07", &Puback{PacketID: 7}, true},
		{"v5 PUBACK length 2 is Success", V5, "40 02 00 07", &Puback{PacketID: 7}, true},
		{"v5 PUBACK length 3", V5, "40 03 00 07 10", &Puback{PacketID: 7, ReasonCode: NoMatchingSubscribers}, true},
		{"v5 PUBACK length 4, empty properties", V5, "40 04 00 07 00 00", &Puback{PacketID: 7}, false},
		{"v5 PUBACK with Reason String", V5, "40 0b 00 07 87 07 1f 00 04 6e 6f 70 65",
			&Puback{PacketID: 7, ReasonCode: NotAuthorized, Properties: Properties{ReasonString: "nope"}}, true},
		{"PUBREC", V311, "50 02 01 00", &Pubrec{PacketID: 256}, true},
		{"PUBREL", V311, "62 02 00 07", &Pubrel{PacketID: 7}, true},
		{"3.1 PUBREL with DUP (re-delivery)", V31, "6a 02 00 07", &Pubrel{PacketID: 7}, false},
		{"v5 PUBREL not found", V5, "62 03 00 07 92", &Pubrel{PacketID: 7, ReasonCode: PacketIDNotFound}, true},
		{"PUBCOMP", V311, "70 02 00 07", &Pubcomp{PacketID: 7}, true},

		{"3.1.1 SUBSCRIBE two filters", V311, "82 0e 00 0a 00 03 61 2f 62 01 00 03 63 2f 23 02",
			&Subscribe{PacketID: 10, Subscriptions: []Subscription{{Filter: "a/b", QoS: 1}, {Filter: "c/#", QoS: 2}}}, true},
		{"v5 SUBSCRIBE with options and Subscription Identifier", V5, "82 09 00 0a 02 0b 05 00 01 74 2d",
			&Subscribe{PacketID: 10, Properties: Properties{SubscriptionIDs: []uint32{5}},
				Subscriptions: []Subscription{{Filter: "t", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}}, true},
		{"3.1.1 SUBACK", V311, "90 04 00 0a 01 80", &Suback{PacketID: 10, ReasonCodes: []ReasonCode{GrantedQoS1, SubackFailure}}, true},
		{"v5 SUBACK", V5, "90 05 00 0a 00 02 87", &Suback{PacketID: 10, ReasonCodes: []ReasonCode{GrantedQoS2, NotAuthorized}}, true},
		{"3.1.1 UNSUBSCRIBE", V311, "a2 05 00 0b 00 01 74", &Unsubscribe{PacketID: 11, Filters: []string{"t"}}, true},
		{"3.1.1 UNSUBACK", V311, "b0 02 00 0b", &Unsuback{PacketID: 11}, true},
		{"v5 UNSUBACK", V5, "b0 04 00 0b 00 11", &Unsuback{PacketID: 11, ReasonCodes: []ReasonCode{NoSubscriptionExisted}}, true},

		{"PINGREQ", V311, "c0 00", &Pingreq{}, true},
		{"PINGRESP", V5, "d0 00", &Pingresp{}, true},
		{"3.1.1 DISCONNECT", V311, "e0 00", &Disconnect{}, true},
		{"v5 DISCONNECT length 0 is Success", V5, "e0 00", &Disconnect{}, true},
		{"v5 DISCONNECT with will", V5, "e0 01 04", &Disconnect{ReasonCode: DisconnectWithWill}, true},
		{"v5 DISCONNECT length 2, empty properties", V5, "e0 02 00 00", &Disconnect{}, false},
		{"v5 DISCONNECT with Session Expiry", V5, "e0 07 00 05 11 00 00 00 00",
			&Disconnect{Properties: Properties{SessionExpiry: new(uint32(0))}}, true},
		{"v5 AUTH length 0", V5, "f0 00", &Auth{}, true},
		{"v5 AUTH continue", V5, "f0 0e 18 0c 15 00 04 53 43 52 4d 16 00 02 01 02",
			&Auth{ReasonCode: ContinueAuthentication, Properties: Properties{AuthMethod: "SCRM", AuthData: []byte{1, 2}}}, true},

		{"non-minimal remaining length is accepted", V311, "c0 80 00", &Pingreq{}, false},
		{"v5 User Property repeats and keeps order", V5, "e0 10 00 0e 26 00 01 6b 00 01 31 26 00 01 6b 00 01 32",
			&Disconnect{Properties: Properties{User: []UserProperty{{"k", "1"}, {"k", "2"}}}}, true},
		{"v5 PUBLISH Subscription Identifier repeats", V5, "30 08 00 01 74 04 0b 01 0b 02",
			&Publish{Topic: "t", Properties: Properties{SubscriptionIDs: []uint32{1, 2}}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := unhex(t, c.hex)
			got, n, err := DecodeBytes(b, c.v, 0)
			if err != nil {
				t.Fatalf("DecodeBytes: %v", err)
			}
			if n != len(b) {
				t.Errorf("consumed %d of %d bytes", n, len(b))
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %#v\nwant %#v", got, c.want)
			}
			// Decode takes the first byte and the body.
			_, rn := ConsumeVarint(b[1:])
			if got2, err := Decode(b[0], b[1+rn:], c.v); err != nil || !reflect.DeepEqual(got2, c.want) {
				t.Errorf("Decode: %#v, %v", got2, err)
			}
			if c.canonical {
				v := c.v
				if v == 0 {
					v = V311
				}
				if out := enc(t, c.want, v); !bytes.Equal(out, b) {
					t.Errorf("Append: % x\n          want % x", out, b)
				}
			}
		})
	}
}
