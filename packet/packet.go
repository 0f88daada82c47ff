package packet

// Type is the MQTT control packet type, the high nibble of the first byte.
type Type byte

const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15
)

var typeNames = [...]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
	"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "INVALID"
}

// Protocol levels.
const (
	V31  byte = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 byte = 4 // MQTT 3.1.1, protocol name "MQTT"
	V5   byte = 5 // MQTT 5.0, protocol name "MQTT"
)

// Packet is any MQTT control packet.
type Packet interface {
	Type() Type
	// Append appends the packet's wire form for protocol level version to
	// dst. Fields the version cannot carry (properties, reason codes before
	// v5) are left out.
	Append(dst []byte, version byte) ([]byte, error)
}

// Connect is the first packet a client sends.
type Connect struct {
	ProtocolName  string // "MQTT", or "MQIsdp" for 3.1
	ProtocolLevel byte   // V31, V311 or V5
	CleanStart    bool   // Clean Session before v5
	KeepAlive     uint16 // seconds
	Properties    Properties
	ClientID      string
	Will          *Will // nil when the Will Flag is 0
	UsernameFlag  bool
	Username      string
	PasswordFlag  bool
	Password      []byte
}

// Will is the message a CONNECT asks the server to publish when the
// connection ends abnormally.
type Will struct {
	QoS        byte
	Retain     bool
	Properties Properties // v5 will properties
	Topic      string
	Payload    []byte
}

// Connack answers CONNECT. Before v5 ReasonCode carries the 3.1.1 return
// code (0 accepted .. 5 not authorized).
type Connack struct {
	SessionPresent bool
	ReasonCode     ReasonCode
	Properties     Properties
}

// Publish carries an application message.
type Publish struct {
	Dup        bool
	QoS        byte
	Retain     bool
	Topic      string
	PacketID   uint16 // only for QoS 1 and 2
	Properties Properties
	Payload    []byte
}

// Puback answers a QoS 1 PUBLISH.
type Puback struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Properties Properties
}

// Pubrec is the first answer to a QoS 2 PUBLISH.
type Pubrec struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Properties Properties
}

// Pubrel answers PUBREC.
type Pubrel struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Properties Properties
}

// Pubcomp answers PUBREL and ends a QoS 2 flow.
type Pubcomp struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Properties Properties
}

// Subscription is one topic filter of a SUBSCRIBE with its options.
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool // v5
	RetainAsPublished bool // v5
	RetainHandling    byte // v5: 0 send on subscribe, 1 only if new, 2 never
}

// Subscribe asks for one or more subscriptions.
type Subscribe struct {
	PacketID      uint16
	Properties    Properties
	Subscriptions []Subscription
}

// Suback answers SUBSCRIBE with one code per filter: the granted QoS or a
// failure (0x80 and above).
type Suback struct {
	PacketID    uint16
	Properties  Properties
	ReasonCodes []ReasonCode
}

// Unsubscribe removes subscriptions.
type Unsubscribe struct {
	PacketID   uint16
	Properties Properties
	Filters    []string
}

// Unsuback answers UNSUBSCRIBE. ReasonCodes exist only in v5.
type Unsuback struct {
	PacketID    uint16
	Properties  Properties
	ReasonCodes []ReasonCode
}

// Pingreq is the client's keep-alive probe.
type Pingreq struct{}

// Pingresp answers PINGREQ.
type Pingresp struct{}

// Disconnect ends a connection cleanly. ReasonCode and Properties are v5 only.
type Disconnect struct {
	ReasonCode ReasonCode
	Properties Properties
}

// Auth carries a v5 enhanced authentication exchange.
type Auth struct {
	ReasonCode ReasonCode
	Properties Properties
}

func (*Connect) Type() Type     { return CONNECT }
func (*Connack) Type() Type     { return CONNACK }
func (*Publish) Type() Type     { return PUBLISH }
func (*Puback) Type() Type      { return PUBACK }
func (*Pubrec) Type() Type      { return PUBREC }
func (*Pubrel) Type() Type      { return PUBREL }
func (*Pubcomp) Type() Type     { return PUBCOMP }
func (*Subscribe) Type() Type   { return SUBSCRIBE }
func (*Suback) Type() Type      { return SUBACK }
func (*Unsubscribe) Type() Type { return UNSUBSCRIBE }
func (*Unsuback) Type() Type    { return UNSUBACK }
func (*Pingreq) Type() Type     { return PINGREQ }
func (*Pingresp) Type() Type    { return PINGRESP }
func (*Disconnect) Type() Type  { return DISCONNECT }
func (*Auth) Type() Type        { return AUTH }
