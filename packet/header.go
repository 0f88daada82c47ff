package packet

import "slices"

// checkHeader validates the fixed header's first byte: the packet type and
// its flags. It runs before the body is read, so a bad first byte costs
// nothing more. version is already resolved (0 handled by the caller).
func checkHeader(h byte, version byte) error {
	t := Type(h >> 4)
	flags := h & 0x0F
	switch t {
	case 0:
		// Type 0 is reserved ("Forbidden") in every version.
		return errf(MalformedPacket, "reserved packet type 0")
	case AUTH:
		if version != V5 {
			// Type 15 is reserved before MQTT 5.
			return errf(MalformedPacket, "packet type 15 (AUTH) is reserved before MQTT 5")
		}
	case PUBLISH:
		qos := flags >> 1 & 3
		if qos == 3 {
			// [MQTT-3.3.1-4] A PUBLISH must not have both QoS bits set.
			return errf(MalformedPacket, "PUBLISH with QoS 3")
		}
		if qos == 0 && flags&0x08 != 0 {
			// [MQTT-3.3.1-2] DUP must be 0 for QoS 0 messages.
			return errf(MalformedPacket, "PUBLISH with DUP set at QoS 0")
		}
		return nil
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE:
		// MQTT 3.1 sent these "at QoS 1" and set DUP on a re-delivery; accept
		// that DUP bit from 3.1 peers (and ignore it) for interoperability.
		if version == V31 && flags == 0b1010 {
			return nil
		}
		if flags != 0b0010 {
			// [MQTT-2.2.2-1] [MQTT-2.2.2-2] reserved flag bits must be 0,0,1,0.
			return errf(MalformedPacket, "%s fixed header flags 0x%X, want 0x2", t, flags)
		}
		return nil
	}
	if flags != 0 {
		// [MQTT-2.2.2-1] [MQTT-2.2.2-2] reserved flag bits must be 0.
		return errf(MalformedPacket, "%s fixed header flags 0x%X, want 0", t, flags)
	}
	return nil
}

// appendFixedHeader checks the remaining length, grows dst once for the
// whole packet and appends the first byte and the remaining length. On
// error dst is returned unchanged.
func appendFixedHeader(dst []byte, h byte, rl int) ([]byte, error) {
	if rl > MaxVarint {
		return dst, errf(PacketTooLarge, "%s remaining length %d exceeds the maximum %d", Type(h>>4), rl, MaxVarint)
	}
	dst = slices.Grow(dst, 1+VarintLen(uint32(rl))+rl)
	dst = append(dst, h)
	return AppendVarint(dst, uint32(rl)), nil
}

// packetSize is the whole wire size of a packet with remaining length rl
// (at most MaxVarint).
func packetSize(rl int) int {
	return 1 + VarintLen(uint32(rl)) + rl
}
