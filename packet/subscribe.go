package packet

// Subscription option bits (v5 3.8.3.1; before v5 only the QoS bits exist).
const (
	subQoS               = 0x03
	subNoLocal           = 0x04
	subRetainAsPublished = 0x08
	subRetainHandling    = 0x30 // two bits, shifted by 4
)

// Append appends the SUBSCRIBE. The v5 subscription options are written only
// for v5.
func (p *Subscribe) Append(dst []byte, version byte) ([]byte, error) {
	rl := 2
	var psize int
	var err error
	if version == V5 {
		if psize, err = p.Properties.size(&subscribeProps); err != nil {
			return dst, err
		}
		rl += propsSize(psize)
	}
	for i := range p.Subscriptions {
		s := &p.Subscriptions[i]
		if s.QoS > 2 {
			return dst, errf(MalformedPacket, "SUBSCRIBE %q: QoS %d", s.Filter, s.QoS)
		}
		if version == V5 && s.RetainHandling > 2 {
			return dst, errf(ProtocolError, "SUBSCRIBE %q: retain handling %d", s.Filter, s.RetainHandling)
		}
		n, err := stringSize(SUBSCRIBE, "topic filter", s.Filter)
		if err != nil {
			return dst, err
		}
		rl += n + 1
	}
	if dst, err = appendFixedHeader(dst, byte(SUBSCRIBE)<<4|0b0010, rl); err != nil {
		return dst, err
	}
	dst = appendUint16(dst, p.PacketID)
	if version == V5 {
		dst = p.Properties.append(dst, psize)
	}
	for i := range p.Subscriptions {
		s := &p.Subscriptions[i]
		opts := s.QoS
		if version == V5 {
			opts |= s.RetainHandling << 4
			if s.NoLocal {
				opts |= subNoLocal
			}
			if s.RetainAsPublished {
				opts |= subRetainAsPublished
			}
		}
		dst = append(appendString(dst, s.Filter), opts)
	}
	return dst, nil
}

func decodeSubscribe(body []byte, version byte) (Packet, error) {
	d := decoder{b: body, t: SUBSCRIBE}
	p := &Subscribe{}
	var err error
	if p.PacketID, err = d.u16("packet identifier"); err != nil {
		return nil, err
	}
	if p.PacketID == 0 {
		// [MQTT-2.3.1-1] SUBSCRIBE needs a non-zero packet identifier.
		return nil, errf(ProtocolError, "SUBSCRIBE with packet identifier 0")
	}
	if version == V5 {
		if err = decodeProperties(&d, &subscribeProps, &p.Properties); err != nil {
			return nil, err
		}
	}
	for len(d.b) > 0 {
		var s Subscription
		// [MQTT-3.8.3-1] topic filters are UTF-8 strings; their syntax is
		// the topic package's to judge.
		if s.Filter, err = d.str("topic filter"); err != nil {
			return nil, err
		}
		opts, err := d.u8("subscription options")
		if err != nil {
			return nil, err
		}
		s.QoS = opts & subQoS
		if version == V5 {
			if opts&0xC0 != 0 {
				// [MQTT-3.8.3-5] reserved bits 6 and 7 must be 0: malformed.
				return nil, errf(MalformedPacket, "SUBSCRIBE %q: reserved option bits 0x%02X", s.Filter, opts&0xC0)
			}
			if s.QoS == 3 {
				// MQTT 5.0 3.8.3.1: Maximum QoS 3 is a Protocol Error.
				return nil, errf(ProtocolError, "SUBSCRIBE %q: QoS 3", s.Filter)
			}
			s.RetainHandling = opts & subRetainHandling >> 4
			if s.RetainHandling == 3 {
				// MQTT 5.0 3.8.3.1: Retain Handling 3 is a Protocol Error.
				return nil, errf(ProtocolError, "SUBSCRIBE %q: retain handling 3", s.Filter)
			}
			// No Local on a shared subscription [MQTT-3.8.3-4 in v5] is
			// the broker's check: it needs the filter parsed.
			s.NoLocal = opts&subNoLocal != 0
			s.RetainAsPublished = opts&subRetainAsPublished != 0
		} else {
			if opts&^subQoS != 0 {
				// [MQTT-3.8.3-4] the upper 6 bits must be 0.
				return nil, errf(MalformedPacket, "SUBSCRIBE %q: reserved option bits 0x%02X", s.Filter, opts&^subQoS)
			}
			if s.QoS == 3 {
				// [MQTT-3.8.3-4] QoS must be 0, 1 or 2.
				return nil, errf(MalformedPacket, "SUBSCRIBE %q: QoS 3", s.Filter)
			}
		}
		p.Subscriptions = append(p.Subscriptions, s)
	}
	if len(p.Subscriptions) == 0 {
		// [MQTT-3.8.3-3] at least one topic filter.
		return nil, errf(ProtocolError, "SUBSCRIBE without topic filters")
	}
	return p, nil
}

// Append appends the SUBACK: one code byte per filter, in every version.
func (p *Suback) Append(dst []byte, version byte) ([]byte, error) {
	rl := 2 + len(p.ReasonCodes)
	var psize int
	var err error
	if version == V5 {
		if psize, err = p.Properties.size(&subackProps); err != nil {
			return dst, err
		}
		rl += propsSize(psize)
	}
	if dst, err = appendFixedHeader(dst, byte(SUBACK)<<4, rl); err != nil {
		return dst, err
	}
	dst = appendUint16(dst, p.PacketID)
	if version == V5 {
		dst = p.Properties.append(dst, psize)
	}
	for _, c := range p.ReasonCodes {
		dst = append(dst, byte(c))
	}
	return dst, nil
}

func decodeSuback(body []byte, version byte) (Packet, error) {
	d := decoder{b: body, t: SUBACK}
	p := &Suback{}
	var err error
	if p.PacketID, err = d.u16("packet identifier"); err != nil {
		return nil, err
	}
	codes := &subackCodes4
	if version == V5 {
		codes = &subackCodes5
		if err = decodeProperties(&d, &subackProps, &p.Properties); err != nil {
			return nil, err
		}
	}
	if p.ReasonCodes, err = decodeCodes(&d, codes); err != nil {
		return nil, err
	}
	return p, nil
}

// decodeCodes reads the rest of a SUBACK or v5 UNSUBACK: one reason code
// per topic filter of the request ([MQTT-3.8.4-5]; v5 [MQTT-3.11.3-1]), so
// at least one, each one the packet may carry ([MQTT-3.9.3-2]; v5
// [MQTT-3.11.3-2]).
func decodeCodes(d *decoder, s *codeSet) ([]ReasonCode, error) {
	if len(d.b) == 0 {
		return nil, errf(ProtocolError, "%s without reason codes", d.t)
	}
	codes := make([]ReasonCode, len(d.b))
	for i, c := range d.b {
		codes[i] = ReasonCode(c)
		if err := checkCode(s, d.t, codes[i]); err != nil {
			return nil, err
		}
	}
	d.b = nil
	return codes, nil
}
