package packet

import "math/bits"

// Property identifiers (MQTT 5.0 section 2.2.2.2, table 2-4).
const (
	propPayloadFormat        = 0x01
	propMessageExpiry        = 0x02
	propContentType          = 0x03
	propResponseTopic        = 0x08
	propCorrelationData      = 0x09
	propSubscriptionID       = 0x0B
	propSessionExpiry        = 0x11
	propAssignedClientID     = 0x12
	propServerKeepAlive      = 0x13
	propAuthMethod           = 0x15
	propAuthData             = 0x16
	propRequestProblemInfo   = 0x17
	propWillDelay            = 0x18
	propRequestResponseInfo  = 0x19
	propResponseInfo         = 0x1A
	propServerReference      = 0x1C
	propReasonString         = 0x1F
	propReceiveMaximum       = 0x21
	propTopicAliasMaximum    = 0x22
	propTopicAlias           = 0x23
	propMaximumQoS           = 0x24
	propRetainAvailable      = 0x25
	propUser                 = 0x26
	propMaximumPacketSize    = 0x27
	propWildcardSubAvailable = 0x28
	propSubIDAvailable       = 0x29
	propSharedSubAvailable   = 0x2A
)

var propNames = [64]string{
	propPayloadFormat:        "Payload Format Indicator",
	propMessageExpiry:        "Message Expiry Interval",
	propContentType:          "Content Type",
	propResponseTopic:        "Response Topic",
	propCorrelationData:      "Correlation Data",
	propSubscriptionID:       "Subscription Identifier",
	propSessionExpiry:        "Session Expiry Interval",
	propAssignedClientID:     "Assigned Client Identifier",
	propServerKeepAlive:      "Server Keep Alive",
	propAuthMethod:           "Authentication Method",
	propAuthData:             "Authentication Data",
	propRequestProblemInfo:   "Request Problem Information",
	propWillDelay:            "Will Delay Interval",
	propRequestResponseInfo:  "Request Response Information",
	propResponseInfo:         "Response Information",
	propServerReference:      "Server Reference",
	propReasonString:         "Reason String",
	propReceiveMaximum:       "Receive Maximum",
	propTopicAliasMaximum:    "Topic Alias Maximum",
	propTopicAlias:           "Topic Alias",
	propMaximumQoS:           "Maximum QoS",
	propRetainAvailable:      "Retain Available",
	propUser:                 "User Property",
	propMaximumPacketSize:    "Maximum Packet Size",
	propWildcardSubAvailable: "Wildcard Subscription Available",
	propSubIDAvailable:       "Subscription Identifier Available",
	propSharedSubAvailable:   "Shared Subscription Available",
}

// propSet is the set of properties one packet type (or the CONNECT will)
// may carry, from MQTT 5.0 table 2-4, and which of them may repeat.
type propSet struct {
	t       Type
	name    string // "properties" or "will properties", for messages
	allowed uint64 // bit id set: the property is valid here
	repeat  uint64 // bit id set: it may appear more than once
}

// User Property may repeat everywhere; Subscription Identifier only in PUBLISH.
const repeatUser = 1 << propUser

var (
	connectProps = propSet{CONNECT, "properties", 1<<propSessionExpiry | 1<<propAuthMethod | 1<<propAuthData |
		1<<propRequestProblemInfo | 1<<propRequestResponseInfo | 1<<propReceiveMaximum |
		1<<propTopicAliasMaximum | 1<<propUser | 1<<propMaximumPacketSize, repeatUser}
	willProps = propSet{CONNECT, "will properties", 1<<propPayloadFormat | 1<<propMessageExpiry |
		1<<propContentType | 1<<propResponseTopic | 1<<propCorrelationData | 1<<propWillDelay | 1<<propUser, repeatUser}
	connackProps = propSet{CONNACK, "properties", 1<<propSessionExpiry | 1<<propAssignedClientID |
		1<<propServerKeepAlive | 1<<propAuthMethod | 1<<propAuthData | 1<<propResponseInfo |
		1<<propServerReference | 1<<propReasonString | 1<<propReceiveMaximum | 1<<propTopicAliasMaximum |
		1<<propMaximumQoS | 1<<propRetainAvailable | 1<<propUser | 1<<propMaximumPacketSize |
		1<<propWildcardSubAvailable | 1<<propSubIDAvailable | 1<<propSharedSubAvailable, repeatUser}
	publishProps = propSet{PUBLISH, "properties", 1<<propPayloadFormat | 1<<propMessageExpiry |
		1<<propContentType | 1<<propResponseTopic | 1<<propCorrelationData | 1<<propSubscriptionID |
		1<<propTopicAlias | 1<<propUser, repeatUser | 1<<propSubscriptionID}
	pubackProps      = ackPropSet(PUBACK)
	pubrecProps      = ackPropSet(PUBREC)
	pubrelProps      = ackPropSet(PUBREL)
	pubcompProps     = ackPropSet(PUBCOMP)
	subackProps      = ackPropSet(SUBACK)
	unsubackProps    = ackPropSet(UNSUBACK)
	subscribeProps   = propSet{SUBSCRIBE, "properties", 1<<propSubscriptionID | 1<<propUser, repeatUser}
	unsubscribeProps = propSet{UNSUBSCRIBE, "properties", 1 << propUser, repeatUser}
	disconnectProps  = propSet{DISCONNECT, "properties", 1<<propSessionExpiry | 1<<propServerReference |
		1<<propReasonString | 1<<propUser, repeatUser}
	authProps = propSet{AUTH, "properties", 1<<propAuthMethod | 1<<propAuthData | 1<<propReasonString |
		1<<propUser, repeatUser}
)

