package packet

// CONNECT flag bits (3.1.1 section 3.1.2.3).
const (
	connectReserved   = 0x01
	connectCleanStart = 0x02
	connectWill       = 0x04
	connectWillQoS    = 0x18 // two bits, shifted by 3
	connectWillRetain = 0x20
	connectPassword   = 0x40
	connectUsername   = 0x80
)

// Append appends the CONNECT for p.ProtocolLevel (version when that is 0),
// named p.ProtocolName ("MQIsdp" for level 3, else "MQTT", when empty).
// Properties are written only for level 5.
func (p *Connect) Append(dst []byte, version byte) ([]byte, error) {
	level := p.ProtocolLevel
	if level == 0 {
		level = version
	}
	name := p.ProtocolName
	if name == "" {
		name = "MQTT"
		if level == V31 {
			name = "MQIsdp"
		}
	}
	rl, err := stringSize(CONNECT, "protocol name", name)
	if err != nil {
		return dst, err
	}
	rl += 4 // level, flags, keep alive
	var psize, wpsize int
	if level == V5 {
		if psize, err = p.Properties.size(&connectProps); err != nil {
			return dst, err
		}
		rl += propsSize(psize)
	}
	n, err := stringSize(CONNECT, "client identifier", p.ClientID)
	if err != nil {
		return dst, err
	}
	rl += n
	var flags byte
	if p.CleanStart {
		flags |= connectCleanStart
	}
	if w := p.Will; w != nil {
		if w.QoS > 2 {
			// [MQTT-3.1.2-14] Will QoS 3 is malformed.
			return dst, errf(MalformedPacket, "CONNECT will QoS %d", w.QoS)
		}
		flags |= connectWill | w.QoS<<3
		if w.Retain {
			flags |= connectWillRetain
		}
		if level == V5 {
			if wpsize, err = w.Properties.size(&willProps); err != nil {
				return dst, err
			}
			rl += propsSize(wpsize)
		}
		if n, err = stringSize(CONNECT, "will topic", w.Topic); err != nil {
			return dst, err
		}
		rl += n
		if n, err = binarySize(CONNECT, "will payload", w.Payload); err != nil {
			return dst, err
		}
		rl += n
	}
	if p.UsernameFlag {
		flags |= connectUsername
		if n, err = stringSize(CONNECT, "user name", p.Username); err != nil {
			return dst, err
		}
		rl += n
	}
	if p.PasswordFlag {
		if (level == V31 || level == V311) && !p.UsernameFlag {
			// [MQTT-3.1.2-22] before v5 a password needs a user name.
			return dst, errf(MalformedPacket, "CONNECT level %d: password without user name", level)
		}
		flags |= connectPassword
		if n, err = binarySize(CONNECT, "password", p.Password); err != nil {
			return dst, err
		}
		rl += n
	}

	if dst, err = appendFixedHeader(dst, byte(CONNECT)<<4, rl); err != nil {
		return dst, err
	}
	dst = appendString(dst, name)
	dst = append(dst, level, flags)
	dst = appendUint16(dst, p.KeepAlive)
	if level == V5 {
		dst = p.Properties.append(dst, psize)
	}
	dst = appendString(dst, p.ClientID)
	if w := p.Will; w != nil {
		if level == V5 {
			dst = w.Properties.append(dst, wpsize)
		}
		dst = appendString(dst, w.Topic)
		dst = appendBinary(dst, w.Payload)
	}
	if p.UsernameFlag {
		dst = appendString(dst, p.Username)
	}
	if p.PasswordFlag {
		dst = appendBinary(dst, p.Password)
	}
	return dst, nil
}

