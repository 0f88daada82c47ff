package packet

// DISCONNECT and AUTH share one v5 shape: a reason code and properties,
// both omissible (MQTT 5.0 3.14.2.1, 3.15.2.1).

// Append appends the DISCONNECT. Before v5 it is two bytes; in v5 the
// remaining length is 0 for Success without properties.
func (p *Disconnect) Append(dst []byte, version byte) ([]byte, error) {
	if version != V5 {
		return append(dst, byte(DISCONNECT)<<4, 0), nil
	}
	return appendReasonProps(dst, byte(DISCONNECT)<<4, p.ReasonCode, &p.Properties, &disconnectProps)
}

// Append appends the AUTH, which exists only in v5.
func (p *Auth) Append(dst []byte, version byte) ([]byte, error) {
	if version != V5 {
		return dst, errf(MalformedPacket, "AUTH does not exist before MQTT 5 (protocol level %d)", version)
	}
	return appendReasonProps(dst, byte(AUTH)<<4, p.ReasonCode, &p.Properties, &authProps)
}

func appendReasonProps(dst []byte, h byte, code ReasonCode, props *Properties, s *propSet) ([]byte, error) {
	psize, err := props.size(s)
	if err != nil {
		return dst, err
	}
	rl := 0
	if code != Success || psize > 0 {
		rl = 1
	}
	if psize > 0 {
		rl += propsSize(psize)
	}
	if dst, err = appendFixedHeader(dst, h, rl); err != nil {
		return dst, err
	}
	if rl > 0 {
		dst = append(dst, byte(code))
	}
	if psize > 0 {
		dst = props.append(dst, psize)
	}
	return dst, nil
}

// decodeReasonProps decodes the body of a DISCONNECT or AUTH: remaining
// length 0 means Success, 1 means no properties.
func decodeReasonProps(t Type, body []byte, version byte) (Packet, error) {
	d := decoder{b: body, t: t}
	if version != V5 {
		// Before v5 DISCONNECT has no variable header (AUTH cannot get here).
		if err := d.end(); err != nil {
			return nil, err
		}
		return &Disconnect{}, nil
	}
	var code ReasonCode
	var props Properties
	if len(d.b) > 0 {
		code = ReasonCode(d.b[0]) // len(d.b) > 0
		d.b = d.b[1:]
		codes, s := &disconnectCodes, &disconnectProps
		if t == AUTH {
			codes, s = &authCodes, &authProps
		}
		if err := checkCode(codes, t, code); err != nil {
			return nil, err
		}
		if len(d.b) > 0 {
			if err := decodeProperties(&d, s, &props); err != nil {
				return nil, err
			}
			if err := d.end(); err != nil {
				return nil, err
			}
		}
	}
	if t == AUTH {
		return &Auth{ReasonCode: code, Properties: props}, nil
	}
	return &Disconnect{ReasonCode: code, Properties: props}, nil
}
