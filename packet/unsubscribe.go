package packet

// Append appends the UNSUBSCRIBE.
func (p *Unsubscribe) Append(dst []byte, version byte) ([]byte, error) {
	rl := 2
	var psize int
	var err error
	if version == V5 {
		if psize, err = p.Properties.size(&unsubscribeProps); err != nil {
			return dst, err
		}
		rl += propsSize(psize)
	}
	for _, f := range p.Filters {
		n, err := stringSize(UNSUBSCRIBE, "topic filter", f)
		if err != nil {
			return dst, err
		}
		rl += n
	}
	if dst, err = appendFixedHeader(dst, byte(UNSUBSCRIBE)<<4|0b0010, rl); err != nil {
		return dst, err
	}
	dst = appendUint16(dst, p.PacketID)
	if version == V5 {
		dst = p.Properties.append(dst, psize)
	}
	for _, f := range p.Filters {
		dst = appendString(dst, f)
	}
	return dst, nil
}

func decodeUnsubscribe(body []byte, version byte) (Packet, error) {
	d := decoder{b: body, t: UNSUBSCRIBE}
	p := &Unsubscribe{}
	var err error
	if p.PacketID, err = d.u16("packet identifier"); err != nil {
		return nil, err
	}
	if p.PacketID == 0 {
		// [MQTT-2.3.1-1] UNSUBSCRIBE needs a non-zero packet identifier.
		return nil, errf(ProtocolError, "UNSUBSCRIBE with packet identifier 0")
	}
	if version == V5 {
		if err = decodeProperties(&d, &unsubscribeProps, &p.Properties); err != nil {
			return nil, err
		}
	}
	for len(d.b) > 0 {
		// [MQTT-3.10.3-1] topic filters are UTF-8 strings.
		f, err := d.str("topic filter")
		if err != nil {
			return nil, err
		}
		p.Filters = append(p.Filters, f)
	}
	if len(p.Filters) == 0 {
		// [MQTT-3.10.3-2] at least one topic filter.
		return nil, errf(ProtocolError, "UNSUBSCRIBE without topic filters")
	}
	return p, nil
}

// Append appends the UNSUBACK. Properties and reason codes exist only in v5;
// before v5 it is just the packet identifier.
func (p *Unsuback) Append(dst []byte, version byte) ([]byte, error) {
	if version != V5 {
		return append(dst, byte(UNSUBACK)<<4, 2, byte(p.PacketID>>8), byte(p.PacketID)), nil
	}
	psize, err := p.Properties.size(&unsubackProps)
	if err != nil {
		return dst, err
	}
	if dst, err = appendFixedHeader(dst, byte(UNSUBACK)<<4, 2+propsSize(psize)+len(p.ReasonCodes)); err != nil {
		return dst, err
	}
	dst = appendUint16(dst, p.PacketID)
	dst = p.Properties.append(dst, psize)
	for _, c := range p.ReasonCodes {
		dst = append(dst, byte(c))
	}
	return dst, nil
}

func decodeUnsuback(body []byte, version byte) (Packet, error) {
	d := decoder{b: body, t: UNSUBACK}
	p := &Unsuback{}
	var err error
	if p.PacketID, err = d.u16("packet identifier"); err != nil {
		return nil, err
	}
	if version == V5 {
		if err = decodeProperties(&d, &unsubackProps, &p.Properties); err != nil {
			return nil, err
		}
		if p.ReasonCodes, err = decodeCodes(&d, &unsubackCodes); err != nil {
			return nil, err
		}
	}
	if err = d.end(); err != nil {
		return nil, err
	}
	return p, nil
}
