package pebble

import (
	"encoding/binary"
	"errors"
	rec "github.com/ternmq/tern/store/record"
	"hash/crc32"

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

var errCorrupt = rec.ErrCorrupt

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
	return decoder{B: v[headerLen:]}, nil
}

// The encoding of the parts is package store/record's.
var (
	appendUvarint = rec.AppendUvarint
	appendBytes   = rec.AppendBytes
	appendString  = rec.AppendString
	appendBool    = rec.AppendBool
	appendTime    = rec.AppendTime
	appendMessage = rec.AppendMessage
)

type decoder = rec.Decoder

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
	s := store.Session{ClientID: d.String(), Version: d.Byte(), ExpiryInterval: uint32(d.Uvarint()), Expiry: d.Time(), Username: d.String()}
	if d.Bool() {
		s.Will = d.Message()
		s.WillAt = d.Time()
	}
	s.UsernameFlag = s.Username != ""
	if len(d.B) > 0 {
		id := d.Byte()
		s.UsernameFlag, s.CertUsername = id&identityUsernameFlag != 0, id&identityCert != 0
	}
	return s, d.Done()
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
	s.Filter = d.String()
	s.QoS = d.Byte()
	s.NoLocal = d.Bool()
	s.RetainAsPublished = d.Bool()
	s.RetainHandling = d.Byte()
	s.SubscriptionID = uint32(d.Uvarint())
	return s, d.Done()
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
	o = store.Outbound{Seq: d.Uvarint(), PacketID: uint16(d.Uvarint()), State: d.Byte(), QoS: d.Byte(), Retain: d.Bool()}
	n := d.Uvarint()
	for i := uint64(0); i < n && d.Err == nil; i++ {
		o.SubIDs = append(o.SubIDs, uint32(d.Uvarint()))
	}
	o.SharedGroup = d.String()
	o.SharedFilter = d.String()
	switch d.Byte() {
	case outboundNoMessage:
	case outboundInline:
		o.Message = d.Message()
	case outboundRef:
		if ref = d.Uvarint(); ref == 0 {
			d.Err = errCorrupt
		}
	default:
		d.Err = errCorrupt
	}
	return o, ref, d.Done()
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
	m := d.Message()
	return m, d.Done()
}

// appendEmpty is the value of a record whose key says everything.
func appendEmpty(dst []byte) []byte { return seal(begin(dst), len(dst)) }