// ackPropSet is the set shared by PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
func ackPropSet(t Type) propSet {
	return propSet{t, "properties", 1<<propReasonString | 1<<propUser, repeatUser}
}

// size checks that p can be encoded for s and returns the length of its
// encoded properties, without the Property Length itself. Append refuses a
// property the packet type cannot carry (the peer would treat it as
// malformed) rather than drop it silently. Empty properties, the common
// case, cost one test per field.
func (p *Properties) size(s *propSet) (int, error) {
	n := 0
	var have uint64
	if p.PayloadFormat != nil {
		have |= 1 << propPayloadFormat
		n += 2
	}
	if p.MessageExpiry != nil {
		have |= 1 << propMessageExpiry
		n += 5
	}
	if p.ContentType != "" {
		have |= 1 << propContentType
		n += 3 + len(p.ContentType)
	}
	if p.ResponseTopic != "" {
		have |= 1 << propResponseTopic
		n += 3 + len(p.ResponseTopic)
	}
	if p.CorrelationData != nil {
		have |= 1 << propCorrelationData
		n += 3 + len(p.CorrelationData)
	}
	for _, id := range p.SubscriptionIDs {
		if id > MaxVarint {
			return 0, errf(MalformedPacket, "%s Subscription Identifier %d exceeds the maximum %d", s.t, id, MaxVarint)
		}
		have |= 1 << propSubscriptionID
		n += 1 + VarintLen(id)
	}
	if p.SessionExpiry != nil {
		have |= 1 << propSessionExpiry
		n += 5
	}
	if p.AssignedClientID != "" {
		have |= 1 << propAssignedClientID
		n += 3 + len(p.AssignedClientID)
	}
	if p.ServerKeepAlive != nil {
		have |= 1 << propServerKeepAlive
		n += 3
	}
	if p.AuthMethod != "" {
		have |= 1 << propAuthMethod
		n += 3 + len(p.AuthMethod)
	}
	if p.AuthData != nil {
		have |= 1 << propAuthData
		n += 3 + len(p.AuthData)
	}
	if p.RequestProblemInfo != nil {
		have |= 1 << propRequestProblemInfo
		n += 2
	}
	if p.WillDelay != nil {
		have |= 1 << propWillDelay
		n += 5
	}
	if p.RequestResponseInfo != nil {
		have |= 1 << propRequestResponseInfo
		n += 2
	}
	if p.ResponseInfo != "" {
		have |= 1 << propResponseInfo
		n += 3 + len(p.ResponseInfo)
	}
	if p.ServerReference != "" {
		have |= 1 << propServerReference
		n += 3 + len(p.ServerReference)
	}
	if p.ReasonString != "" {
		have |= 1 << propReasonString
		n += 3 + len(p.ReasonString)
	}
	if p.ReceiveMaximum != nil {
		have |= 1 << propReceiveMaximum
		n += 3
	}
	if p.TopicAliasMaximum != nil {
		have |= 1 << propTopicAliasMaximum
		n += 3
	}
	if p.TopicAlias != nil {
		have |= 1 << propTopicAlias
		n += 3
	}
	if p.MaximumQoS != nil {
		have |= 1 << propMaximumQoS
		n += 2
	}
	if p.RetainAvailable != nil {
		have |= 1 << propRetainAvailable
		n += 2
	}
	for i := range p.User {
		have |= 1 << propUser
		n += 5 + len(p.User[i].Key) + len(p.User[i].Value)
	}
	if p.MaximumPacketSize != nil {
		have |= 1 << propMaximumPacketSize
		n += 5
	}
	if p.WildcardSubAvailable != nil {
		have |= 1 << propWildcardSubAvailable
		n += 2
	}
	if p.SubIDAvailable != nil {
		have |= 1 << propSubIDAvailable
		n += 2
	}
	if p.SharedSubAvailable != nil {
		have |= 1 << propSharedSubAvailable
		n += 2
	}
	if have == 0 {
		return 0, nil
	}
	if bad := have &^ s.allowed; bad != 0 {
		id := bits.TrailingZeros64(bad)
		return 0, errf(MalformedPacket, "%s %s cannot include %s (0x%02X)", s.t, s.name, propNames[id], id)
	}
	if len(p.SubscriptionIDs) > 1 && s.repeat&(1<<propSubscriptionID) == 0 {
		return 0, errf(ProtocolError, "%s %s: only one Subscription Identifier is allowed", s.t, s.name)
	}
	if err := p.checkFields(s.t); err != nil {
		return 0, err
	}
	if n > MaxVarint {
		return 0, errf(PacketTooLarge, "%s %s: %d bytes exceeds the maximum %d", s.t, s.name, n, MaxVarint)
	}
	return n, nil
}

