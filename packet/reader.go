package packet

import (
	"bufio"
	"io"
)

// resolveVersion maps the connection's protocol level to the one a packet
// of type t decodes by: before CONNECT (0) packets other than CONNECT are
// read as 3.1.1; CONNECT always decodes by its own level.
func resolveVersion(t Type, version byte) byte {
	if version == 0 && t != CONNECT {
		return V311
	}
	return version
}

// checkSize refuses a packet larger than maxSize (0: only the protocol's
// own limit, which a four-byte remaining length already enforces).
func checkSize(h byte, total int, maxSize uint32) error {
	if maxSize != 0 && uint64(total) > uint64(maxSize) {
		return errf(PacketTooLarge, "%s of %d bytes exceeds the maximum packet size %d", Type(h>>4), total, maxSize)
	}
	return nil
}

// ReadPacket reads one whole packet from r. version is the connection's
// negotiated protocol level, 0 before CONNECT. A packet larger than maxSize
// bytes (0: no limit but the protocol's) is refused with an error wrapping
// PacketTooLarge before any of its body is read or allocated.
//
// io.EOF before the first byte is returned as is; EOF inside a packet is
// io.ErrUnexpectedEOF. Other read errors are returned unchanged. Decode
// errors wrap MalformedPacket, ProtocolError or UnsupportedProtocolVersion
// (which comes with the partly decoded *Connect).
//
// The body is one allocation that PUBLISH payloads and other binary fields
// alias; packets with no binary fields are decoded straight from r's buffer
// when they fit in it, and allocate no body at all.
func ReadPacket(r *bufio.Reader, version byte, maxSize uint32) (Packet, error) {
	h, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	t := Type(h >> 4)
	version = resolveVersion(t, version)
	if err := checkHeader(h, version); err != nil {
		return nil, err
	}
	rl, n, err := readVarint(r)
	if err != nil {
		return nil, err
	}
	if err := checkSize(h, 1+n+int(rl), maxSize); err != nil {
		return nil, err
	}
	if rl == 0 {
		return decodeBody(h, nil, version)
	}
	if !aliasesBody(t) && int(rl) <= r.Size() {
		body, err := r.Peek(int(rl))
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		p, err := decodeBody(h, body, version)
		_, _ = r.Discard(int(rl)) // cannot fail: Peek returned rl bytes
		return p, err
	}
	body := make([]byte, rl)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, unexpectedEOF(err)
	}
	return decodeBody(h, body, version)
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// aliasesBody reports whether a decoded packet of type t may keep slices of
// its body (PUBLISH payload, CONNECT will payload and password, Correlation
// Data, Authentication Data). Others copy everything they keep, so their
// body may be a reused buffer.
func aliasesBody(t Type) bool {
	switch t {
	case CONNECT, CONNACK, PUBLISH, AUTH:
		return true
	}
	return false
}

// Decode decodes the body of a packet whose fixed header first byte is
// header. version is as for ReadPacket. The result's binary fields alias body.
func Decode(header byte, body []byte, version byte) (Packet, error) {
	version = resolveVersion(Type(header>>4), version)
	if err := checkHeader(header, version); err != nil {
		return nil, err
	}
	return decodeBody(header, body, version)
}

// DecodeBytes decodes the packet at the start of b and returns it with the
// number of bytes it took (the packet's whole length whenever its framing
// is complete, even if decoding its body failed). An empty b gives io.EOF
// and a b that ends inside the packet io.ErrUnexpectedEOF, so a caller can
// wait for more bytes. The result's binary fields alias b.
func DecodeBytes(b []byte, version byte, maxSize uint32) (Packet, int, error) {
	if len(b) == 0 {
		return nil, 0, io.EOF
	}
	h := b[0]
	version = resolveVersion(Type(h>>4), version)
	if err := checkHeader(h, version); err != nil {
		return nil, 0, err
	}
	rl, n := ConsumeVarint(b[1:])
	if n == 0 {
		return nil, 0, io.ErrUnexpectedEOF
	}
	if n < 0 {
		return nil, 0, errf(MalformedPacket, "remaining length has a fifth byte; the maximum is four")
	}
	total := 1 + n + int(rl)
	if err := checkSize(h, total, maxSize); err != nil {
		return nil, 0, err
	}
	if len(b) < total {
		return nil, 0, io.ErrUnexpectedEOF
	}
	p, err := decodeBody(h, b[1+n:total:total], version)
	return p, total, err
}

// decodeBody decodes a body whose header checkHeader accepted for version.
func decodeBody(h byte, body []byte, version byte) (Packet, error) {
	switch t := Type(h >> 4); t {
	case CONNECT:
		return decodeConnect(body)
	case CONNACK:
		return decodeConnack(body, version)
	case PUBLISH:
		return decodePublish(h, body, version)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		return decodeAck(t, body, version)
	case SUBSCRIBE:
		return decodeSubscribe(body, version)
	case SUBACK:
		return decodeSuback(body, version)
	case UNSUBSCRIBE:
		return decodeUnsubscribe(body, version)
	case UNSUBACK:
		return decodeUnsuback(body, version)
	case PINGREQ, PINGRESP:
		return decodePing(t, body)
	default: // DISCONNECT, AUTH
		return decodeReasonProps(t, body, version)
	}
}
