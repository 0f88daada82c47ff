package jsstore

import (
	rec "github.com/ternmq/tern/store/record"

	"github.com/ternmq/tern/store"
)

// Every value starts with a format byte. JetStream checks the integrity
// of what it stores; the format byte tells a record of this store from a
// foreign or future one, and the decoders refuse trailing bytes.
const formatVersion = 1

var errCorrupt = rec.ErrCorrupt

func begin(dst []byte) []byte { return append(dst, formatVersion) }

func open(v []byte) (decoder, error) {
	if len(v) == 0 || v[0] != formatVersion {
		return decoder{}, errCorrupt
	}
	return decoder{B: v[1:]}, nil
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

func encodeMessage(m *store.Message) []byte {
	return appendMessage(begin(make([]byte, 0, 32+len(m.Topic)+len(m.Payload))), m)
}

func decodeMessage(v []byte) (*store.Message, error) {
	d, err := open(v)
	if err != nil {
		return nil, err
	}
	m := d.Message()
	return m, d.Done()
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
	gen := d.String()
	s := store.Session{ClientID: d.String(), Version: d.Byte(), ExpiryInterval: uint32(d.Uvarint()),
		Expiry: d.Time(), Username: d.String()}
	f := d.Byte()
	s.UsernameFlag, s.CertUsername = f&sessUsernameFlag != 0, f&sessCert != 0
	if f&sessWill != 0 {
		s.Will = d.Message()
		s.WillAt = d.Time()
	}
	if err := d.Done(); err != nil {
		return store.Session{}, "", err
	}
	if !validGen(gen) {
		return store.Session{}, "", errCorrupt
	}
	return s, gen, nil
}

func encodeSubscription(s *store.Subscription) []byte {
	return rec.AppendSubscription(begin(make([]byte, 0, 16+len(s.Filter))), s)
}

func decodeSubscription(v []byte) (store.Subscription, error) {
	d, err := open(v)
	if err != nil {
		return store.Subscription{}, err
	}
	s := d.Subscription()
	return s, d.Done()
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
	o := store.Outbound{Seq: d.Uvarint(), PacketID: uint16(d.Uvarint()), State: d.Byte(), QoS: d.Byte(), Retain: d.Bool()}
	n := d.Uvarint()
	for i := uint64(0); i < n && d.Err == nil; i++ {
		o.SubIDs = append(o.SubIDs, uint32(d.Uvarint()))
	}
	o.SharedGroup = d.String()
	o.SharedFilter = d.String()
	id := d.String()
	if err := d.Done(); err != nil {
		return store.Outbound{}, "", err
	}
	if id != "" && !validMessageID(id) {
		return store.Outbound{}, "", errCorrupt
	}
	return o, id, nil
}

// encodeInbound is the value of an inbound QoS 2 record: its key has
// the packet id.
func encodeInbound(token uint64) []byte {
	return rec.AppendInboundToken([]byte{formatVersion}, token)
}

func decodeInbound(v []byte) (uint64, error) {
	d, err := open(v)
	if err != nil {
		return 0, err
	}
	return d.InboundToken()
}
