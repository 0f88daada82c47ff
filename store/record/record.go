package record

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/store"
)

// ErrCorrupt is a record that does not decode.
var ErrCorrupt = errors.New("store: malformed record")

func AppendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

func AppendBytes(dst, b []byte) []byte {
	return append(AppendUvarint(dst, uint64(len(b))), b...)
}

func AppendString(dst []byte, s string) []byte {
	return append(AppendUvarint(dst, uint64(len(s))), s...)
}

func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// AppendTime writes t as Unix nanoseconds, 0 for the zero time.
func AppendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return AppendUvarint(dst, 0)
	}
	return AppendUvarint(dst, uint64(t.UnixNano()))
}

// Decoder reads a record; the first error sticks.
type Decoder struct {
	B   []byte // what is left to read
	Err error  // the first error
}

func (d *Decoder) Uvarint() uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.Err = ErrCorrupt
		return 0
	}
	d.B = d.B[n:]
	return v
}

func (d *Decoder) Byte() byte {
	if d.Err != nil || len(d.B) == 0 {
		d.Err = ErrCorrupt
		return 0
	}
	v := d.B[0]
	d.B = d.B[1:]
	return v
}

func (d *Decoder) Bool() bool { return d.Byte() != 0 }

// Bytes returns a copy (a store may reuse the buffer it read), nil when
// empty.
func (d *Decoder) Bytes() []byte {
	n := d.Uvarint()
	if d.Err != nil || uint64(len(d.B)) < n {
		d.Err = ErrCorrupt
		return nil
	}
	if n == 0 {
		return nil
	}
	v := append([]byte(nil), d.B[:n]...)
	d.B = d.B[n:]
	return v
}

func (d *Decoder) String() string {
	n := d.Uvarint()
	if d.Err != nil || uint64(len(d.B)) < n {
		d.Err = ErrCorrupt
		return ""
	}
	v := string(d.B[:n])
	d.B = d.B[n:]
	return v
}

func (d *Decoder) Time() time.Time {
	if v := d.Uvarint(); v != 0 {
		return time.Unix(0, int64(v)).UTC()
	}
	return time.Time{}
}

// Done reports the first error, or trailing bytes as corruption.
func (d *Decoder) Done() error {
	if d.Err == nil && len(d.B) != 0 {
		return ErrCorrupt
	}
	return d.Err
}

// Message properties present, as bits.
const (
	hasPayloadFormat = 1 << iota
	hasCorrelationData
)

func AppendMessage(dst []byte, m *store.Message) []byte {
	dst = AppendString(dst, m.Topic)
	dst = AppendBytes(dst, m.Payload)
	dst = append(dst, m.QoS)
	dst = AppendBool(dst, m.Retain)
	dst = AppendTime(dst, m.Expiry)
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
		dst = AppendBytes(dst, p.CorrelationData)
	}
	dst = AppendString(dst, p.ContentType)
	dst = AppendString(dst, p.ResponseTopic)
	dst = AppendUvarint(dst, uint64(len(p.User)))
	for _, u := range p.User {
		dst = AppendString(AppendString(dst, u.Key), u.Value)
	}
	return dst
}

func (d *Decoder) Message() *store.Message {
	m := &store.Message{Topic: d.String(), Payload: d.Bytes(), QoS: d.Byte(), Retain: d.Bool(), Expiry: d.Time()}
	has := d.Byte()
	p := &m.Properties
	if has&hasPayloadFormat != 0 {
		v := d.Byte()
		p.PayloadFormat = &v
	}
	if has&hasCorrelationData != 0 {
		if p.CorrelationData = d.Bytes(); p.CorrelationData == nil {
			p.CorrelationData = []byte{} // present but empty
		}
	}
	p.ContentType = d.String()
	p.ResponseTopic = d.String()
	n := d.Uvarint()
	for i := uint64(0); i < n && d.Err == nil; i++ {
		p.User = append(p.User, packet.UserProperty{Key: d.String(), Value: d.String()})
	}
	return m
}

// AppendSubscription appends s, for (*Decoder).Subscription.
func AppendSubscription(dst []byte, s *store.Subscription) []byte {
	dst = AppendString(dst, s.Filter)
	dst = append(dst, s.QoS)
	dst = AppendBool(dst, s.NoLocal)
	dst = AppendBool(dst, s.RetainAsPublished)
	dst = append(dst, s.RetainHandling)
	return AppendUvarint(dst, uint64(s.SubscriptionID))
}

func (d *Decoder) Subscription() store.Subscription {
	var s store.Subscription
	s.Filter = d.String()
	s.QoS = d.Byte()
	s.NoLocal = d.Bool()
	s.RetainAsPublished = d.Bool()
	s.RetainHandling = d.Byte()
	s.SubscriptionID = uint32(d.Uvarint())
	return s
}

// AppendInboundToken writes the value of an inbound QoS 2 record: its
// token, nothing when 0 (what records had before tokens).
func AppendInboundToken(dst []byte, token uint64) []byte {
	if token == 0 {
		return dst
	}
	return AppendUvarint(dst, token)
}

// InboundToken reads what AppendInboundToken wrote, to the end.
func (d *Decoder) InboundToken() (uint64, error) {
	var t uint64
	if len(d.B) > 0 {
		t = d.Uvarint()
	}
	return t, d.Done()
}
