package pebble

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

// Every value starts with a CRC-32C of the rest and a format byte, so that
// a damaged or foreign record is detected rather than decoded into wrong
// state.
const (
	headerLen     = 5
	formatVersion = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var errCorrupt = errors.New("corrupt record")

// begin starts a value in dst.
func begin(dst []byte) []byte { return append(dst, 0, 0, 0, 0, formatVersion) }

// seal writes the checksum of the value that starts at dst[start].
func seal(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+4:], crcTable))
	return dst
}

// unseal checks a value's header and returns its body.
func unseal(v []byte) (decoder, error) {
	if len(v) < headerLen || binary.BigEndian.Uint32(v) != crc32.Checksum(v[4:], crcTable) {
		return decoder{}, errCorrupt
	}
	if v[4] != formatVersion {
		return decoder{}, errors.New("unknown record format")
	}
	return decoder{b: v[headerLen:]}, nil
}

func appendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

func appendBytes(dst, b []byte) []byte {
	return append(appendUvarint(dst, uint64(len(b))), b...)
}

func appendString(dst []byte, s string) []byte {
	return append(appendUvarint(dst, uint64(len(s))), s...)
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// appendTime writes t as Unix nanoseconds, 0 for the zero time.
func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return appendUvarint(dst, 0)
	}
	return appendUvarint(dst, uint64(t.UnixNano()))
}

// decoder reads a value body; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bool() bool { return d.byte() != 0 }

// bytes returns a copy (the iterator's buffer is reused), nil when empty.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.err = errCorrupt
		return nil
	}
	if n == 0 {
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.err = errCorrupt
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

func (d *decoder) time() time.Time {
	if v := d.uvarint(); v != 0 {
		return time.Unix(0, int64(v)).UTC()
	}
	return time.Time{}
}

// done reports the first error, or trailing bytes as corruption.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		return errCorrupt
	}
	return d.err
}

// Message properties present, as bits.
const (
	hasPayloadFormat = 1 << iota
	hasCorrelationData
)

func appendMessage(dst []byte, m *store.Message) []byte {
	dst = appendString(dst, m.Topic)
	dst = appendBytes(dst, m.Payload)
	dst = append(dst, m.QoS)
	dst = appendBool(dst, m.Retain)
	dst = appendTime(dst, m.Expiry)
	p := &m.Properties
	var has byte
	if p.PayloadFormat != nil {
		has |= hasPayloadFormat
	}
	if p.CorrelationData != nil {
		has |= hasCorrelationData
	}
	dst = append(dst, has)
	if p.PayloadFormat != nil {
		dst = append(dst, *p.PayloadFormat)
	}
	if p.CorrelationData != nil {
		dst = appendBytes(dst, p.CorrelationData)
	}
	dst = appendString(dst, p.ContentType)
	dst = appendString(dst, p.ResponseTopic)
	dst = appendUvarint(dst, uint64(len(p.User)))
	for _, u := range p.User {
		dst = appendString(appendString(dst, u.Key), u.Value)
	}
	return dst
}

func (d *decoder) message() *store.Message {
	m := &store.Message{Topic: d.string(), Payload: d.bytes(), QoS: d.byte(), Retain: d.bool(), Expiry: d.time()}
	has := d.byte()
	p := &m.Properties
	if has&hasPayloadFormat != 0 {
		v := d.byte()
		p.PayloadFormat = &v
	}
	if has&hasCorrelationData != 0 {
		if p.CorrelationData = d.bytes(); p.CorrelationData == nil {
			p.CorrelationData = []byte{} // present but empty
		}
	}
	p.ContentType = d.string()
	p.ResponseTopic = d.string()
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		p.User = append(p.User, packet.UserProperty{Key: d.string(), Value: d.string()})
	}
	return m
}

func appendSession(dst []byte, s *store.Session) []byte {
	start := len(dst)
	dst = begin(dst)
	dst = appendString(dst, s.ClientID)
	dst = append(dst, s.Version)
	dst = appendUvarint(dst, uint64(s.ExpiryInterval))
	dst = appendTime(dst, s.Expiry)
	dst = appendString(dst, s.Username)
	dst = appendBool(dst, s.Will != nil)
	if s.Will != nil {
		dst = appendMessage(dst, s.Will)
		dst = appendTime(dst, s.WillAt)
	}
	// Appended later; a record without it is from before, when a
	// username was always given with the flag.
	var id byte
	if s.UsernameFlag {
		id |= identityUsernameFlag
	}
	if s.CertUsername {
		id |= identityCert
	}
	dst = append(dst, id)
	return seal(dst, start)
}

// Identity bits of a session record.
const (
	identityUsernameFlag = 1 << iota
	identityCert
)

