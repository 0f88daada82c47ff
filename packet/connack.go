package packet

// Append appends the CONNACK. Before v5 ReasonCode is the return code; the
// Session Present flag does not exist in 3.1 and is written only from 3.1.1.
func (p *Connack) Append(dst []byte, version byte) ([]byte, error) {
	var flags byte
	if p.SessionPresent && version != V31 {
		flags = 1
	}
	if version != V5 {
		return append(dst, byte(CONNACK)<<4, 2, flags, byte(p.ReasonCode)), nil
	}
	psize, err := p.Properties.size(&connackProps)
	if err != nil {
		return dst, err
	}
	if dst, err = appendFixedHeader(dst, byte(CONNACK)<<4, 2+propsSize(psize)); err != nil {
		return dst, err
	}
	dst = append(dst, flags, byte(p.ReasonCode))
	return p.Properties.append(dst, psize), nil
}

func decodeConnack(body []byte, version byte) (Packet, error) {
	d := decoder{b: body, t: CONNACK}
	flags, err := d.u8("acknowledge flags")
	if err != nil {
		return nil, err
	}
	code, err := d.u8("return code")
	if err != nil {
		return nil, err
	}
	p := &Connack{ReasonCode: ReasonCode(code)}
	// In 3.1 the first byte is unused; from 3.1.1 bit 0 is Session Present
	// and bits 7-1 are reserved, 0 ([MQTT-3.2.2-1] in v5).
	if version != V31 {
		if flags&0xFE != 0 {
			return nil, errf(MalformedPacket, "CONNACK reserved acknowledge flags 0x%02X", flags&0xFE)
		}
		p.SessionPresent = flags&1 != 0
	}
	if version == V5 {
		if err = checkCode(&connackCodes5, CONNACK, p.ReasonCode); err != nil {
			return nil, err
		}
		// The Property Length is not optional in CONNACK.
		if err = decodeProperties(&d, &connackProps, &p.Properties); err != nil {
			return nil, err
		}
	} else if err = checkCode(&connackCodes4, CONNACK, p.ReasonCode); err != nil {
		return nil, err
	}
	if err = d.end(); err != nil {
		return nil, err
	}
	return p, nil
}
