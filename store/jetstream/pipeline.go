package jsstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ternmq/tern/store"
)

// The pipeline: writes gather in the pending group; the committer
// goroutine cuts it (so that an atomic group is never split), turns it
// into units and publishes them on the connection, in order, without
// waiting for acknowledgements, up to MaxInflight writes ahead. Each unit
// (one write, or one atomic batch) has its acknowledgement; a group's
// ticket is committed once all its units and those before are
// acknowledged. A unit not acknowledged in time, or refused for a reason
// that passes (no responders, no leader yet), has everything from the
// oldest unacknowledged unit resent, in order: every write sets or purges
// a key, so replaying a suffix of them in order ends in the same state
// whatever part of it had been stored.

// op is one write: set subj to data, or purge subj; or, outside the
// bucket (Append), add data to another stream, deduplicated by msgID.
type op struct {
	subj  string
	data  []byte
	purge bool
	msgID string // outside the bucket: never in an atomic batch
	after bool   // an append sent once every write before it is acknowledged
	again bool   // an append the stream may have: sent alone (a batch with it would be refused whole)
}

// unit is what one acknowledgement covers.
type unit struct {
	id     uint64
	ops    []op
	batch  bool         // an atomic batch (else one op)
	after  bool         // sent once no write to the bucket waits for its acknowledgement
	ticket store.Ticket // on a group's last unit: acknowledging it commits the ticket
	first  time.Time    // first sent
	sent   time.Time    // this attempt sent
	done   bool
}

// bucketBatch reports whether u is an atomic batch of the bucket (not of
// appends to another stream).
func (u *unit) bucketBatch() bool { return u.batch && u.ops[0].msgID == "" }

type pipeline struct {
	s *Store

	kick  chan struct{} // cap 1: writes are pending, or closing, or failed
	event chan struct{} // cap 1: acknowledgements arrived or a resend is due

	mu       sync.Mutex // guards the fields below
	window   []*unit    // sent, not yet acknowledged (done units wait for those before them)
	base     uint64     // id of window[0]
	nextID   uint64
	epoch    uint64 // acknowledgements of an earlier attempt are ignored
	inflight int    // ops in window
	batches  int    // atomic batches of the bucket in window
	resend   bool   // a resend is due
	resends  int    // consecutive resends, for the backoff
	retryErr error  // why

	prefix   string // reply subjects: prefix + id + "." + epoch
	sub      *nats.Subscription
	purgeHdr nats.Header
}

func (p *pipeline) start(s *Store) error {
	p.s = s
	p.kick = make(chan struct{}, 1)
	p.event = make(chan struct{}, 1)
	// A delete marker. The stream keeps one message per key, so the
	// marker replaces the value: no rollup needed (and a replicated
	// batch refuses a rollup of a key it also sets).
	p.purgeHdr = nats.Header{
		"KV-Operation": []string{"DEL"},
		"Nats-TTL":     []string{strconv.Itoa(int(s.opts.MarkerTTL / time.Second))},
	}
	p.prefix = s.nc.NewInbox() + "."
	var err error
	if p.sub, err = s.nc.Subscribe(p.prefix+">", p.onAck); err != nil {
		return fmt.Errorf("jsstore: subscribe for acknowledgements: %w", err)
	}
	p.sub.SetPendingLimits(-1, -1)
	return nil
}

func (p *pipeline) stop() {
	if p.sub != nil {
		p.sub.Unsubscribe()
	}
}

func (p *pipeline) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *pipeline) notify() {
	select {
	case p.event <- struct{}{}:
	default:
	}
}

// loop is the committer.
func (s *Store) loop() {
	defer close(s.stopped)
	p := &s.pipe
	tick := time.NewTicker(min(s.opts.AttemptTimeout/4, 250*time.Millisecond))
	defer tick.Stop()
	var unsent []*unit
	for {
		if s.failed() != nil {
			return
		}
		p.retry()
		// While an atomic batch of the bucket is on its way the next
		// group gathers: group commit, so that concurrent atomic groups
		// share a batch (with one server, each batch is staged on disk).
		// One at a time also keeps batches in order when they are sent
		// again: a later batch stored, then an earlier one resent, and a
		// crash before the later one is resent too would leave the
		// earlier values (a reader's cursor gone back). Batches of
		// appends go to another stream, deduplicated, and do not wait.
		if len(unsent) == 0 && !p.batchInFlight() {
			unsent = s.cut()
		}
		unsent = p.send(unsent)
		if len(unsent) == 0 && p.idle() {
			s.mu.Lock()
			finished := s.closing && len(s.pending) == 0 && len(s.doomed) == 0
			s.mu.Unlock()
			if finished {
				return
			}
		}
		select {
		case <-p.kick:
		case <-p.event:
		case <-tick.C:
			p.checkTimeouts()
		}
	}
}

