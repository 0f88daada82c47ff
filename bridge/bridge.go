package bridge

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// StateTopic is where bridge name's state is published, retained: "1"
// while connected to the remote, "0" otherwise (as Mosquitto does).
func StateTopic(name string) string { return "$SYS/broker/connection/" + name + "/state" }

// Stats are a bridge's counters since it started.
type Stats struct {
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
	// Queued is what waits for the remote: in the broker's queue for
	// the bridge's local session, plus messages being forwarded.
	Queued   int64 `json:"queued"`
	Sent     int64 `json:"sent"`     // forwarded to the remote and acknowledged by it (QoS 0: written)
	Received int64 `json:"received"` // forwarded from the remote and published locally
	// Dropped counts messages the bridge could not forward: refused by
	// the other side, matching no configured topic any more, or QoS 0
	// beyond the remote side's queue. Messages dropped by the broker
	// for a full queue are in its own counters.
	Dropped int64 `json:"dropped"`
	// Suppressed counts echoes from a pre-5 remote dropped (see the
	// package documentation).
	Suppressed int64 `json:"suppressed"`
}

// remoteQueue bounds the remote side's in-memory queue: QoS 1 and 2
// messages from the broker are bounded before (the bridge's in-flight
// window, limits.max_inflight); QoS 0 beyond it is dropped while the
// remote is away.
const remoteQueue = 10000

// Bridge is one running bridge.
type Bridge struct {
	cfg    *resolved
	b      *broker.Broker
	log    *slog.Logger
	local  *client.Session
	remote *client.Session
	echo   *echoes // nil for a v5 remote

	ctx    context.Context
	cancel context.CancelFunc
	// ready is closed once remote is set. The local side connects as
	// soon as it is made and the broker hands it at once what it queued
	// for the bridge (after a restart, say): fromLocal waits for ready
	// before it forwards to the remote side.
	ready chan struct{}
	wg    sync.WaitGroup
	outq  chan pending
	inq   chan pending

	connected                                       atomic.Bool
	forwarding, sent, received, dropped, suppressed atomic.Int64
}

// pending is a message forwarded and not yet acknowledged by the other
// side; from is acknowledged once done says it was.
type pending struct {
	p    *packet.Publish
	done <-chan error
}

// start runs a bridge for c on b.
func start(b *broker.Broker, c *resolved, node string, log *slog.Logger) (*Bridge, error) {
	br := &Bridge{cfg: c, b: b, log: log.With("bridge", c.Name),
		outq: make(chan pending, remoteQueue), inq: make(chan pending, remoteQueue), ready: make(chan struct{})}
	br.ctx, br.cancel = context.WithCancel(context.Background())
	if c.version() != packet.V5 {
		br.echo = newEchoes()
	}
	addr := LocalAddr{Bridge: c.Name}
	local, err := client.NewSession(client.SessionOptions{
		Options: client.Options{
			Dial: func(context.Context) (net.Conn, error) {
				cc, sc := net.Pipe()
				go b.ServeConn(pipeConn{sc, addr})
				return cc, nil
			},
			Version:    packet.V5,
			ClientID:   LocalClientID(c.Name),
			Properties: packet.Properties{SessionExpiry: new(uint32(math.MaxUint32))},
			ManualAck:  true,
			OnMessage:  br.fromLocal,
		},
		Backoff:   client.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second},
		MaxQueued: remoteQueue,
		OnConnectError: func(err error) {
			br.log.Warn("bridge: local connection failed", "err", err)
		},
	})
	if err != nil {
		return nil, err
	}
	br.local = local

	id := c.ClientID
	if id == "" {
		id = "tern-bridge-" + c.Name + "-" + node
	}
	ro := client.SessionOptions{
		Options: client.Options{
			URL:        c.URL,
			TLSConfig:  c.tls,
			Version:    c.version(),
			ClientID:   id,
			CleanStart: c.CleanStart,
			ManualAck:  true,
			OnMessage:  br.fromRemote,
		},
		MaxQueued: remoteQueue,
		OnConnect: func(ca *packet.Connack) {
			br.connected.Store(true)
			br.log.Info("bridge connected", "url", c.URL, "session_present", ca.SessionPresent)
			br.publishState(true)
		},
		OnConnectionLost: func(err error) {
			br.connected.Store(false)
			br.log.Warn("bridge connection lost", "url", c.URL, "err", err)
			br.publishState(false)
		},
		OnConnectError: func(err error) {
			br.log.Warn("bridge: cannot connect", "url", c.URL, "err", err)
		},
	}
	if c.Username != "" {
		ro.Username, ro.UsernameSet = c.Username, true
	}
	if c.password != nil {
		ro.Password, ro.PasswordSet = c.password, true
	}
	if c.version() != packet.V5 {
		// See client.Options.MaxInflight: Mosquitto's default.
		ro.MaxInflight = 20
	}
	if c.version() == packet.V5 && !c.CleanStart {
		// Kept by the remote while the bridge is away.
		ro.Properties.SessionExpiry = new(uint32(math.MaxUint32))
	}
	br.publishState(false)
	remote, err := client.NewSession(ro)
	if err != nil {
		br.cancel()
		local.Close()
		return nil, err
	}
	br.remote = remote
	close(br.ready)

	br.wg.Add(3)
	go br.acks(br.outq, br.local, &br.sent)
	go br.acks(br.inq, br.remote, &br.received)
	go br.subscribe()
	return br, nil
}

