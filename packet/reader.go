package packet

import (
	"bufio"
	"fmt"
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
// The body is one buffer that PUBLISH payloads and other binary fields
// alias; packets with no binary fields are decoded straight from r's buffer
// when they fit in it, and allocate no body at all. The body's buffer is
// never sized from the declared length alone: it is allocated once r's
// buffer is full (or holds the whole body) and grows as the bytes arrive,
// so a peer that declares a large packet and sends little of it costs
// about what it sent.
func ReadPacket(r *bufio.Reader, version byte, maxSize uint32) (Packet, error) {
	return ReadPacketReserve(r, version, maxSize, nil)
}

// ReadPacketReserve is ReadPacket that first asks reserve (if not nil) for
// the memory of a body that must be read into a buffer of its own: it is
// called at most once per packet, with the body bytes not yet buffered in
// r, before any of them is read. An error from reserve ends the read and
// is returned wrapped. Whatever reserve accounted for is the caller's to
// release once ReadPacketReserve has returned, with or without an error.
func ReadPacketReserve(r *bufio.Reader, version byte, maxSize uint32, reserve func(n int) error) (Packet, error) {
	return readPacket(r, version, maxSize, reserve, nil)
}

// Scratch is where ReadPacketScratch decodes the packets a busy connection
// reads most, PUBLISH and the acknowledgements (PUBACK, PUBREC, PUBREL,
// PUBCOMP), instead of allocating each: such a packet is valid only
// until the next read with the same Scratch. What its fields hold (the
// topic, the payload, the properties) is never reused and may be kept;
// a topic the same as the last PUBLISH's is that same string, not a new
// copy. The zero value is ready to use.
type Scratch struct {
	publish Publish
	ack     ackFields
	topic   string // of the last PUBLISH
	// publishProps and ackProps say that a v5 packet was decoded into
	// publish or ack, which may have left properties there.
	publishProps, ackProps bool
}

// Packets are not zeroed as a whole for reuse: they hold pointers, and
// while the collector marks, clearing the 344 bytes of Properties with
// its write barriers cost as much as decoding the rest of a PUBLISH.
// The decoders set every other field; the properties are cleared only
// after a v5 packet.

// takePublish returns s.publish for decoding a PUBLISH of version into,
// its properties zero.
func (s *Scratch) takePublish(version byte) *Publish {
	if s.publishProps {
		s.publish.Properties = Properties{}
	}
	s.publishProps = version == V5
	return &s.publish
}

// takeAck returns s.ack for decoding an acknowledgement of version into,
// its properties zero.
func (s *Scratch) takeAck(version byte) *ackFields {
	if s.ackProps {
		s.ack.Properties = Properties{}
	}
	s.ackProps = version == V5
	return &s.ack
}

// ReadPacketScratch is ReadPacket decoding into s (see Scratch).
func ReadPacketScratch(r *bufio.Reader, version byte, maxSize uint32, s *Scratch) (Packet, error) {
	return readPacket(r, version, maxSize, nil, s)
}

// readPacket is ReadPacketReserve decoding into s when it is not nil.
func readPacket(r *bufio.Reader, version byte, maxSize uint32, reserve func(n int) error, s *Scratch) (Packet, error) {
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
		return decodeBody(h, nil, version, s)
	}
	if !aliasesBody(t) && int(rl) <= r.Size() {
		body, err := r.Peek(int(rl))
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		p, err := decodeBody(h, body, version, s)
		_, _ = r.Discard(int(rl)) // cannot fail: Peek returned rl bytes
		return p, err
	}
	if need := int(rl) - r.Buffered(); reserve != nil && need > 0 {
		if err := reserve(need); err != nil {
			return nil, fmt.Errorf("packet: %s of %d bytes: %w", t, 1+n+int(rl), err)
		}
	}
	body, err := readBody(r, int(rl))
	if err != nil {
		return nil, err
	}
	return decodeBody(h, body, version, s)
}

// growStart is the smallest buffer a body that does not fit in the
// reader's buffer starts from; it doubles from there as bytes arrive.
const growStart = 4 << 10

// readBody reads a body of n bytes into a buffer of its own, of capacity
// n. The buffer is allocated once r's buffer is full or holds the whole
// body (those bytes are paid for already) and grows by doubling as more
// arrive: reading a large body costs about twice its size in allocations,
// and a body that stops arriving holds at most three times what was sent
// (or growStart).
func readBody(r *bufio.Reader, n int) ([]byte, error) {
	if _, err := r.Peek(min(n, r.Size())); err != nil {
		return nil, unexpectedEOF(err)
	}
	body := make([]byte, 0, min(n, max(r.Buffered(), growStart)))
	for len(body) < n {
		if len(body) == cap(body) {
			next := 2 * cap(body)
			if next >= n/3*2 {
				next = n // one step rather than a last small one
			}
			grown := make([]byte, len(body), next)
			copy(grown, body)
			body = grown
		}
		k, err := r.Read(body[len(body):cap(body)])
		body = body[:len(body)+k]
		if err != nil && len(body) < n {
			return nil, unexpectedEOF(err)
		}
	}
	return body, nil
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
	return decodeBody(header, body, version, nil)
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
	p, err := decodeBody(h, b[1+n:total:total], version, nil)
	return p, total, err
}

// decodeBody decodes a body whose header checkHeader accepted for version,
// a PUBLISH or an acknowledgement into s if it is not nil.
func decodeBody(h byte, body []byte, version byte, s *Scratch) (Packet, error) {
	switch t := Type(h >> 4); t {
	case CONNECT:
		return decodeConnect(body)
	case CONNACK:
		return decodeConnack(body, version)
	case PUBLISH:
		var p *Publish
		var lastTopic *string
		if s != nil {
			p, lastTopic = s.takePublish(version), &s.topic
		} else {
			p = new(Publish)
		}
		if err := decodePublish(p, h, body, version, lastTopic); err != nil {
			return nil, err
		}
		return p, nil
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		var a *ackFields
		if s != nil {
			a = s.takeAck(version)
		} else {
			a = new(ackFields)
		}
		return decodeAck(a, t, body, version)
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