// checkFields checks the string and binary properties size has counted:
// lengths that fit their two-byte prefix and well-formed strings.
func (p *Properties) checkFields(t Type) error {
	for _, f := range [...]struct {
		id byte
		v  string
	}{
		{propContentType, p.ContentType}, {propResponseTopic, p.ResponseTopic},
		{propAssignedClientID, p.AssignedClientID}, {propAuthMethod, p.AuthMethod},
		{propResponseInfo, p.ResponseInfo}, {propServerReference, p.ServerReference},
		{propReasonString, p.ReasonString},
	} {
		if _, err := stringSize(t, propNames[f.id], f.v); err != nil {
			return err
		}
	}
	if _, err := binarySize(t, propNames[propCorrelationData], p.CorrelationData); err != nil {
		return err
	}
	if _, err := binarySize(t, propNames[propAuthData], p.AuthData); err != nil {
		return err
	}
	for i := range p.User {
		if _, err := stringSize(t, "User Property name", p.User[i].Key); err != nil {
			return err
		}
		if _, err := stringSize(t, "User Property value", p.User[i].Value); err != nil {
			return err
		}
	}
	return nil
}

// propsSize is the encoded size of properties of length n, Property Length included.
func propsSize(n int) int { return VarintLen(uint32(n)) + n }