func decodeSession(v []byte) (store.Session, error) {
	d, err := unseal(v)
	if err != nil {
		return store.Session{}, err
	}
	s := store.Session{ClientID: d.string(), Version: d.byte(), ExpiryInterval: uint32(d.uvarint()), Expiry: d.time(), Username: d.string()}
	if d.bool() {
		s.Will = d.message()
		s.WillAt = d.time()
	}
	s.UsernameFlag = s.Username != ""
	if len(d.b) > 0 {
		id := d.byte()
		s.UsernameFlag, s.CertUsername = id&identityUsernameFlag != 0, id&identityCert != 0
	}
	return s, d.done()
}

func appendSubscription(dst []byte, s *store.Subscription) []byte {
	start := len(dst)
	dst = begin(dst)
	dst = appendString(dst, s.Filter)
	dst = append(dst, s.QoS)
	dst = appendBool(dst, s.NoLocal)
	dst = appendBool(dst, s.RetainAsPublished)
	dst = append(dst, s.RetainHandling)
	dst = appendUvarint(dst, uint64(s.SubscriptionID))
	return seal(dst, start)
}

func decodeSubscription(v []byte) (store.Subscription, error) {
	d, err := unseal(v)
	if err != nil {
		return store.Subscription{}, err
	}
	var s store.Subscription
	s.Filter = d.string()
	s.QoS = d.byte()
	s.NoLocal = d.bool()
	s.RetainAsPublished = d.bool()
	s.RetainHandling = d.byte()
	s.SubscriptionID = uint32(d.uvarint())
	return s, d.done()
}

// How an outbound record holds its message, in the byte after the
// shared subscription: inline (the only way before message bodies, and
// still for a message no other record shares), or as a reference to a
// body record m<id>.
const (
	outboundNoMessage = iota
	outboundInline
	outboundRef
)

// appendOutbound encodes o with a reference to body ref, or with its
// message inline when ref is 0.
func appendOutbound(dst []byte, o *store.Outbound, ref uint64) []byte {
	start := len(dst)
	return finishOutbound(appendOutboundHead(dst, o), start, o.Message, ref)
}

// appendOutboundHead encodes all of o but its message: the head a record
// held back until its batch is committed keeps (bodies.go).
func appendOutboundHead(dst []byte, o *store.Outbound) []byte {
	dst = begin(dst)
	dst = appendUvarint(dst, o.Seq)
	dst = appendUvarint(dst, uint64(o.PacketID))
	dst = append(dst, o.State, o.QoS)
	dst = appendBool(dst, o.Retain)
	dst = appendUvarint(dst, uint64(len(o.SubIDs)))
	for _, id := range o.SubIDs {
		dst = appendUvarint(dst, uint64(id))
	}
	dst = appendString(dst, o.SharedGroup)
	return appendString(dst, o.SharedFilter)
}

// finishOutbound appends the message, by reference ref or else inline,
// to the head that starts at dst[start], and seals the record.
func finishOutbound(dst []byte, start int, m *store.Message, ref uint64) []byte {
	switch {
	case ref != 0:
		dst = appendUvarint(append(dst, outboundRef), ref)
	case m != nil:
		dst = appendMessage(append(dst, outboundInline), m)
	default:
		dst = append(dst, outboundNoMessage)
	}
	return seal(dst, start)
}

// decodeOutbound decodes an outbound record. A record that refers to a
// body returns its id, not 0, and no Message: the caller looks it up.
func decodeOutbound(v []byte) (o store.Outbound, ref uint64, err error) {
	d, err := unseal(v)
	if err != nil {
		return store.Outbound{}, 0, err
	}
	o = store.Outbound{Seq: d.uvarint(), PacketID: uint16(d.uvarint()), State: d.byte(), QoS: d.byte(), Retain: d.bool()}
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		o.SubIDs = append(o.SubIDs, uint32(d.uvarint()))
	}
	o.SharedGroup = d.string()
	o.SharedFilter = d.string()
	switch d.byte() {
	case outboundNoMessage:
	case outboundInline:
		o.Message = d.message()
	case outboundRef:
		if ref = d.uvarint(); ref == 0 {
			d.err = errCorrupt
		}
	default:
		d.err = errCorrupt
	}
	return o, ref, d.done()
}

// appendMessageRecord encodes a message on its own: a retained message or
// a message body.
func appendMessageRecord(dst []byte, m *store.Message) []byte {
	start := len(dst)
	return seal(appendMessage(begin(dst), m), start)
}

func decodeMessageRecord(v []byte) (*store.Message, error) {
	d, err := unseal(v)
	if err != nil {
		return nil, err
	}
	m := d.message()
	return m, d.done()
}

// appendEmpty is the value of a record whose key says everything.
func appendEmpty(dst []byte) []byte { return seal(begin(dst), len(dst)) }
