package bench

import (
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternmq/tern/packet"
)

// The payload stamp every bench message starts with; the rest is zeros.
const (
	benchStampTime = 0  // 8 bytes: send time, unix nanoseconds
	benchStampSeq  = 8  // 4 bytes: the publisher's sequence number, from 0
	benchStampPub  = 12 // 4 bytes: publisher index
	benchStampRun  = 16 // 4 bytes: run id, so that strays from another run are not counted

	// HeaderLen is the length of the stamp every payload starts with (see
	// ParseStamp): the smallest payload size.
	HeaderLen = 20
)

// Stamp is what a bench payload's first HeaderLen bytes say.
type Stamp struct {
	Sent      time.Time // when the publisher wrote the message
	Seq       uint32    // the publisher's sequence number, from 0
	Publisher uint32    // the publisher's index
	Run       uint32    // the run's random id (never 0)
}

// ParseStamp reads the stamp a payload starts with; false when it is too
// short to hold one.
func ParseStamp(payload []byte) (Stamp, bool) {
	if len(payload) < HeaderLen {
		return Stamp{}, false
	}
	return Stamp{
		Sent:      time.Unix(0, int64(binary.BigEndian.Uint64(payload[benchStampTime:]))),
		Seq:       binary.BigEndian.Uint32(payload[benchStampSeq:]),
		Publisher: binary.BigEndian.Uint32(payload[benchStampPub:]),
		Run:       binary.BigEndian.Uint32(payload[benchStampRun:]),
	}, true
}

// benchBatch bounds how many messages a publisher writes per lock, so that
// it looks at its acks, its deadline and its PUBRELs often.
const benchBatch = 256

// benchPub publishes one stream: a PUBLISH encoded once, into which each
// send patches the timestamp, the sequence number and the packet id before
// copying it into the connection's bufio.Writer.
type benchPub struct {
	c      *benchConn
	qos    byte
	tmpl   []byte // the encoded PUBLISH
	idOff  int    // offset of the packet id in tmpl (QoS > 0)
	payOff int    // offset of the payload in tmpl
	window int32

	inflight atomic.Int32
	ids      []uint64 // QoS > 0: bitmap of packet ids in flight, set by the publisher, cleared atomically by the reader
	nextID   uint16
	ackc     chan struct{} // capacity 1: an ack freed a slot (or a PUBREL is due)

	relMu sync.Mutex
	rels  []uint16 // QoS 2: PUBRELs the reader asks the publisher to write
	spare []uint16 // the other half of the double buffer for rels

	seq     uint32
	sent    atomic.Uint64
	acked   atomic.Uint64
	refused atomic.Uint64 // acks with a failure reason code (v5)
	bogus   atomic.Uint64 // acks for packet ids not in flight
	endSend time.Time     // when the last message was written
}

func newBenchPub(c *benchConn, cfg *config, index int, topic string) (*benchPub, error) {
	p := &benchPub{c: c, qos: byte(cfg.qos), window: int32(cfg.window), ackc: make(chan struct{}, 1)}
	if c.serverRecvMax > 0 && p.qos > 0 {
		p.window = min(p.window, int32(c.serverRecvMax)) // [MQTT-3.3.4-7]
	}
	msg := &packet.Publish{Topic: topic, QoS: p.qos, Payload: make([]byte, cfg.size)}
	if p.qos > 0 {
		msg.PacketID = 0xFFFF // a placeholder the encoder accepts; patched per send
		p.ids = make([]uint64, 65536/64)
	}
	b, err := msg.Append(nil, cfg.level)
	if err != nil {
		return nil, err
	}
	p.tmpl = b
	p.payOff = len(b) - cfg.size
	// The fixed header is 1 byte plus the remaining length's varint; take
	// its length from the encoding itself rather than recomputing it.
	_, n := packet.ConsumeVarint(b[1:])
	p.idOff = 1 + n + 2 + len(topic)
	binary.BigEndian.PutUint32(b[p.payOff+benchStampPub:], uint32(index))
	binary.BigEndian.PutUint32(b[p.payOff+benchStampRun:], cfg.runID)
	c.pub = p
	return p, nil
}

// benchPace says how many messages a publisher may send so far: count
// (0: unlimited) until deadline (zero: none), at rate per second (0: no
// limit) measured from start, so that a publisher that falls behind
// catches up in a burst rather than drifting.
type benchPace struct {
	count    int
	deadline time.Time
	rate     float64
	start    time.Time
}