// cut takes the pending group and turns it into units: atomic groups
// (merged where they overlap) as batches, other writes one by one. The
// messages whose references reached zero are deleted after the group.
func (s *Store) cut() []*unit {
	s.mu.Lock()
	empty := len(s.pending) == 0 && len(s.doomed) == 0 && !s.used
	s.mu.Unlock()
	if empty {
		return nil // no need to hold up Atomic callers
	}
	s.hold.Lock()
	s.mu.Lock()
	ops, groups := s.pending, s.groups
	var t store.Ticket
	if s.used {
		t = s.next
		s.next++
		s.used = false
	}
	for _, e := range s.doomed {
		if e.refs > 0 {
			continue // referenced again
		}
		if s.byID[e.id] != e {
			continue // forgotten already
		}
		s.forget(e)
		if e.deletable {
			ops = append(ops, op{subj: s.prefix + messageKey(e.id), purge: true})
		}
	}
	s.doomed = s.doomed[:0]
	s.pending, s.groups = nil, nil
	s.mu.Unlock()
	s.hold.Unlock()
	if len(ops) == 0 {
		if t != 0 {
			// Cannot happen (a ticket is handed out with a write), but a
			// ticket must not be left behind.
			return []*unit{{ticket: t, done: true}}
		}
		return nil
	}
	if s.opts.Batching == BatchAll {
		groups = [][2]int{{0, len(ops)}}
	}
	units := s.units(ops, groups)
	units[len(units)-1].ticket = t
	return units
}

// units splits a group's ops into units. From the first atomic group to
// the last, ops go in atomic batches of up to MaxBatch, cut between
// atomic groups (which are merged where they overlap) where possible:
// concurrent atomic groups share a batch. Other ops go one by one.
func (s *Store) units(ops []op, groups [][2]int) []*unit {
	units := make([]*unit, 0, len(ops))
	// Appends to another stream in a row go as one batch there (one
	// acknowledgement, one replication round for them all); other
	// writes one by one.
	plain := func(ops []op) {
		for i := 0; i < len(ops); {
			j := i + 1
			after := ops[i].after
			if ops[i].msgID != "" && !ops[i].again {
				for j < len(ops) && j-i < s.opts.MaxBatch && ops[j].msgID != "" && !ops[j].again {
					after = after || ops[j].after
					j++
				}
			}
			units = append(units, &unit{ops: ops[i:j], batch: j-i > 1, after: after})
			i = j
		}
	}
	if len(groups) == 0 {
		plain(ops)
		return units
	}
	slices.SortFunc(groups, func(a, b [2]int) int { return a[0] - b[0] })
	var merged [][2]int
	for _, g := range groups {
		if n := len(merged); n > 0 && g[0] < merged[n-1][1] {
			merged[n-1][1] = max(merged[n-1][1], g[1])
			continue
		}
		merged = append(merged, g)
	}
	plain(ops[:merged[0][0]])
	batch := func(b []op) {
		// An append to another stream cannot be in the bucket's batch:
		// it goes after it, appends keeping their order.
		var outside []op
		if slices.ContainsFunc(b, func(o op) bool { return o.msgID != "" }) {
			var in []op
			for _, o := range b {
				if o.msgID != "" {
					outside = append(outside, o)
				} else {
					in = append(in, o)
				}
			}
			b = in
		}
		for len(b) > 0 {
			// A batch even of one write: batches go one at a time.
			n := min(len(b), s.opts.MaxBatch)
			units = append(units, &unit{ops: b[:n], batch: true})
			b = b[n:]
		}
		plain(outside)
	}
	from := merged[0][0] // start of the batch being filled
	for i, g := range merged {
		if g[1]-g[0] > s.opts.MaxBatch {
			s.log.Warn("jsstore: an atomic group is larger than a batch may be; it is split",
				"writes", g[1]-g[0], "max_batch", s.opts.MaxBatch)
		}
		if g[1]-from > s.opts.MaxBatch && i > 0 {
			batch(ops[from:g[0]]) // this group would not fit: cut before it
			from = g[0]
		}
	}
	batch(ops[from:merged[len(merged)-1][1]])
	plain(ops[merged[len(merged)-1][1]:])
	return units
}

func (p *pipeline) batchInFlight() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.batches > 0
}

// idle reports whether nothing is waiting for an acknowledgement.
func (p *pipeline) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.window) == 0
}

