package packet

// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape: a packet identifier,
// and in v5 a reason code and properties, both omissible.

// Append appends the PUBACK; see appendAck.
func (p *Puback) Append(dst []byte, version byte) ([]byte, error) {
	return appendAck(dst, byte(PUBACK)<<4, p.PacketID, p.ReasonCode, &p.Properties, &pubackProps, version)
}

// Append appends the PUBREC; see appendAck.
func (p *Pubrec) Append(dst []byte, version byte) ([]byte, error) {
	return appendAck(dst, byte(PUBREC)<<4, p.PacketID, p.ReasonCode, &p.Properties, &pubrecProps, version)
}

// Append appends the PUBREL; see appendAck.
func (p *Pubrel) Append(dst []byte, version byte) ([]byte, error) {
	return appendAck(dst, byte(PUBREL)<<4|0b0010, p.PacketID, p.ReasonCode, &p.Properties, &pubrelProps, version)
}

// Append appends the PUBCOMP; see appendAck.
func (p *Pubcomp) Append(dst []byte, version byte) ([]byte, error) {
	return appendAck(dst, byte(PUBCOMP)<<4, p.PacketID, p.ReasonCode, &p.Properties, &pubcompProps, version)
}

func appendAck(dst []byte, h byte, id uint16, code ReasonCode, props *Properties, s *propSet, version byte) ([]byte, error) {
	if version != V5 {
		return append(dst, h, 2, byte(id>>8), byte(id)), nil
	}
	psize, err := props.size(s)
	if err != nil {
		return dst, err
	}
	// MQTT 5.0 3.4.2.1: the reason code may be left out when it is Success
	// and there are no properties; the property length whenever there are none.
	rl := 2
	if code != Success || psize > 0 {
		rl++
	}
	if psize > 0 {
		rl += propsSize(psize)
	}
	if dst, err = appendFixedHeader(dst, h, rl); err != nil {
		return dst, err
	}
	dst = appendUint16(dst, id)
	if rl > 2 {
		dst = append(dst, byte(code))
	}
	if psize > 0 {
		dst = props.append(dst, psize)
	}
	return dst, nil
}

// ackFields is the decoded content of any of the four acks; the packet
// types (and pointers to them) convert from it because their fields are
// identical.
type ackFields struct {
	PacketID   uint16
	ReasonCode ReasonCode
	Properties Properties
}

// decodeAck decodes into a an acknowledgement of type t whose header
// checkHeader accepted, and returns it as that type. a's properties must
// be zero; its other fields are all set.
func decodeAck(a *ackFields, t Type, body []byte, version byte) (Packet, error) {
	a.PacketID, a.ReasonCode = 0, Success
	var s *propSet
	codes := &pubackCodes
	switch t {
	case PUBACK:
		s = &pubackProps
	case PUBREC:
		s = &pubrecProps
	case PUBREL:
		s, codes = &pubrelProps, &pubrelCodes
	default:
		s, codes = &pubcompProps, &pubrelCodes
	}
	d := decoder{b: body, t: t}
	var err error
	if a.PacketID, err = d.u16("packet identifier"); err != nil {
		return nil, err
	}
	// Before v5 the remaining length is exactly 2. In v5, 2 means Success
	// with no properties and 3 means no properties (MQTT 5.0 3.4.2.1, 3.4.2.2).
	if version == V5 && len(d.b) > 0 {
		var c byte
		if c, err = d.u8("reason code"); err != nil {
			return nil, err
		}
		a.ReasonCode = ReasonCode(c)
		if err = checkCode(codes, t, a.ReasonCode); err != nil {
			return nil, err
		}
		if len(d.b) > 0 {
			if err = decodeProperties(&d, s, &a.Properties); err != nil {
				return nil, err
			}
		}
	}
	if err = d.end(); err != nil {
		return nil, err
	}
	switch t {
	case PUBACK:
		return (*Puback)(a), nil
	case PUBREC:
		return (*Pubrec)(a), nil
	case PUBREL:
		return (*Pubrel)(a), nil
	default:
		return (*Pubcomp)(a), nil
	}
}
