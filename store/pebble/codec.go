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
	dst = rec.AppendSubscription(begin(dst), s)
	return seal(dst, start)
}

func decodeSubscription(v []byte) (store.Subscription, error) {
	d, err := unseal(v)
	if err != nil {
		return store.Subscription{}, err
	}
	s := d.Subscription()
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

// appendInbound is the value of an inbound QoS 2 record: its key has the
// packet id.
func appendInbound(dst []byte, token uint64) []byte {
	return seal(rec.AppendInboundToken(begin(dst), token), len(dst))
}

// Members. A message the broker queues for several sessions in one
// commit is one body record listing them (bodies.go): after the message,
// a count and one entry per member, each a head byte and what it says.
// The head byte packs the outbound fields that most copies leave at
// their defaults; the value headGone (state 3, which no outbound has)
// marks an entry that is no member (a slot kept so that the others keep
// their index) or, in a member log, a member deleted.
const (
	headQoS        = 0x03
	headRetain     = 0x04
	headStateShift = 3
	headState      = 0x03 << headStateShift
	headPacketID   = 0x20 // a packet id follows
	headSubIDs     = 0x40 // subscription ids follow
	headShared     = 0x80 // a shared group and filter follow
	headGone       = headState
)

// headable reports whether o's fields fit a head byte.
func headable(o *store.Outbound) bool { return o.QoS <= 2 && o.State <= 2 }

// appendHead encodes o's fields but its seq and message; headable(o).
func appendHead(dst []byte, o *store.Outbound) []byte {
	h := o.QoS | o.State<<headStateShift
	if o.Retain {
		h |= headRetain
	}
	if o.PacketID != 0 {
		h |= headPacketID
	}
	if len(o.SubIDs) > 0 {
		h |= headSubIDs
	}
	if o.SharedGroup != "" || o.SharedFilter != "" {
		h |= headShared
	}
	dst = append(dst, h)
	if o.PacketID != 0 {
		dst = appendUvarint(dst, uint64(o.PacketID))
	}
	if len(o.SubIDs) > 0 {
		dst = appendUvarint(dst, uint64(len(o.SubIDs)))
		for _, id := range o.SubIDs {
			dst = appendUvarint(dst, uint64(id))
		}
	}
	if h&headShared != 0 {
		dst = appendString(appendString(dst, o.SharedGroup), o.SharedFilter)
	}
	return dst
}

// decodeHead reads what appendHead wrote after the head byte h into o.
func decodeHead(d *decoder, h byte, o *store.Outbound) {
	o.QoS, o.Retain, o.State = h&headQoS, h&headRetain != 0, (h&headState)>>headStateShift
	o.PacketID, o.SubIDs, o.SharedGroup, o.SharedFilter = 0, nil, "", ""
	if h&headQoS == 3 {
		d.Err = errCorrupt
	}
	if h&headPacketID != 0 {
		if o.PacketID = uint16(d.Uvarint()); o.PacketID == 0 {
			d.Err = errCorrupt
		}
	}
	if h&headSubIDs != 0 {
		n := d.Uvarint()
		if n == 0 || n > uint64(len(d.B)) {
			d.Err = errCorrupt
		}
		for i := uint64(0); i < n && d.Err == nil; i++ {
			o.SubIDs = append(o.SubIDs, uint32(d.Uvarint()))
		}
	}
	if h&headShared != 0 {
		o.SharedGroup, o.SharedFilter = d.String(), d.String()
		if o.SharedGroup == "" && o.SharedFilter == "" {
			d.Err = errCorrupt
		}
	}
}

// memberEncoder appends member entries; each client id is written as
// the length of the prefix it shares with the previous member's and the
// rest, as the broker's client ids often differ only at the end.
type memberEncoder struct{ prev string }

func (e *memberEncoder) gone(dst []byte) []byte { return append(dst, headGone) }

// member appends a member: head (appendHead) of record (client, seq).
func (e *memberEncoder) member(dst, head []byte, client string, seq uint64) []byte {
	dst = append(dst, head...)
	n := 0
	for n < len(client) && n < len(e.prev) && client[n] == e.prev[n] {
		n++
	}
	dst = appendUvarint(dst, uint64(n))
	dst = appendString(dst, client[n:])
	e.prev = client
	return appendUvarint(dst, seq)
}

// memberDecoder reads member entries; client is valid until the next.
type memberDecoder struct {
	d      *decoder
	client []byte
}

// next reads one entry into o (all but its message) and returns whether
// it is a member.
func (md *memberDecoder) next(o *store.Outbound) bool {
	d := md.d
	h := d.Byte()
	if d.Err != nil || h&headState == headGone {
		return false
	}
	decodeHead(d, h, o)
	n := d.Uvarint()
	rest := d.Uvarint()
	if d.Err != nil || n > uint64(len(md.client)) || rest > uint64(len(d.B)) || n+rest == 0 {
		d.Err = errCorrupt
		return false
	}
	md.client = append(md.client[:n], d.B[:rest]...)
	d.B = d.B[rest:]
	o.Seq = d.Uvarint()
	return d.Err == nil
}

// appendBodyRecord encodes a message and the entries enc wrote for its
// members (n of them).
func appendBodyRecord(dst []byte, m *store.Message, n int, entries []byte) []byte {
	start := len(dst)
	dst = appendMessage(begin(dst), m)
	if n > 0 {
		dst = append(appendUvarint(dst, uint64(n)), entries...)
	}
	return seal(dst, start)
}

// decodeBodyRecord decodes a body: its message and the undecoded member
// entries (count n), none in a body written before members existed.
func decodeBodyRecord(v []byte) (m *store.Message, n uint64, entries []byte, err error) {
	d, err := unseal(v)
	if err != nil {
		return nil, 0, nil, err
	}
	m = d.Message()
	if d.Err == nil && len(d.B) > 0 {
		if n = d.Uvarint(); n == 0 || n > uint64(len(d.B)) {
			d.Err = errCorrupt
		}
		entries, d.B = d.B, nil
	}
	return m, n, entries, d.Done()
}

// A member log record holds changes to a body's members, in order: each
// the member's index and a head (headGone: deleted).
func appendLogSet(dst []byte, idx int, o *store.Outbound) []byte {
	return appendHead(appendUvarint(dst, uint64(idx)), o)
}

func appendLogDelete(dst []byte, idx int) []byte {
	return append(appendUvarint(dst, uint64(idx)), headGone)
}

// logEntry reads one entry of a member log: the member's index and,
// unless deleted, its new head into o.
func logEntry(d *decoder, o *store.Outbound) (idx uint64, deleted bool) {
	idx = d.Uvarint()
	h := d.Byte()
	if h&headState == headGone {
		return idx, true
	}
	decodeHead(d, h, o)
	return idx, false
}