// run publishes until the pace is exhausted, stop is closed or the
// connection fails. It then waits for the window to drain (acks), up to
// drain without progress.
func (p *benchPub) run(pace benchPace, stop <-chan struct{}, drain time.Duration) error {
	var tick <-chan time.Time
	if pace.rate > 0 {
		// One ticker per publisher, at most 100 Hz: at high rates each tick
		// releases a burst, at low rates one message.
		iv := max(time.Duration(float64(time.Second)/pace.rate), 10*time.Millisecond)
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	var deadline <-chan time.Time
	if !pace.deadline.IsZero() {
		t := time.NewTimer(time.Until(pace.deadline))
		defer t.Stop()
		deadline = t.C
		// A broker that stops reading must not hold a timed run forever.
		_ = p.c.nc.SetWriteDeadline(pace.deadline.Add(drain))
	}
	err := p.publish(pace, tick, deadline, stop)
	if err == nil {
		// What is still buffered was counted as sent: it must leave now,
		// not with the DISCONNECT after the drain.
		err = p.flush()
	}
	p.endSend = time.Now()
	if err != nil || p.qos == 0 {
		return err
	}
	return p.drain(drain) // when stopped early too: what is in flight is not lost
}

func (p *benchPub) publish(pace benchPace, tick, deadline <-chan time.Time, stop <-chan struct{}) error {
	for {
		now := time.Now()
		if !pace.deadline.IsZero() && !now.Before(pace.deadline) {
			return nil
		}
		budget := math.MaxInt
		if pace.count > 0 {
			budget = pace.count - int(p.seq)
			if budget <= 0 {
				return nil
			}
		}
		if pace.rate > 0 {
			due := int(pace.rate*now.Sub(pace.start).Seconds()) + 1
			budget = min(budget, due-int(p.seq))
		}
		if p.qos > 0 {
			budget = min(budget, int(p.window-p.inflight.Load()))
		}
		if budget <= 0 && !p.relsDue() {
			if err := p.flush(); err != nil {
				return err
			}
			select {
			case <-p.ackc:
			case <-tick:
			case <-deadline:
				return nil
			case <-stop:
				return nil
			case <-p.c.done:
				return p.c.lost()
			}
			continue
		}
		if err := p.write(min(budget, benchBatch), pace.deadline); err != nil {
			return err
		}
	}
}

// write writes due PUBRELs and up to n messages, without flushing (the
// bufio.Writer writes when full; publish flushes before it waits).
func (p *benchPub) write(n int, deadline time.Time) error {
	c := p.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := p.writeRels(); err != nil {
		return err
	}
	b := p.tmpl
	for range n {
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			return nil
		}
		if p.qos > 0 {
			id := p.takeID()
			b[p.idOff], b[p.idOff+1] = byte(id>>8), byte(id)
		}
		binary.BigEndian.PutUint64(b[p.payOff+benchStampTime:], uint64(now.UnixNano()))
		binary.BigEndian.PutUint32(b[p.payOff+benchStampSeq:], p.seq)
		if _, err := c.w.Write(b); err != nil {
			return err
		}
		p.seq++
		p.sent.Add(1)
	}
	return nil
}

func (p *benchPub) flush() error {
	p.c.wmu.Lock()
	defer p.c.wmu.Unlock()
	if err := p.writeRels(); err != nil {
		return err
	}
	return p.c.w.Flush()
}

// takeID returns a free packet id (1..65535) and marks it in flight. The
// window is below 65535, so a free one exists.
func (p *benchPub) takeID() uint16 {
	p.inflight.Add(1)
	for {
		p.nextID++
		if p.nextID == 0 {
			p.nextID = 1
		}
		w, bit := &p.ids[p.nextID>>6], uint64(1)<<(p.nextID&63)
		if atomic.LoadUint64(w)&bit == 0 {
			atomic.OrUint64(w, bit)
			return p.nextID
		}
	}
}

// onAck is called by the reader for PUBACK, PUBREC and PUBCOMP.
func (p *benchPub) onAck(t packet.Type, id uint16, code byte) {
	if t == packet.PUBREC && code < 0x80 && p.qos == 2 {
		p.relMu.Lock()
		p.rels = append(p.rels, id)
		p.relMu.Unlock()
		p.wake()
		return
	}
	bit := uint64(1) << (id & 63)
	if atomic.AndUint64(&p.ids[id>>6], ^bit)&bit == 0 {
		p.bogus.Add(1)
		return
	}
	if code >= 0x80 {
		p.refused.Add(1)
	} else {
		p.acked.Add(1)
	}
	p.inflight.Add(-1)
	p.wake()
}

func (p *benchPub) wake() {
	select {
	case p.ackc <- struct{}{}:
	default:
	}
}

func (p *benchPub) relsDue() bool {
	if p.qos != 2 {
		return false
	}
	p.relMu.Lock()
	defer p.relMu.Unlock()
	return len(p.rels) > 0
}

// writeRels writes the PUBRELs the reader queued. wmu must be held.
func (p *benchPub) writeRels() error {
	if p.qos != 2 {
		return nil
	}
	p.relMu.Lock()
	rels := p.rels
	p.rels = p.spare[:0]
	p.relMu.Unlock()
	for _, id := range rels {
		// PUBREL's fixed header flags are 0010 [MQTT-3.6.1-1].
		_ = p.c.w.WriteByte(byte(packet.PUBREL)<<4 | 2)
		_ = p.c.w.WriteByte(2)
		_ = p.c.w.WriteByte(byte(id >> 8))
		if err := p.c.w.WriteByte(byte(id)); err != nil {
			return err
		}
	}
	p.spare = rels[:0]
	return nil
}

// drain waits for the acks of what is in flight, giving up after drain
// without any arriving.
func (p *benchPub) drain(drain time.Duration) error {
	t := time.NewTimer(drain)
	defer t.Stop()
	for p.inflight.Load() > 0 {
		_ = p.c.nc.SetWriteDeadline(time.Now().Add(drain))
		if err := p.flush(); err != nil {
			return err
		}
		select {
		case <-p.ackc:
			t.Reset(drain)
		case <-t.C:
			return nil
		case <-p.c.done:
			return p.c.lost()
		}
	}
	return nil
}