// subscribe makes the subscriptions of both sides, and on the local side
// removes those left by an earlier configuration.
func (br *Bridge) subscribe() {
	defer br.wg.Done()
	want := make(map[string]bool)
	var local, remote []packet.Subscription
	for _, t := range br.cfg.Topics {
		if t.out() {
			want[t.localFilter()] = true
			// Retained messages once, when the subscription is new: not
			// again each time the bridge starts.
			local = append(local, packet.Subscription{Filter: t.localFilter(), QoS: t.QoS,
				NoLocal: true, RetainAsPublished: true, RetainHandling: 1})
		}
		if t.in() {
			s := packet.Subscription{Filter: t.remoteFilter(), QoS: t.QoS}
			if br.cfg.version() == packet.V5 {
				s.NoLocal, s.RetainAsPublished, s.RetainHandling = true, true, 1
			}
			remote = append(remote, s)
		}
	}
	id := LocalClientID(br.cfg.Name)
	subs, _ := br.b.Subscriptions(broker.SubscriptionQuery{ClientID: id})
	var stale []string
	for _, s := range subs {
		if s.ClientID == id && !want[s.Filter] {
			stale = append(stale, s.Filter)
		}
	}
	if len(stale) > 0 {
		if _, err := br.local.Unsubscribe(br.ctx, stale...); err != nil && br.ctx.Err() == nil {
			br.log.Error("bridge: unsubscribe locally", "filters", stale, "err", err)
		}
	}
	if len(local) > 0 {
		if sa, err := br.local.Subscribe(br.ctx, local...); err != nil {
			if br.ctx.Err() == nil {
				br.log.Error("bridge: subscribe locally", "err", err)
			}
		} else {
			br.checkSuback("local", local, sa)
		}
	}
	if len(remote) > 0 {
		if sa, err := br.remote.Subscribe(br.ctx, remote...); err != nil {
			if br.ctx.Err() == nil {
				br.log.Error("bridge: subscribe on the remote", "err", err)
			}
		} else {
			br.checkSuback("remote", remote, sa)
		}
	}
}

func (br *Bridge) checkSuback(side string, subs []packet.Subscription, sa *packet.Suback) {
	for i, code := range sa.ReasonCodes {
		if i < len(subs) && code >= 0x80 {
			br.log.Error("bridge: subscription refused", "side", side, "filter", subs[i].Filter, "reason", code)
		}
	}
}

// fromLocal forwards a message of the broker to the remote; it runs on
// the local side's delivery goroutine, in order.
func (br *Bridge) fromLocal(p *packet.Publish) {
	select {
	case <-br.ready:
	case <-br.ctx.Done():
		return // not started: p is not acknowledged and comes again
	}
	var t *Topic
	for i := range br.cfg.Topics {
		if tt := &br.cfg.Topics[i]; tt.out() && topic.Match(tt.localFilter(), p.Topic) {
			t = tt
			break
		}
	}
	if t == nil || len(p.Topic) < len(t.LocalPrefix) {
		br.drop(br.local, p, "no bridged topic matches", nil)
		return
	}
	out := &packet.Publish{Topic: t.RemotePrefix + p.Topic[len(t.LocalPrefix):], Payload: p.Payload,
		QoS: min(p.QoS, t.QoS), Retain: p.Retain}
	if br.cfg.version() == packet.V5 {
		out.Properties = appProperties(p.Properties)
	}
	if br.echo != nil && br.comesBack(out.Topic) {
		br.echo.add(out.Topic, out.Payload)
	}
	br.forward(br.remote, br.local, br.outq, p, out)
}

// comesBack reports whether a pre-5 remote would send topic back: an in
// subscription matches it.
func (br *Bridge) comesBack(name string) bool {
	for _, t := range br.cfg.Topics {
		if t.in() && topic.Match(t.remoteFilter(), name) {
			return true
		}
	}
	return false
}

