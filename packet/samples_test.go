package packet

import (
	"encoding/hex"
	"strings"
	"testing"
)

var versions = []byte{V31, V311, V5}

// propsWith returns properties with a sample value for each listed
// identifier, so a test can ask for exactly the set the spec allows.
func propsWith(ids ...byte) Properties {
	var p Properties
	for _, id := range ids {
		switch id {
		case 0x01:
			p.PayloadFormat = new(byte(1))
		case 0x02:
			p.MessageExpiry = new(uint32(3600))
		case 0x03:
			p.ContentType = "application/json"
		case 0x08:
			p.ResponseTopic = "reply/to"
		case 0x09:
			p.CorrelationData = []byte{1, 2, 3}
		case 0x0B:
			p.SubscriptionIDs = []uint32{42}
		case 0x11:
			p.SessionExpiry = new(uint32(0xFFFFFFFF))
		case 0x12:
			p.AssignedClientID = "auto-1"
		case 0x13:
			p.ServerKeepAlive = new(uint16(30))
		case 0x15:
			p.AuthMethod = "SCRAM-SHA-1"
		case 0x16:
			p.AuthData = []byte("client-first")
		case 0x17:
			p.RequestProblemInfo = new(byte(0))
		case 0x18:
			p.WillDelay = new(uint32(10))
		case 0x19:
			p.RequestResponseInfo = new(byte(1))
		case 0x1A:
			p.ResponseInfo = "resp/base"
		case 0x1C:
			p.ServerReference = "other:1883"
		case 0x1F:
			p.ReasonString = "because ünïcode"
		case 0x21:
			p.ReceiveMaximum = new(uint16(100))
		case 0x22:
			p.TopicAliasMaximum = new(uint16(10))
		case 0x23:
			p.TopicAlias = new(uint16(5))
		case 0x24:
			p.MaximumQoS = new(byte(1))
		case 0x25:
			p.RetainAvailable = new(byte(0))
		case 0x26:
			p.User = []UserProperty{{"k1", "v1"}, {"k1", "v2"}, {"", ""}}
		case 0x27:
			p.MaximumPacketSize = new(uint32(1 << 20))
		case 0x28:
			p.WildcardSubAvailable = new(byte(1))
		case 0x29:
			p.SubIDAvailable = new(byte(0))
		case 0x2A:
			p.SharedSubAvailable = new(byte(1))
		default:
			panic("propsWith: unknown property")
		}
	}
	return p
}

// allPropIDs are every property identifier MQTT 5.0 defines.
var allPropIDs = []byte{0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x18, 0x19,
	0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A}

// The properties each packet may carry, transcribed from MQTT 5.0 table 2-4
// (independently of the codec's own table, which these tests check).
var (
	specConnect    = []byte{0x11, 0x15, 0x16, 0x17, 0x19, 0x21, 0x22, 0x26, 0x27}
	specWill       = []byte{0x01, 0x02, 0x03, 0x08, 0x09, 0x18, 0x26}
	specConnack    = []byte{0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A}
	specPublish    = []byte{0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26}
	specAck        = []byte{0x1F, 0x26} // PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK
	specSubscribe  = []byte{0x0B, 0x26}
	specUnsub      = []byte{0x26}
	specDisconnect = []byte{0x11, 0x1C, 0x1F, 0x26}
	specAuth       = []byte{0x15, 0x16, 0x1F, 0x26}
)

type sample struct {
	name string
	p    Packet
}

