package jsstore

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

// Every value starts with a format byte. JetStream checks the integrity
// of what it stores; the format byte tells a record of this store from a
// foreign or future one, and the decoders refuse trailing bytes.
const formatVersion = 1

var errCorrupt = errors.New("jsstore: malformed record")

func begin(dst []byte) []byte { return append(dst, formatVersion) }

func open(v []byte) (decoder, error) {
	if len(v) == 0 || v[0] != formatVersion {
		return decoder{}, errCorrupt
	}
	return decoder{b: v[1:]}, nil
}

func appendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

func appendBytes(dst, b []byte) []byte { return append(appendUvarint(dst, uint64(len(b))), b...) }

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

// decoder reads a value; the first error sticks.
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

// bytes returns a copy, nil when empty.
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

// encodeMessage is the value of an m.* or r.* key.
func encodeMessage(m *store.Message) []byte {
	return appendMessage(begin(make([]byte, 0, 32+len(m.Topic)+len(m.Payload))), m)
}

func decodeMessage(v []byte) (*store.Message, error) {
	d, err := open(v)
	if err != nil {
		return nil, err
	}
	m := d.message()
	return m, d.done()
}

// Session flags.
const (
	sessUsernameFlag = 1 << iota
	sessCert
	sessWill
)

// encodeSession is the value of an s.* key: the session and the
// generation its records live under.
func encodeSession(s *store.Session, gen string) []byte {
	dst := begin(make([]byte, 0, 64))
	dst = appendString(dst, gen)
	dst = appendString(dst, s.ClientID)
	dst = append(dst, s.Version)
	dst = appendUvarint(dst, uint64(s.ExpiryInterval))
	dst = appendTime(dst, s.Expiry)
	dst = appendString(dst, s.Username)
	var f byte
	if s.UsernameFlag {
		f |= sessUsernameFlag
	}
	if s.CertUsername {
		f |= sessCert
	}
	if s.Will != nil {
		f |= sessWill
	}
	dst = append(dst, f)
	if s.Will != nil {
		dst = appendMessage(dst, s.Will)
		dst = appendTime(dst, s.WillAt)
	}
	return dst
}

func decodeSession(v []byte) (store.Session, string, error) {
	d, err := open(v)
	if err != nil {
		return store.Session{}, "", err
	}
	gen := d.string()
	s := store.Session{ClientID: d.string(), Version: d.byte(), ExpiryInterval: uint32(d.uvarint()),
		Expiry: d.time(), Username: d.string()}
	f := d.byte()
	s.UsernameFlag, s.CertUsername = f&sessUsernameFlag != 0, f&sessCert != 0
	if f&sessWill != 0 {
		s.Will = d.message()
		s.WillAt = d.time()
	}
	if err := d.done(); err != nil {
		return store.Session{}, "", err
	}
	if !validGen(gen) {
		return store.Session{}, "", errCorrupt
	}
	return s, gen, nil
}

func encodeSubscription(s *store.Subscription) []byte {
	dst := begin(make([]byte, 0, 16+len(s.Filter)))
	dst = appendString(dst, s.Filter)
	dst = append(dst, s.QoS)
	dst = appendBool(dst, s.NoLocal)
	dst = appendBool(dst, s.RetainAsPublished)
	dst = append(dst, s.RetainHandling)
	dst = appendUvarint(dst, uint64(s.SubscriptionID))
	return dst
}

func decodeSubscription(v []byte) (store.Subscription, error) {
	d, err := open(v)
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

// encodeOutbound is the value of an outbound record: o without its
// message, which msgID names ("" for none).
func encodeOutbound(o *store.Outbound, msgID string) []byte {
	dst := begin(make([]byte, 0, 24+len(msgID)+len(o.SharedGroup)+len(o.SharedFilter)))
	dst = appendUvarint(dst, o.Seq)
	dst = appendUvarint(dst, uint64(o.PacketID))
	dst = append(dst, o.State, o.QoS)
	dst = appendBool(dst, o.Retain)
	dst = appendUvarint(dst, uint64(len(o.SubIDs)))
	for _, id := range o.SubIDs {
		dst = appendUvarint(dst, uint64(id))
	}
	dst = appendString(dst, o.SharedGroup)
	dst = appendString(dst, o.SharedFilter)
	dst = appendString(dst, msgID)
	return dst
}

func decodeOutbound(v []byte) (store.Outbound, string, error) {
	d, err := open(v)
	if err != nil {
		return store.Outbound{}, "", err
	}
	o := store.Outbound{Seq: d.uvarint(), PacketID: uint16(d.uvarint()), State: d.byte(), QoS: d.byte(), Retain: d.bool()}
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		o.SubIDs = append(o.SubIDs, uint32(d.uvarint()))
	}
	o.SharedGroup = d.string()
	o.SharedFilter = d.string()
	id := d.string()
	if err := d.done(); err != nil {
		return store.Outbound{}, "", err
	}
	if id != "" && !validMessageID(id) {
		return store.Outbound{}, "", errCorrupt
	}
	return o, id, nil
}

// inboundValue is the value of an inbound QoS 2 record: the key says
// everything.
var inboundValue = []byte{formatVersion}

func decodeInbound(v []byte) error {
	d, err := open(v)
	if err != nil {
		return err
	}
	return d.done()
}
