package pebble

import "encoding/binary"

// Key layout. A session's records share the prefix kind+clientID+0x00,
// which no client id contains (MQTT strings exclude U+0000
// [MQTT-1.5.4-2]), so one range delete removes them all, and outbound
// records sort by sequence number. A message queued for several sessions
// is stored once, as a body that lists the sessions it was queued for in
// one commit (its members) or that their outbound records refer to by its
// id; changes to its members go to its log (bodies.go).
//
//	s<client>                 session
//	u<client>\x00<filter>     subscription
//	o<client>\x00<seq:8>      outbound message
//	q<client>\x00<id:2>       inbound QoS 2 packet id (value: its token)
//	r<topic>                  retained message
//	m<id:8>                   message body, with its members
//	x<id:8><n:4>              member log of body id, record n
const (
	kindSession      = 's'
	kindSubscription = 'u'
	kindOutbound     = 'o'
	kindInbound      = 'q'
	kindRetained     = 'r'
	kindBody         = 'm'
	kindLog          = 'x'
)

// sessionKinds are the record kinds stored under a client id prefix.
var sessionKinds = []byte{kindSubscription, kindOutbound, kindInbound}

func appendKey(dst []byte, kind byte, name string) []byte {
	return append(append(dst, kind), name...)
}

// appendPrefix is the start of every key of kind under clientID.
func appendPrefix(dst []byte, kind byte, clientID string) []byte {
	return append(appendKey(dst, kind, clientID), 0)
}

func appendSeqKey(dst []byte, clientID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(appendPrefix(dst, kindOutbound, clientID), seq)
}

func appendBodyKey(dst []byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, kindBody), id)
}

func appendInboundKey(dst []byte, clientID string, id uint16) []byte {
	return binary.BigEndian.AppendUint16(appendPrefix(dst, kindInbound, clientID), id)
}

// splitKey parses a per-session key into its client id and suffix.
func splitKey(k []byte) (clientID string, suffix []byte, ok bool) {
	for i := 1; i < len(k); i++ {
		if k[i] == 0 {
			return string(k[1:i]), k[i+1:], true
		}
	}
	return "", nil, false
}

// appendLogKey names record n of body id's member log: x<id:8><n:4>.
func appendLogKey(dst []byte, id uint64, n uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(append(dst, kindLog), id), n)
}

// appendLogRange is the start of body id's member log, and the start of
// the next body's: the range that deletes it.
func appendLogRange(dst []byte, id uint64) []byte {
	dst = binary.BigEndian.AppendUint64(append(dst, kindLog), id)
	return binary.BigEndian.AppendUint64(append(dst, kindLog), id+1)
}
