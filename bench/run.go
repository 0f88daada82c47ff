package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// benchConnectConcurrency bounds handshakes in progress: unbounded, a few
// thousand SYNs at once overflow the broker's accept backlog and the
// retransmissions (1 s, 3 s) would be measured as connect latency.
const benchConnectConcurrency = 100

// benchRunner runs one scenario: connect, publish, drain, count.
type benchRunner struct {
	cfg  *config
	plan benchPlan

	mu       sync.Mutex // guards what follows
	conns    []*benchConn
	pubs     []*benchPub // by plan index; nil where connecting failed
	subs     []*benchSub // likewise
	connHist latencyHist
	errs     map[string]int
	failed   int
	servers  map[string]*ServerConns // by URL
	timeline []Sample                // once a second from the start of publishing

	recvs []*benchRecv

	connected atomic.Int64
	phase     atomic.Value // string, for the progress line

	// Timeline, for rates.
	connStart, connEnd time.Time
	pubStart, pubEnd   time.Time
	drainEnd           time.Time
}

// benchRun runs cfg's scenario and returns its summary. It fails only for
// what makes the run meaningless; failed connections are counted instead.
func benchRun(ctx context.Context, cfg *config) (*Result, error) {
	plan := planBench(cfg)
	r := &benchRunner{cfg: cfg, plan: plan, errs: map[string]int{}, servers: map[string]*ServerConns{},
		pubs: make([]*benchPub, len(plan.pubs)), subs: make([]*benchSub, len(plan.subs))}
	for _, rp := range plan.recvs {
		r.recvs = append(r.recvs, newBenchRecv(rp))
	}
	// WebSocket connections live as long as this context.
	connCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-connCtx.Done():
			return
		}
		close(stop)
	}()
	stopProgress := r.progress()
	defer stopProgress()
	stopPinger := r.pinger()
	defer stopPinger()

	r.connStart = time.Now()
	r.phase.Store("connecting")
	// Subscribers first, so that they miss nothing from the first message.
	r.connectAll(ctx, len(plan.subs), func(ctx context.Context, i int) error { return r.openSub(ctx, connCtx, i) })
	r.connectAll(ctx, len(plan.idle), func(ctx context.Context, i int) error { return r.openIdle(ctx, connCtx, i) })
	r.connectAll(ctx, len(plan.pubs), func(ctx context.Context, i int) error { return r.openPub(ctx, connCtx, i) })
	r.connEnd = time.Now()

	r.phase.Store("running")
	r.pubStart = time.Now()
	stopTimeline := r.sampler()
	switch {
	case len(plan.pubs) > 0:
		r.publish(stop)
		r.phase.Store("draining")
		r.drain() // when ctx ended too: it ends after Drain without progress
	default: // conn and sub: hold (and receive) for -d, or until -n each (sub)
		r.hold(stop)
		r.pubEnd = time.Now()
	}
	stopTimeline()
	r.drainEnd = time.Now()
	r.phase.Store("closing")
	stopProgress()
	lost := r.lostConns() // before closing: a connection we end is not lost
	r.closeAll()          // the readers stop: what they counted is final
	r.sample(r.drainEnd)  // the rest, so that the timeline adds up to the totals
	return r.result(lost), nil
}