// append appends the Property Length n (from size) and the properties in
// identifier order.
func (p *Properties) append(dst []byte, n int) []byte {
	dst = AppendVarint(dst, uint32(n))
	if n == 0 {
		return dst
	}
	if p.PayloadFormat != nil {
		dst = append(dst, propPayloadFormat, *p.PayloadFormat)
	}
	if p.MessageExpiry != nil {
		dst = appendUint32(append(dst, propMessageExpiry), *p.MessageExpiry)
	}
	if p.ContentType != "" {
		dst = appendString(append(dst, propContentType), p.ContentType)
	}
	if p.ResponseTopic != "" {
		dst = appendString(append(dst, propResponseTopic), p.ResponseTopic)
	}
	if p.CorrelationData != nil {
		dst = appendBinary(append(dst, propCorrelationData), p.CorrelationData)
	}
	for _, id := range p.SubscriptionIDs {
		dst = AppendVarint(append(dst, propSubscriptionID), id)
	}
	if p.SessionExpiry != nil {
		dst = appendUint32(append(dst, propSessionExpiry), *p.SessionExpiry)
	}
	if p.AssignedClientID != "" {
		dst = appendString(append(dst, propAssignedClientID), p.AssignedClientID)
	}
	if p.ServerKeepAlive != nil {
		dst = appendUint16(append(dst, propServerKeepAlive), *p.ServerKeepAlive)
	}
	if p.AuthMethod != "" {
		dst = appendString(append(dst, propAuthMethod), p.AuthMethod)
	}
	if p.AuthData != nil {
		dst = appendBinary(append(dst, propAuthData), p.AuthData)
	}
	if p.RequestProblemInfo != nil {
		dst = append(dst, propRequestProblemInfo, *p.RequestProblemInfo)
	}
	if p.WillDelay != nil {
		dst = appendUint32(append(dst, propWillDelay), *p.WillDelay)
	}
	if p.RequestResponseInfo != nil {
		dst = append(dst, propRequestResponseInfo, *p.RequestResponseInfo)
	}
	if p.ResponseInfo != "" {
		dst = appendString(append(dst, propResponseInfo), p.ResponseInfo)
	}
	if p.ServerReference != "" {
		dst = appendString(append(dst, propServerReference), p.ServerReference)
	}
	if p.ReasonString != "" {
		dst = appendString(append(dst, propReasonString), p.ReasonString)
	}
	if p.ReceiveMaximum != nil {
		dst = appendUint16(append(dst, propReceiveMaximum), *p.ReceiveMaximum)
	}
	if p.TopicAliasMaximum != nil {
		dst = appendUint16(append(dst, propTopicAliasMaximum), *p.TopicAliasMaximum)
	}
	if p.TopicAlias != nil {
		dst = appendUint16(append(dst, propTopicAlias), *p.TopicAlias)
	}
	if p.MaximumQoS != nil {
		dst = append(dst, propMaximumQoS, *p.MaximumQoS)
	}
	if p.RetainAvailable != nil {
		dst = append(dst, propRetainAvailable, *p.RetainAvailable)
	}
	for _, u := range p.User {
		dst = appendString(appendString(append(dst, propUser), u.Key), u.Value)
	}
	if p.MaximumPacketSize != nil {
		dst = appendUint32(append(dst, propMaximumPacketSize), *p.MaximumPacketSize)
	}
	if p.WildcardSubAvailable != nil {
		dst = append(dst, propWildcardSubAvailable, *p.WildcardSubAvailable)
	}
	if p.SubIDAvailable != nil {
		dst = append(dst, propSubIDAvailable, *p.SubIDAvailable)
	}
	if p.SharedSubAvailable != nil {
		dst = append(dst, propSharedSubAvailable, *p.SharedSubAvailable)
	}
	return dst
}

// decodeProperties reads a Property Length and the properties it covers
// into p, enforcing the rules that need no session state.
func decodeProperties(d *decoder, s *propSet, p *Properties) error {
	n, err := d.varint("property length")
	if err != nil {
		return err
	}
	if uint64(n) > uint64(len(d.b)) {
		return errf(MalformedPacket, "%s %s: length %d exceeds the %d bytes left", s.t, s.name, n, len(d.b))
	}
	pd := decoder{b: d.b[:n], t: d.t}
	d.b = d.b[n:]
	var seen uint64
	for len(pd.b) > 0 {
		// All identifiers are one byte in MQTT 5.0; a byte >= 0x80 would
		// start a longer one, which is unknown and so not allowed either.
		id := pd.b[0]
		pd.b = pd.b[1:]
		// MQTT 5.0 2.2.2.2: an identifier not valid for the packet type
		// makes the packet malformed.
		if id >= 64 || s.allowed&(1<<id) == 0 {
			if id < 64 && propNames[id] != "" {
				return errf(MalformedPacket, "%s %s: %s (0x%02X) is not allowed here", s.t, s.name, propNames[id], id)
			}
			return errf(MalformedPacket, "%s %s: unknown identifier 0x%02X", s.t, s.name, id)
		}
		// MQTT 5.0 3.x: "It is a Protocol Error to include <property> more
		// than once", for each property but User Property (and Subscription
		// Identifier in PUBLISH).
		if seen&(1<<id) != 0 && s.repeat&(1<<id) == 0 {
			return errf(ProtocolError, "%s %s: %s appears more than once", s.t, s.name, propNames[id])
		}
		seen |= 1 << id
		if err := decodeProperty(&pd, s, id, p); err != nil {
			return err
		}
	}
	return nil
}