// decodeConnect decodes a CONNECT by its own protocol level. For a known
// protocol name with an unsupported level it returns the Connect with
// ProtocolName and ProtocolLevel set together with an error wrapping
// UnsupportedProtocolVersion, so the server can answer CONNACK 0x01 (0x84
// in v5) before closing.
func decodeConnect(body []byte) (Packet, error) {
	d := decoder{b: body, t: CONNECT}
	name, err := d.str("protocol name")
	if err != nil {
		return nil, err
	}
	level, err := d.u8("protocol level")
	if err != nil {
		return nil, err
	}
	switch {
	case name == "MQTT" && (level == V311 || level == V5), name == "MQIsdp" && level == V31:
	case name == "MQTT" || name == "MQIsdp":
		// [MQTT-3.1.2-2] unsupported level: CONNACK 0x01, then close.
		return &Connect{ProtocolName: name, ProtocolLevel: level},
			errf(UnsupportedProtocolVersion, "CONNECT protocol %q level %d is not supported", name, level)
	default:
		// [MQTT-3.1.2-1] not MQTT: close without CONNACK.
		return nil, errf(ProtocolError, "CONNECT protocol name %q is neither MQTT nor MQIsdp", name)
	}
	flags, err := d.u8("connect flags")
	if err != nil {
		return nil, err
	}
	if flags&connectReserved != 0 {
		// [MQTT-3.1.2-3] the reserved flag must be 0.
		return nil, errf(MalformedPacket, "CONNECT reserved flag bit 0 is set")
	}
	willQoS := flags & connectWillQoS >> 3
	if flags&connectWill == 0 {
		if willQoS != 0 {
			// [MQTT-3.1.2-11] [MQTT-3.1.2-13] no will: Will QoS must be 0.
			return nil, errf(MalformedPacket, "CONNECT will QoS %d without the will flag", willQoS)
		}
		if flags&connectWillRetain != 0 {
			// [MQTT-3.1.2-11] [MQTT-3.1.2-15] no will: Will Retain must be 0.
			return nil, errf(MalformedPacket, "CONNECT will retain without the will flag")
		}
	} else if willQoS == 3 {
		// [MQTT-3.1.2-14] Will QoS must not be 3.
		return nil, errf(MalformedPacket, "CONNECT will QoS 3")
	}
	if level < V5 && flags&connectPassword != 0 && flags&connectUsername == 0 {
		// [MQTT-3.1.2-22] before v5, no user name means no password.
		return nil, errf(MalformedPacket, "CONNECT password flag without user name flag")
	}

	p := &Connect{
		ProtocolName:  name,
		ProtocolLevel: level,
		CleanStart:    flags&connectCleanStart != 0,
		UsernameFlag:  flags&connectUsername != 0,
		PasswordFlag:  flags&connectPassword != 0,
	}
	if p.KeepAlive, err = d.u16("keep alive"); err != nil {
		return nil, err
	}
	if level == V5 {
		if err = decodeProperties(&d, &connectProps, &p.Properties); err != nil {
			return nil, err
		}
	}
	// [MQTT-3.1.3-4] the client identifier is a UTF-8 string; its length
	// and characters are the server's to judge ([MQTT-3.1.3-5]).
	if p.ClientID, err = d.str("client identifier"); err != nil {
		return nil, err
	}
	if flags&connectWill != 0 {
		w := &Will{QoS: willQoS, Retain: flags&connectWillRetain != 0}
		if level == V5 {
			if err = decodeProperties(&d, &willProps, &w.Properties); err != nil {
				return nil, err
			}
		}
		// [MQTT-3.1.3-10] the will topic is a UTF-8 string.
		if w.Topic, err = d.str("will topic"); err != nil {
			return nil, err
		}
		if w.Payload, err = d.bin("will payload"); err != nil {
			return nil, err
		}
		p.Will = w
	}
	if p.UsernameFlag {
		// [MQTT-3.1.3-11] the user name is a UTF-8 string.
		if p.Username, err = d.str("user name"); err != nil {
			return nil, err
		}
	}
	if p.PasswordFlag {
		// The password is binary data, not a string: no UTF-8 rules.
		if p.Password, err = d.bin("password"); err != nil {
			return nil, err
		}
	}
	if err = d.end(); err != nil {
		return nil, err
	}
	return p, nil
}