// bucketUnacked reports whether a write to the bucket waits for its
// acknowledgement: an AppendAfter waits for those, not for the appends
// before it, which the stream stores in the order they are sent. p.mu
// must be held.
func (p *pipeline) bucketUnacked() bool {
	for _, u := range p.window {
		if !u.done && len(u.ops) > 0 && u.ops[0].msgID == "" {
			return true
		}
	}
	return false
}

// send publishes units while the window has room, and returns the rest.
func (p *pipeline) send(units []*unit) []*unit {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(units) > 0 {
		u := units[0]
		if p.resend {
			break
		}
		if u.done && len(u.ops) == 0 { // a bare ticket
			u.id = p.nextID
			p.nextID++
			p.window = append(p.window, u)
			units = units[1:]
			p.advance()
			continue
		}
		if p.inflight > 0 && p.inflight+len(u.ops) > p.s.opts.MaxInflight || u.after && p.bucketUnacked() {
			break
		}
		u.id = p.nextID
		p.nextID++
		p.window = append(p.window, u)
		p.inflight += len(u.ops)
		if u.bucketBatch() {
			p.batches++
		}
		u.first = time.Now()
		units = units[1:]
		if !p.publish(u) {
			break
		}
	}
	return units
}

// publish sends one attempt of u, and reports whether sending may go on.
// p.mu must be held.
func (p *pipeline) publish(u *unit) bool {
	s := p.s
	u.sent = time.Now()
	reply := p.prefix + strconv.FormatUint(u.id, 36) + "." + strconv.FormatUint(p.epoch, 36)
	var err error
	if !u.batch {
		o := &u.ops[0]
		switch {
		case o.purge:
			err = s.nc.PublishMsg(&nats.Msg{Subject: o.subj, Reply: reply, Header: p.purgeHdr})
			s.stats.bytes.Add(uint64(len(o.subj) + headerSize(p.purgeHdr)))
		case o.msgID != "":
			h := nats.Header{"Nats-Msg-Id": []string{o.msgID}}
			err = s.nc.PublishMsg(&nats.Msg{Subject: o.subj, Reply: reply, Header: h, Data: o.data})
			s.stats.bytes.Add(uint64(len(o.subj) + headerSize(h) + len(o.data)))
		default:
			err = s.nc.PublishRequest(o.subj, reply, o.data)
			s.stats.bytes.Add(uint64(len(o.subj) + len(o.data)))
		}
		s.stats.published.Add(1)
	} else {
		id := s.inst + strconv.FormatUint(u.id, 36) + "-" + strconv.FormatUint(p.epoch, 36)
		for i := range u.ops {
			o := &u.ops[i]
			h := make(nats.Header, 6)
			h["Nats-Batch-Id"] = []string{id}
			h["Nats-Batch-Sequence"] = []string{strconv.Itoa(i + 1)}
			if o.purge {
				for k, v := range p.purgeHdr {
					h[k] = v
				}
			}
			if o.msgID != "" {
				h["Nats-Msg-Id"] = []string{o.msgID}
			}
			m := &nats.Msg{Subject: o.subj, Header: h, Data: o.data}
			if i == len(u.ops)-1 {
				h["Nats-Batch-Commit"] = []string{"1"}
				m.Reply = reply
			}
			if err = s.nc.PublishMsg(m); err != nil {
				break
			}
			s.stats.bytes.Add(uint64(len(o.subj) + headerSize(h) + len(o.data)))
		}
		s.stats.published.Add(uint64(len(u.ops)))
		s.stats.batches.Add(1)
	}
	switch {
	case err == nil:
		return true
	case errors.Is(err, nats.ErrMaxPayload):
		s.fail(fmt.Errorf("jsstore: a record larger than the server's max_payload (%d bytes; see MaxValueSize): %w",
			s.nc.MaxPayload(), err))
		return false
	case errors.Is(err, nats.ErrConnectionClosed):
		s.fail(fmt.Errorf("jsstore: publish: %w", err))
		return false
	default:
		// The connection broke under the write, or its reconnect buffer
		// is full: sent again once it is back, within WriteTimeout.
		p.due(err)
		return false
	}
}

// headerSize is the size of h on the wire.
func headerSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// due asks for a resend. p.mu must be held.
func (p *pipeline) due(err error) {
	if !p.resend {
		p.resend, p.retryErr = true, err
		p.notify()
	}
}

// advance drops acknowledged units from the window's front and commits
// their tickets. p.mu must be held.
func (p *pipeline) advance() {
	var t store.Ticket
	for len(p.window) > 0 && p.window[0].done {
		u := p.window[0]
		p.window[0] = nil
		p.window = p.window[1:]
		p.base++
		p.inflight -= len(u.ops)
		if u.bucketBatch() {
			p.batches--
		}
		if u.ticket != 0 {
			t = u.ticket
		}
		p.resends = 0
	}
	if len(p.window) == 0 {
		p.window = p.window[:0:0] // let the backing array go
	}
	if t != 0 {
		p.s.commit(t)
	}
}

