package cluster

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

// A forwarded message is one NATS message: its subject is the topic's
// (Subject), its data this encoding.
//
//	version  byte (wireVersion)
//	origin   8 bytes: the forwarding node's instance, random per start
//	seq      uvarint: the origin's count, for dropping the copies NATS
//	         delivers when one message matches several of a node's subjects
//	flags    byte: QoS (2 bits), retain, payload format, correlation data, expiry
//	from     string: the publishing client, for No Local
//	topic    string
//	expiry   varint Unix ns, when flagged: counted from the original publish
//	format   byte, when flagged
//	corr     bytes, when flagged
//	content type, response topic: strings
//	user properties: uvarint count, then key and value strings
//	payload  the rest
//
// Strings and byte slices are a uvarint length and the bytes.
const wireVersion = 1

const (
	flagRetain = 1 << (iota + 2)
	flagPayloadFormat
	flagCorrelation
	flagExpiry
)

var errWire = errors.New("cluster: malformed forwarded message")

// envelope is a forwarded message with what travels around it.
type envelope struct {
	origin uint64
	seq    uint64
	from   string
	msg    *store.Message
}

func appendEnvelope(dst []byte, e *envelope) []byte {
	m := e.msg
	p := &m.Properties
	dst = append(dst, wireVersion)
	dst = binary.BigEndian.AppendUint64(dst, e.origin)
	dst = binary.AppendUvarint(dst, e.seq)
	flags := m.QoS & 3
	if m.Retain {
		flags |= flagRetain
	}
	if p.PayloadFormat != nil {
		flags |= flagPayloadFormat
	}
	if p.CorrelationData != nil {
		flags |= flagCorrelation
	}
	if !m.Expiry.IsZero() {
		flags |= flagExpiry
	}
	dst = append(dst, flags)
	dst = appendString(dst, e.from)
	dst = appendString(dst, m.Topic)
	if !m.Expiry.IsZero() {
		dst = binary.AppendVarint(dst, m.Expiry.UnixNano())
	}
	if p.PayloadFormat != nil {
		dst = append(dst, *p.PayloadFormat)
	}
	if p.CorrelationData != nil {
		dst = appendString(dst, string(p.CorrelationData))
	}
	dst = appendString(dst, p.ContentType)
	dst = appendString(dst, p.ResponseTopic)
	dst = binary.AppendUvarint(dst, uint64(len(p.User)))
	for _, u := range p.User {
		dst = appendString(appendString(dst, u.Key), u.Value)
	}
	return append(dst, m.Payload...)
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// decodeEnvelope decodes a forwarded message. The message's byte slices
// alias b.
func decodeEnvelope(b []byte) (*envelope, error) {
	d := decoder{b: b}
	if d.byte() != wireVersion || len(d.b) < 8 {
		return nil, errWire
	}
	e := &envelope{origin: binary.BigEndian.Uint64(d.b), msg: &store.Message{}}
	d.b = d.b[8:]
	e.seq = d.uvarint()
	flags := d.byte()
	m := e.msg
	p := &m.Properties
	m.QoS, m.Retain = flags&3, flags&flagRetain != 0
	e.from = d.string()
	m.Topic = d.string()
	if flags&flagExpiry != 0 {
		v, n := binary.Varint(d.b)
		if n <= 0 {
			return nil, errWire
		}
		d.b = d.b[n:]
		m.Expiry = time.Unix(0, v)
	}
	if flags&flagPayloadFormat != 0 {
		v := d.byte()
		p.PayloadFormat = &v
	}
	if flags&flagCorrelation != 0 {
		p.CorrelationData = d.bytes()
	}
	p.ContentType = d.string()
	p.ResponseTopic = d.string()
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each pair takes at least two bytes
		return nil, errWire
	}
	for range n {
		p.User = append(p.User, packet.UserProperty{Key: d.string(), Value: d.string()})
	}
	if d.bad || m.QoS > 2 {
		return nil, errWire
	}
	m.Payload = d.b
	return e, nil
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }
