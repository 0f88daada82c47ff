package broker

import (
	"sync"
	"time"

	"github.com/ternmq/tern/packet"
)

// encoder encodes a message as PUBLISH once per variant (pre-v5 or v5,
// with or without a packet id) and hands the same bytes to every
// subscriber; conn.sendPublish patches flags and packet id into its copy.
// An encoder is owned by one goroutine and reused, so steady-state routing
// allocates nothing.
type encoder struct {
	m     *Message
	cache [2][2][]byte // [v5][withID]
	valid [2][2]bool
	tmp   []byte
	// readAt is when the message being routed was read (monoNow), for
	// Observer.DeliveryLatency; zero: not observed. reset leaves it.
	readAt int64
	// delivered counts, by QoS, the copies handed over since readAt was
	// set, for the router to report once it is done.
	delivered [3]int32
}

// reset forgets the cached encodings; buffers grown by an unusually large
// message are let go rather than kept for the connection's lifetime.
func (e *encoder) reset() {
	e.m = nil
	e.valid = [2][2]bool{}
	for i := range e.cache {
		for j := range e.cache[i] {
			if cap(e.cache[i][j]) > maxPooledBuf {
				e.cache[i][j] = nil
			}
		}
	}
	if cap(e.tmp) > maxPooledBuf {
		e.tmp = nil
	}
}

// bytes returns m encoded for version; the result is valid until the next
// call. v5 subscription identifiers differ per subscriber, so such
// encodings are not cached.
func (e *encoder) bytes(version byte, m *Message, withID bool, subIDs []uint32) []byte {
	v5 := version == packet.V5
	if v5 && len(subIDs) > 0 {
		e.tmp = encodePublish(e.tmp[:0], version, m, withID, subIDs)
		return e.tmp
	}
	if e.m != m {
		e.reset()
		e.m = m
	}
	i, j := b2i(v5), b2i(withID)
	if !e.valid[i][j] {
		e.cache[i][j] = encodePublish(e.cache[i][j][:0], version, m, withID, nil)
		e.valid[i][j] = true
	}
	return e.cache[i][j]
}

// encoderPool holds encoders for messages sent from where no router is at
// hand: a session's queue, its messages to send again and its retained
// backlog, as its window frees (session.fill).
var encoderPool = sync.Pool{New: func() any { return new(encoder) }}

func getEncoder() *encoder { return encoderPool.Get().(*encoder) }

// putEncoder resets enc, which holds no message then, and pools it.
func putEncoder(enc *encoder) {
	enc.reset()
	encoderPool.Put(enc)
}

func encodePublish(dst []byte, version byte, m *Message, withID bool, subIDs []uint32) []byte {
	p := packet.Publish{Topic: m.Topic, Payload: m.Payload}
	if withID {
		p.QoS, p.PacketID = 1, 1 // placeholders, patched per subscriber
	}
	if version == packet.V5 {
		p.Properties = m.Properties
		p.Properties.TopicAlias = nil
		p.Properties.SubscriptionIDs = subIDs
		if !m.Expiry.IsZero() {
			// [MQTT-3.3.2-6] forward the remaining lifetime, not the original.
			left := uint32(max(time.Until(m.Expiry).Round(time.Second)/time.Second, 1))
			p.Properties.MessageExpiry = &left
		}
	}
	out, err := p.Append(dst, version)
	if err != nil {
		// Unreachable for anything the decoder accepted; sendPublish skips
		// an empty encoding rather than sending a broken packet.
		return dst[:0]
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