// decodeProperty reads the value of property id, which s allows.
func decodeProperty(d *decoder, s *propSet, id byte, p *Properties) error {
	name := propNames[id]
	var err error
	switch id {
	case propPayloadFormat:
		p.PayloadFormat, err = decodeFlag(d, s, id)
	case propMessageExpiry:
		p.MessageExpiry, err = decodeU32(d, name)
	case propContentType:
		p.ContentType, err = d.str(name)
	case propResponseTopic:
		p.ResponseTopic, err = d.str(name)
	case propCorrelationData:
		p.CorrelationData, err = d.bin(name)
	case propSubscriptionID:
		var v uint32
		if v, err = d.varint(name); err == nil {
			if v == 0 {
				// MQTT 5.0 3.3.2.3.8 / 3.8.2.1.2: a value of 0 is a Protocol Error.
				return errf(ProtocolError, "%s %s: Subscription Identifier 0", s.t, s.name)
			}
			p.SubscriptionIDs = append(p.SubscriptionIDs, v)
		}
	case propSessionExpiry:
		p.SessionExpiry, err = decodeU32(d, name)
	case propAssignedClientID:
		p.AssignedClientID, err = d.str(name)
	case propServerKeepAlive:
		p.ServerKeepAlive, err = decodeU16(d, name)
	case propAuthMethod:
		p.AuthMethod, err = d.str(name)
	case propAuthData:
		p.AuthData, err = d.bin(name)
	case propRequestProblemInfo:
		p.RequestProblemInfo, err = decodeFlag(d, s, id)
	case propWillDelay:
		p.WillDelay, err = decodeU32(d, name)
	case propRequestResponseInfo:
		p.RequestResponseInfo, err = decodeFlag(d, s, id)
	case propResponseInfo:
		p.ResponseInfo, err = d.str(name)
	case propServerReference:
		p.ServerReference, err = d.str(name)
	case propReasonString:
		p.ReasonString, err = d.str(name)
	case propReceiveMaximum:
		if p.ReceiveMaximum, err = decodeU16(d, name); err == nil && *p.ReceiveMaximum == 0 {
			// MQTT 5.0 3.1.2.11.3 / 3.2.2.3.3: a value of 0 is a Protocol Error.
			return errf(ProtocolError, "%s %s: Receive Maximum 0", s.t, s.name)
		}
	case propTopicAliasMaximum:
		p.TopicAliasMaximum, err = decodeU16(d, name)
	case propTopicAlias:
		// A value of 0 is checked by the broker, which answers 0x94 Topic
		// Alias invalid [MQTT-3.3.2-8] rather than 0x82.
		p.TopicAlias, err = decodeU16(d, name)
	case propMaximumQoS:
		p.MaximumQoS, err = decodeFlag(d, s, id)
	case propRetainAvailable:
		p.RetainAvailable, err = decodeFlag(d, s, id)
	case propUser:
		var u UserProperty
		if u.Key, err = d.str("User Property name"); err == nil {
			if u.Value, err = d.str("User Property value"); err == nil {
				p.User = append(p.User, u)
			}
		}
	case propMaximumPacketSize:
		if p.MaximumPacketSize, err = decodeU32(d, name); err == nil && *p.MaximumPacketSize == 0 {
			// MQTT 5.0 3.1.2.11.4 / 3.2.2.3.6: a value of 0 is a Protocol Error.
			return errf(ProtocolError, "%s %s: Maximum Packet Size 0", s.t, s.name)
		}
	case propWildcardSubAvailable:
		p.WildcardSubAvailable, err = decodeFlag(d, s, id)
	case propSubIDAvailable:
		p.SubIDAvailable, err = decodeFlag(d, s, id)
	case propSharedSubAvailable:
		p.SharedSubAvailable, err = decodeFlag(d, s, id)
	}
	return err
}

// decodeFlag reads a byte property whose only valid values are 0 and 1
// (Payload Format Indicator, Request Problem/Response Information, Maximum
// QoS and the ... Available properties); any other value is a Protocol
// Error in MQTT 5.0 (3.1.2.11.6, 3.1.2.11.7, 3.2.2.3.4, 3.2.2.3.5,
// 3.2.2.3.11-13, and a Payload Format outside the defined formats).
func decodeFlag(d *decoder, s *propSet, id byte) (*byte, error) {
	v, err := d.u8(propNames[id])
	if err != nil {
		return nil, err
	}
	if v > 1 {
		return nil, errf(ProtocolError, "%s %s: %s is %d, must be 0 or 1", s.t, s.name, propNames[id], v)
	}
	return new(v), nil
}

func decodeU16(d *decoder, name string) (*uint16, error) {
	v, err := d.u16(name)
	if err != nil {
		return nil, err
	}
	return new(v), nil
}

func decodeU32(d *decoder, name string) (*uint32, error) {
	v, err := d.u32(name)
	if err != nil {
		return nil, err
	}
	return new(v), nil
}