// samples returns valid packets of every type that exists in version v,
// using only what v can carry, so that encoding and decoding round-trip
// exactly. For v5 every allowed property is populated.
func samples(v byte) []sample {
	v5 := v == V5
	name, level := "MQTT", v
	if v == V31 {
		name = "MQIsdp"
	}
	props := func(ids []byte) Properties {
		if !v5 {
			return Properties{}
		}
		return propsWith(ids...)
	}
	pubProps := props(specPublish)
	if v5 {
		pubProps.SubscriptionIDs = []uint32{1, 127, 128, 16384, MaxVarint}
	}
	var s []sample
	add := func(n string, p Packet) { s = append(s, sample{n, p}) }

	add("connect minimal", &Connect{ProtocolName: name, ProtocolLevel: level, CleanStart: true, ClientID: "c"})
	add("connect empty client id", &Connect{ProtocolName: name, ProtocolLevel: level, KeepAlive: 0xFFFF})
	add("connect full", &Connect{
		ProtocolName: name, ProtocolLevel: level, CleanStart: true, KeepAlive: 60,
		Properties: props(specConnect), ClientID: "client-ü",
		Will:         &Will{QoS: 2, Retain: true, Properties: props(specWill), Topic: "will/topic", Payload: []byte("gone")},
		UsernameFlag: true, Username: "user", PasswordFlag: true, Password: []byte{0, 0xFF, 'p'},
	})
	add("connect will qos1 empty payload, empty password", &Connect{
		ProtocolName: name, ProtocolLevel: level, ClientID: "c",
		Will:         &Will{QoS: 1, Properties: props(nil), Topic: "w"},
		UsernameFlag: true, PasswordFlag: true,
	})
	if v5 {
		add("connect v5 password without user name", &Connect{ProtocolName: name, ProtocolLevel: level,
			ClientID: "c", PasswordFlag: true, Password: []byte("token")})
	}

	add("connack accepted", &Connack{SessionPresent: v != V31, Properties: props(specConnack)})
	if v5 {
		add("connack refused", &Connack{ReasonCode: NotAuthorized, Properties: propsWith(0x1F)})
	} else {
		add("connack refused", &Connack{ReasonCode: RefusedNotAuthorized})
	}

	add("publish qos0 empty", &Publish{Topic: "a"})
	add("publish qos0 retain", &Publish{Retain: true, Topic: "sensors/temp", Payload: []byte("21.5")})
	add("publish qos1 dup", &Publish{Dup: true, QoS: 1, Topic: "a/b", PacketID: 1, Properties: pubProps, Payload: []byte{0, 1, 2}})
	add("publish qos2", &Publish{QoS: 2, Topic: "a/ü/c", PacketID: 0xFFFF, Payload: make([]byte, 300)})
	if v5 {
		add("publish v5 alias, empty topic", &Publish{QoS: 1, PacketID: 7, Properties: Properties{TopicAlias: new(uint16(3))}})
	}

	acks := func(id uint16, code ReasonCode, p Properties) []Packet {
		return []Packet{&Puback{id, code, p}, &Pubrec{id, code, p}, &Pubrel{id, code, p}, &Pubcomp{id, code, p}}
	}
	for _, p := range acks(1, 0, Properties{}) {
		add(p.Type().String(), p)
	}
	if v5 {
		for _, p := range acks(0xFFFF, Success, propsWith(specAck...)) {
			add(p.Type().String()+" success with properties", p)
		}
		for _, p := range acks(2, PacketIDNotFound, Properties{}) {
			if p.Type() == PUBACK || p.Type() == PUBREC {
				p = acks(2, NoMatchingSubscribers, Properties{})[p.Type()-PUBACK]
			}
			add(p.Type().String()+" code only", p)
		}
		add("pubrec failure with properties", &Pubrec{3, QuotaExceeded, propsWith(specAck...)})
	}

	subs := []Subscription{{Filter: "a/+", QoS: 0}, {Filter: "#", QoS: 1}, {Filter: "ü/x", QoS: 2}}
	if v5 {
		subs = append(subs,
			Subscription{Filter: "$share/g/t", QoS: 1, RetainAsPublished: true, RetainHandling: 2},
			Subscription{Filter: "n/l", QoS: 2, NoLocal: true, RetainHandling: 1})
	}
	add("subscribe", &Subscribe{PacketID: 10, Properties: props(specSubscribe), Subscriptions: subs})
	add("subscribe one", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "t"}}})
	codes := []ReasonCode{0, 1, 2, 0x80}
	if v5 {
		codes = append(codes, NotAuthorized, WildcardSubsNotSupported)
	}
	add("suback", &Suback{PacketID: 10, Properties: props(specAck), ReasonCodes: codes})
	add("unsubscribe", &Unsubscribe{PacketID: 11, Properties: props(specUnsub), Filters: []string{"a/+", "#", ""}})
	if v5 {
		add("unsuback", &Unsuback{PacketID: 11, Properties: props(specAck), ReasonCodes: []ReasonCode{Success, NoSubscriptionExisted, NotAuthorized}})
	} else {
		add("unsuback", &Unsuback{PacketID: 11})
	}
	add("pingreq", &Pingreq{})
	add("pingresp", &Pingresp{})
	add("disconnect", &Disconnect{})
	if v5 {
		add("disconnect code only", &Disconnect{ReasonCode: DisconnectWithWill})
		add("disconnect success with properties", &Disconnect{Properties: propsWith(specDisconnect...)})
		add("disconnect failure with properties", &Disconnect{ReasonCode: ServerMoved, Properties: propsWith(specDisconnect...)})
		add("auth", &Auth{})
		add("auth continue", &Auth{ReasonCode: ContinueAuthentication, Properties: propsWith(specAuth...)})
		add("auth code only", &Auth{ReasonCode: ReAuthenticate})
	}
	return s
}

// unhex decodes a hex string, ignoring spaces, for hand-written packets.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// frame wraps a body in a fixed header with its remaining length.
func frame(h byte, body []byte) []byte {
	return append(AppendVarint([]byte{h}, uint32(len(body))), body...)
}

// enc encodes one packet, failing the test on error.
func enc(t testing.TB, p Packet, v byte) []byte {
	t.Helper()
	b, err := p.Append(nil, v)
	if err != nil {
		t.Fatalf("Append(%T, v%d): %v", p, v, err)
	}
	return b
}