// connectAll opens n connections, at --connect-rate, at most
// benchConnectConcurrency at a time, and waits for every attempt.
func (r *benchRunner) connectAll(ctx context.Context, n int, open func(context.Context, int) error) {
	var tick <-chan time.Time
	if r.cfg.connectRate > 0 {
		t := time.NewTicker(max(time.Duration(float64(time.Second)/r.cfg.connectRate), time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	sem := make(chan struct{}, benchConnectConcurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		for r.cfg.connectRate > 0 && int(r.cfg.connectRate*time.Since(start).Seconds())+1 <= i {
			select {
			case <-tick:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		if ctx.Err() != nil {
			r.fail(n-i, ctx.Err())
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := open(ctx, i); err != nil {
				r.fail(1, err)
			}
			<-sem
		}()
	}
	wg.Wait()
}

func (r *benchRunner) fail(n int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed += n
	r.errs[err.Error()] += n
}

// open dials target, completes the handshake and records the connect
// latency. A failure is counted against target (see served).
func (r *benchRunner) open(ctx, connCtx context.Context, target benchTarget, id string, rbuf, wbuf int) (*benchConn, error) {
	t0 := time.Now()
	c, err := dialBench(ctx, connCtx, r.cfg, target, id, rbuf, wbuf)
	if err != nil {
		r.served(target, err)
		return nil, err
	}
	d := time.Since(t0)
	r.mu.Lock()
	r.connHist.record(int64(d))
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	r.connected.Add(1)
	return c, nil
}

// openSub connects subscriber i and subscribes; the reader starts only
// after the SUBACK, so that the handshake may use the codec.
func (r *benchRunner) openSub(ctx, connCtx context.Context, i int) error {
	p := r.plan.subs[i]
	t := r.cfg.subTargets[i%len(r.cfg.subTargets)]
	c, err := r.open(ctx, connCtx, t, p.id, benchBufBig, benchBufSmall)
	if err != nil {
		return err
	}
	s := &benchSub{runID: r.cfg.runID}
	if p.recv >= 0 {
		s.recv = r.recvs[p.recv]
	}
	c.sub = s
	if err := r.subscribe(ctx, c, t, p.filter); err != nil {
		return err
	}
	c.start()
	r.served(t, nil)
	if s.recv != nil {
		s.recv.subscribed.Store(true)
	}
	r.mu.Lock()
	r.subs[i] = s
	r.mu.Unlock()
	return nil
}

// openIdle connects idle connection i and, when it has a filter,
// subscribes (conn with -t).
func (r *benchRunner) openIdle(ctx, connCtx context.Context, i int) error {
	p := r.plan.idle[i]
	t := r.cfg.targets[i%len(r.cfg.targets)]
	c, err := r.open(ctx, connCtx, t, p.id, benchBufIdle, benchBufIdle)
	if err != nil {
		return err
	}
	if p.filter != "" {
		if err := r.subscribe(ctx, c, t, p.filter); err != nil {
			return err
		}
	}
	c.start()
	r.served(t, nil)
	return nil
}

// subscribe subscribes c, just connected to t, to filter; a failure
// counts c as not served (and starts its reader, so that close finds one
// to wait for).
func (r *benchRunner) subscribe(ctx context.Context, c *benchConn, t benchTarget, filter string) error {
	sctx, cancel := context.WithTimeout(ctx, benchDialTimeout)
	defer cancel()
	err := c.subscribe(sctx, filter, byte(r.cfg.qos))
	if err != nil {
		c.start()
		r.connected.Add(-1)
		r.served(t, err)
	}
	return err
}

func (r *benchRunner) openPub(ctx, connCtx context.Context, i int) error {
	p := r.plan.pubs[i]
	t := r.cfg.targets[i%len(r.cfg.targets)]
	c, err := r.open(ctx, connCtx, t, p.id, benchBufSmall, benchBufBig)
	if err != nil {
		return err
	}
	pub, err := newBenchPub(c, r.cfg, i, p.topic)
	c.start()
	if err != nil {
		r.connected.Add(-1)
		r.served(t, err)
		return err
	}
	r.served(t, nil)
	r.mu.Lock()
	r.pubs[i] = pub
	r.mu.Unlock()
	return nil
}

// publish runs every connected publisher from one start time and waits
// for them to finish (and to drain their windows).
func (r *benchRunner) publish(stop <-chan struct{}) {
	pace := benchPace{count: r.cfg.count, rate: r.cfg.rate, start: r.pubStart}
	if r.cfg.duration > 0 {
		pace.deadline = pace.start.Add(r.cfg.duration)
	}
	var wg sync.WaitGroup
	for _, p := range r.pubs {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A lost connection is counted by result; anything else (a write
			// that timed out) is said here.
			if err := p.run(pace, stop, r.cfg.drain); err != nil && p.c.lost() == nil {
				r.mu.Lock()
				r.errs["publishing: "+err.Error()]++
				r.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r.pubEnd = pace.start
	for _, p := range r.pubs {
		if p != nil && p.endSend.After(r.pubEnd) {
			r.pubEnd = p.endSend
		}
	}
}

// drain waits until every receiver has what its publishers sent, or no
// message arrived for --drain. It polls: the receivers' counts are
// sharded over the readers and a poll every few milliseconds costs
// nothing next to the traffic.
func (r *benchRunner) drain() {
	if len(r.recvs) == 0 {
		return
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	_, _, last := r.totals()
	lastChange := time.Now()
	for !r.complete() {
		now := <-t.C
		if _, _, n := r.totals(); n != last {
			last, lastChange = n, now
		} else if now.Sub(lastChange) >= r.cfg.drain {
			return
		}
	}
}

// complete reports whether every receiver has every message sent to it.
func (r *benchRunner) complete() bool {
	for i, rc := range r.recvs {
		if r.uniqueOf(rc) < r.expectedOf(i) {
			return false
		}
	}
	return true
}

func (r *benchRunner) uniqueOf(rc *benchRecv) uint64 {
	var n uint64
	for i := range rc.trackers {
		n += rc.trackers[i].count()
	}
	return n
}

// expectedOf is what receiver i should have: everything its publishers sent.
func (r *benchRunner) expectedOf(i int) uint64 {
	if !r.recvs[i].subscribed.Load() {
		return 0 // it never subscribed: a failed connection, not loss
	}
	p := r.plan.recvs[i]
	var n uint64
	for _, pub := range r.pubs[p.pubFirst : p.pubFirst+p.pubN] {
		if pub != nil {
			n += pub.sent.Load()
		}
	}
	return n
}

// hold keeps the connections (receiving, for sub) for -d, until every
// subscriber has -n messages (sub), or until stop.
func (r *benchRunner) hold(stop <-chan struct{}) {
	var deadline <-chan time.Time
	if r.cfg.duration > 0 {
		t := time.NewTimer(r.cfg.duration)
		defer t.Stop()
		deadline = t.C
	}
	var poll <-chan time.Time
	if r.cfg.count > 0 && len(r.subs) > 0 {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		poll = t.C
	} else if deadline == nil {
		return
	}
	for {
		select {
		case <-deadline:
			return
		case <-stop:
			return
		case <-poll:
			done := true
			for _, s := range r.subs {
				if s != nil && s.received.Load() < uint64(r.cfg.count) {
					done = false
				}
			}
			if done {
				return
			}
		}
	}
}

// pinger sends PINGREQ on every connection each half keep-alive: idle
// connections (conn scenario, quiet subscribers) must not time out.
func (r *benchRunner) pinger() (stop func()) {
	if r.cfg.keepAlive == 0 {
		return func() {}
	}
	quit := make(chan struct{})
	t := time.NewTicker(time.Duration(r.cfg.keepAlive) * time.Second / 2)
	go func() {
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				r.mu.Lock()
				conns := append([]*benchConn(nil), r.conns...)
				r.mu.Unlock()
				for _, c := range conns {
					c.ping()
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit) }) }
}

// served counts a connection to target that completed its handshake
// (err nil) or failed.
func (r *benchRunner) served(target benchTarget, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	url := target.String()
	sc := r.servers[url]
	if sc == nil {
		sc = &ServerConns{URL: url}
		r.servers[url] = sc
	}
	if err != nil {
		sc.Failed++
	} else {
		sc.OK++
	}
}

// sampler records the totals once a second, from the start of
// publishing (pubStart), for the timeline.
func (r *benchRunner) sampler() (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				r.sample(now)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

// sample appends to the timeline what was sent, acknowledged and
// received since the last sample.
func (r *benchRunner) sample(now time.Time) {
	sent, acked, recv := r.totals()
	r.mu.Lock()
	defer r.mu.Unlock()
	var prev Sample
	for _, s := range r.timeline {
		prev.Sent += s.Sent
		prev.Acked += s.Acked
		prev.Received += s.Received
	}
	r.timeline = append(r.timeline, Sample{T: now.Sub(r.pubStart).Seconds(),
		Sent: sent - prev.Sent, Acked: acked - prev.Acked, Received: recv - prev.Received})
}

// closeAll disconnects every connection and waits for its reader.
func (r *benchRunner) closeAll() {
	r.mu.Lock()
	conns := r.conns
	r.conns = nil
	r.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, benchConnectConcurrency)
	for _, c := range conns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.close()
			<-sem
		}()
	}
	wg.Wait()
}