// onAck handles a JetStream acknowledgement.
func (p *pipeline) onAck(m *nats.Msg) {
	idS, epS, ok := strings.Cut(strings.TrimPrefix(m.Subject, p.prefix), ".")
	id, err1 := strconv.ParseUint(idS, 36, 64)
	epoch, err2 := strconv.ParseUint(epS, 36, 64)
	if !ok || err1 != nil || err2 != nil {
		return
	}
	err, retriable := ackError(m)
	p.mu.Lock()
	if epoch != p.epoch || id < p.base || id >= p.base+uint64(len(p.window)) {
		p.mu.Unlock()
		return // an earlier attempt's, or already acknowledged
	}
	u := p.window[id-p.base]
	switch {
	case err == nil:
		u.done = true
		p.advance()
	case retriable:
		p.due(err)
	default:
		p.mu.Unlock()
		p.s.fail(err)
		return
	}
	p.mu.Unlock()
	p.notify()
}

// ackError says what is wrong with an acknowledgement, and whether
// sending again may help.
func ackError(m *nats.Msg) (err error, retriable bool) {
	if len(m.Data) == 0 {
		if st := m.Header.Get("Status"); st == "503" {
			return errors.New("jsstore: no responders (no stream leader)"), true
		}
		return fmt.Errorf("jsstore: empty acknowledgement (status %q)", m.Header.Get("Status")), true
	}
	if !bytes.Contains(m.Data, []byte(`"error"`)) {
		return nil, false
	}
	var r struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if json.Unmarshal(m.Data, &r) != nil || r.Error == nil {
		return fmt.Errorf("jsstore: malformed acknowledgement %q", m.Data), false
	}
	if r.Error.ErrCode == 10201 {
		// A batch of appends sent again that the stream had stored: its
		// message ids are all known (batches are all or nothing).
		return nil, false
	}
	err = fmt.Errorf("jsstore: JetStream: %s (%d)", r.Error.Description, r.Error.ErrCode)
	switch r.Error.ErrCode {
	case 10008, // JetStream temporarily unavailable
		10009, // cluster can not handle request
		10118, // stream offline
		10176, // atomic batch incomplete (a message of it lost)
		10210: // too many atomic batches in flight
		return err, true
	}
	return err, r.Error.Code == 503
}

// checkTimeouts asks for a resend when the oldest write waits too long,
// and fails the store when it has waited WriteTimeout.
func (p *pipeline) checkTimeouts() {
	p.mu.Lock()
	if len(p.window) == 0 {
		p.mu.Unlock()
		return
	}
	f := p.window[0]
	if time.Since(f.first) > p.s.opts.WriteTimeout {
		err := p.retryErr
		p.mu.Unlock()
		p.timedOut(err)
		return
	}
	if !p.resend && time.Since(f.sent) > p.s.opts.AttemptTimeout {
		p.due(fmt.Errorf("jsstore: no acknowledgement within %v", p.s.opts.AttemptTimeout))
	}
	p.mu.Unlock()
}

func (p *pipeline) timedOut(last error) {
	err := fmt.Errorf("jsstore: a write was not acknowledged within %v (no quorum?)", p.s.opts.WriteTimeout)
	if last != nil {
		err = fmt.Errorf("%w: last: %w", err, last)
	}
	p.s.fail(err)
}

// retry resends the window, after a backoff, when a resend is due.
func (p *pipeline) retry() {
	p.mu.Lock()
	if !p.resend {
		p.mu.Unlock()
		return
	}
	if len(p.window) == 0 {
		p.resend = false
		p.mu.Unlock()
		return
	}
	if time.Since(p.window[0].first) > p.s.opts.WriteTimeout {
		err := p.retryErr
		p.mu.Unlock()
		p.timedOut(err)
		return
	}
	backoff := min(50*time.Millisecond<<min(p.resends, 6), 2*time.Second)
	p.resends++
	// Acknowledgements of this attempt are ignored from here: the whole
	// window goes again.
	p.epoch++
	p.mu.Unlock()
	select {
	case <-time.After(backoff):
	case <-p.s.quit:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.s.log.Warn("jsstore: resending unacknowledged writes", "units", len(p.window), "err", p.retryErr)
	p.resend = false
	p.s.stats.resends.Add(1)
	for _, u := range p.window {
		if len(u.ops) == 0 {
			continue // a bare ticket
		}
		u.done = false
		if !p.publish(u) {
			return
		}
	}
}
