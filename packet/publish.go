package packet

// header is the PUBLISH fixed header byte; it refuses a QoS or DUP that
// would make the packet malformed.
func (p *Publish) header() (byte, error) {
	if p.QoS > 2 {
		// [MQTT-3.3.1-4] QoS 3 is malformed.
		return 0, errf(MalformedPacket, "PUBLISH QoS %d", p.QoS)
	}
	h := byte(PUBLISH)<<4 | p.QoS<<1
	if p.Dup {
		if p.QoS == 0 {
			// [MQTT-3.3.1-2] DUP must be 0 at QoS 0.
			return 0, errf(MalformedPacket, "PUBLISH DUP set at QoS 0")
		}
		h |= 0x08
	}
	if p.Retain {
		h |= 0x01
	}
	return h, nil
}

// sizes returns the remaining length and, for v5, the properties length.
func (p *Publish) sizes(version byte) (rl, psize int, err error) {
	if rl, err = stringSize(PUBLISH, "topic name", p.Topic); err != nil {
		return 0, 0, err
	}
	if p.QoS > 0 {
		rl += 2
	}
	if version == V5 {
		if psize, err = p.Properties.size(&publishProps); err != nil {
			return 0, 0, err
		}
		rl += propsSize(psize)
	}
	return rl + len(p.Payload), psize, nil
}

// Size returns the number of bytes Append writes for version, or -1 when
// Append would fail. It lets a sender check a peer's Maximum Packet Size
// before encoding.
func (p *Publish) Size(version byte) int {
	if _, err := p.header(); err != nil {
		return -1
	}
	rl, _, err := p.sizes(version)
	if err != nil || rl > MaxVarint {
		return -1
	}
	return packetSize(rl)
}

// Append appends the PUBLISH. PacketID is written only for QoS 1 and 2.
// It allocates only to grow dst.
func (p *Publish) Append(dst []byte, version byte) ([]byte, error) {
	h, err := p.header()
	if err != nil {
		return dst, err
	}
	rl, psize, err := p.sizes(version)
	if err != nil {
		return dst, err
	}
	if dst, err = appendFixedHeader(dst, h, rl); err != nil {
		return dst, err
	}
	dst = appendString(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendUint16(dst, p.PacketID)
	}
	if version == V5 {
		dst = p.Properties.append(dst, psize)
	}
	return append(dst, p.Payload...), nil
}

// decodePublish decodes into p a PUBLISH whose header checkHeader
// accepted. p's properties must be zero; its other fields are all set.
// The payload aliases body. lastTopic, if not nil, is the topic of the
// PUBLISH decoded before with it (see strAgain).
func decodePublish(p *Publish, h byte, body []byte, version byte, lastTopic *string) error {
	d := decoder{b: body, t: PUBLISH}
	p.Dup, p.QoS, p.Retain = h&0x08 != 0, h>>1&3, h&0x01 != 0
	p.Topic, p.PacketID, p.Payload = "", 0, nil
	var err error
	// [MQTT-3.3.2-1] the topic name is a UTF-8 string. Wildcards and the
	// empty topic (valid in v5 with a Topic Alias) are the broker's to judge.
	if lastTopic != nil {
		p.Topic, err = d.strAgain("topic name", lastTopic)
	} else {
		p.Topic, err = d.str("topic name")
	}
	if err != nil {
		return err
	}
	if p.QoS > 0 {
		if p.PacketID, err = d.u16("packet identifier"); err != nil {
			return err
		}
		if p.PacketID == 0 {
			// [MQTT-2.3.1-1] QoS > 0 needs a non-zero packet identifier.
			return errf(ProtocolError, "PUBLISH QoS %d with packet identifier 0", p.QoS)
		}
	}
	if version == V5 {
		if err = decodeProperties(&d, &publishProps, &p.Properties); err != nil {
			return err
		}
	}
	// The payload is the rest of the packet and may be empty.
	p.Payload = d.rest()
	return nil
}