// fromRemote publishes a message of the remote locally; it runs on the
// remote side's delivery goroutine, in order.
func (br *Bridge) fromRemote(p *packet.Publish) {
	if br.echo != nil && br.echo.take(p.Topic, p.Payload) {
		br.suppressed.Add(1)
		br.ack(br.remote, p)
		return
	}
	var t *Topic
	for i := range br.cfg.Topics {
		if tt := &br.cfg.Topics[i]; tt.in() && topic.Match(tt.remoteFilter(), p.Topic) {
			t = tt
			break
		}
	}
	if t == nil || len(p.Topic) < len(t.RemotePrefix) {
		br.drop(br.remote, p, "no bridged topic matches", nil)
		return
	}
	in := &packet.Publish{Topic: t.LocalPrefix + p.Topic[len(t.RemotePrefix):], Payload: p.Payload,
		QoS: min(p.QoS, t.QoS), Retain: p.Retain}
	if br.cfg.version() == packet.V5 {
		in.Properties = appProperties(p.Properties)
	}
	br.forward(br.local, br.remote, br.inq, p, in)
}

// forward queues out on to and hands the flow to the acknowledger, which
// acknowledges p on from once to has acknowledged out.
func (br *Bridge) forward(to, from *client.Session, q chan pending, p, out *packet.Publish) {
	done, err := to.Queue(out)
	if err != nil {
		if errors.Is(err, client.ErrClosed) {
			return // stopping: p is not acknowledged and comes again
		}
		br.drop(from, p, "cannot queue", err)
		return
	}
	if q == br.outq {
		br.forwarding.Add(1)
	}
	select {
	case q <- pending{p, done}:
	case <-br.ctx.Done():
	}
}

// acks acknowledges, in order, the messages forwarded from from once the
// other side has them.
func (br *Bridge) acks(q chan pending, from *client.Session, count *atomic.Int64) {
	defer br.wg.Done()
	for {
		var pd pending
		select {
		case pd = <-q:
		case <-br.ctx.Done():
			return
		}
		var err error
		select {
		case err = <-pd.done:
		case <-br.ctx.Done():
			return
		}
		if q == br.outq {
			br.forwarding.Add(-1)
		}
		switch {
		case err == nil:
			count.Add(1)
			br.ack(from, pd.p)
		case errors.Is(err, client.ErrClosed):
			// Stopping: not acknowledged, so it comes again.
		default:
			br.drop(from, pd.p, "refused", err)
		}
	}
}

// drop counts and logs a message not forwarded and acknowledges it, so
// that it does not come again.
func (br *Bridge) drop(from *client.Session, p *packet.Publish, why string, err error) {
	br.dropped.Add(1)
	br.log.Warn("bridge: message dropped", "topic", p.Topic, "qos", p.QoS, "why", why, "err", err)
	br.ack(from, p)
}

func (br *Bridge) ack(from *client.Session, p *packet.Publish) {
	if err := from.Ack(p); err != nil && !errors.Is(err, client.ErrNotAwaitingAck) {
		br.log.Debug("bridge: acknowledgement not sent", "topic", p.Topic, "err", err)
	}
}

// appProperties are the v5 properties of a message that travel with it.
func appProperties(p packet.Properties) packet.Properties {
	return packet.Properties{PayloadFormat: p.PayloadFormat, MessageExpiry: p.MessageExpiry,
		ContentType: p.ContentType, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData, User: p.User}
}

// publishState publishes the bridge's state retained under StateTopic.
func (br *Bridge) publishState(up bool) {
	v := "0"
	if up {
		v = "1"
	}
	if err := br.b.Publish(&broker.Message{Topic: StateTopic(br.cfg.Name), Payload: []byte(v), Retain: true}); err != nil {
		br.log.Warn("bridge: state not published", "err", err)
	}
}

// stop ends both sides. Messages not yet acknowledged to the broker stay
// in the bridge's session and go out when it starts again.
func (br *Bridge) stop() {
	br.cancel()
	br.remote.Close()
	br.local.Close()
	br.wg.Wait()
	br.connected.Store(false)
	br.publishState(false)
}

// Stats returns the bridge's counters.
func (br *Bridge) Stats() Stats {
	s := Stats{Name: br.cfg.Name, Connected: br.connected.Load(), Sent: br.sent.Load(),
		Received: br.received.Load(), Dropped: br.dropped.Load(), Suppressed: br.suppressed.Load()}
	s.Queued = br.forwarding.Load()
	if ci, _, err := br.b.Client(LocalClientID(br.cfg.Name)); err == nil {
		s.Queued += int64(ci.Queued)
	}
	return s
}
