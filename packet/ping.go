package packet

// Append appends the two-byte PINGREQ.
func (*Pingreq) Append(dst []byte, _ byte) ([]byte, error) {
	return append(dst, byte(PINGREQ)<<4, 0), nil
}

// Append appends the two-byte PINGRESP.
func (*Pingresp) Append(dst []byte, _ byte) ([]byte, error) {
	return append(dst, byte(PINGRESP)<<4, 0), nil
}

// decodePing decodes PINGREQ or PINGRESP, which have no body at all.
func decodePing(t Type, body []byte) (Packet, error) {
	if len(body) != 0 {
		return nil, errf(MalformedPacket, "%s with remaining length %d, want 0", t, len(body))
	}
	if t == PINGREQ {
		return &Pingreq{}, nil
	}
	return &Pingresp{}, nil
}
