package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

var (
	_ broker.OnConnect     = (*Webhook)(nil)
	_ broker.OnDisconnect  = (*Webhook)(nil)
	_ broker.OnPublish     = (*Webhook)(nil)
	_ broker.OnSubscribe   = (*Webhook)(nil)
	_ broker.OnUnsubscribe = (*Webhook)(nil)
	_ broker.OnDrop        = (*Webhook)(nil)
)

// Options are what a Webhook needs beside its Config.
type Options struct {
	Node   string       // the "node" of every event: this broker's name
	Logger *slog.Logger // default: slog.Default()
	// Client sends the POSTs; default: one of its own, with the
	// system's certificate authorities and Config.Timeout.
	Client *http.Client
	// The backoff between retries doubles from MinBackoff up to
	// MaxBackoff, with jitter; defaults 200ms and 30s.
	MinBackoff, MaxBackoff time.Duration
}

// Stats counts a webhook's events since New.
type Stats struct {
	Sent    int64 // accepted by the receiver (2xx)
	Failed  int64 // given up: a 4xx but 429, a TLS failure, retries exhausted, or unsent at Close
	Dropped int64 // never queued: the queue was full, or the webhook closed
	Retried int64 // POSTs sent again (not events)
	Queued  int64 // waiting now
}

// maxBatchPayload stops a batch from growing past this many payload bytes.
const maxBatchPayload = 1 << 20

// Webhook sends the events its Config selects to one URL. Its hook
// methods only queue; one goroutine sends.
type Webhook struct {
	cfg    *parsed
	url    string // redacted, for logs
	node   string
	log    *slog.Logger
	client *http.Client
	minBO  time.Duration
	maxBO  time.Duration

	queue   chan *event
	closing atomic.Bool
	stop    chan struct{} // closed by Close: send what is queued, then end
	done    chan struct{} // closed when the sender has ended
	ctx     context.Context
	cancel  context.CancelFunc // aborts POSTs and backoff when Close's ctx ends

	sent, failed, dropped, retried atomic.Int64
	dropLogged                     atomic.Int64 // unix nanoseconds of the last drop logged
	failLogged                     time.Time    // sender only
	failSince                      int64        // sender only: failures not logged
}

// New checks cfg and starts the webhook's sender; Close stops it.
func New(cfg Config, o Options) (*Webhook, error) {
	p, err := cfg.parse()
	if err != nil {
		return nil, err
	}
	w := &Webhook{cfg: p, url: p.url.Redacted(), node: o.Node, log: o.Logger, client: o.Client,
		minBO: o.MinBackoff, maxBO: o.MaxBackoff,
		queue: make(chan *event, p.QueueSize), stop: make(chan struct{}), done: make(chan struct{})}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		w.client = &http.Client{Transport: tr, Timeout: p.Timeout}
	}
	if w.minBO <= 0 {
		w.minBO = 200 * time.Millisecond
	}
	if w.maxBO <= 0 {
		w.maxBO = 30 * time.Second
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.run()
	return w, nil
}

// Stats returns the webhook's counters.
func (w *Webhook) Stats() Stats {
	return Stats{Sent: w.sent.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load(),
		Retried: w.retried.Load(), Queued: int64(len(w.queue))}
}

// URL returns the webhook's URL without its password, if any.
func (w *Webhook) URL() string { return w.url }

// Close stops taking events and sends those queued; when ctx ends first,
// the POST in progress is abandoned and what is left counts as failed.
func (w *Webhook) Close(ctx context.Context) error {
	if w.closing.Swap(true) {
		<-w.done
		return nil
	}
	close(w.stop)
	select {
	case <-w.done:
		w.cancel()
		return nil
	case <-ctx.Done():
		w.cancel()
		<-w.done
		return fmt.Errorf("webhook %s: closed before every queued event was sent: %w", w.url, ctx.Err())
	}
}

// OnConnect queues client.connected.
func (w *Webhook) OnConnect(c *auth.Client) {
	if w.cfg.events&kConnected != 0 {
		w.enqueue(&event{kind: kConnected, at: time.Now(), client: c})
	}
}

// OnDisconnect queues client.disconnected; the reason is err's text,
// none after a DISCONNECT from the client.
func (w *Webhook) OnDisconnect(c *auth.Client, err error) {
	if w.cfg.events&kDisconnected != 0 {
		e := &event{kind: kDisconnected, at: time.Now(), client: c}
		if err != nil {
			e.reason = err.Error()
		}
		w.enqueue(e)
	}
}

// OnSubscribe queues client.subscribed.
func (w *Webhook) OnSubscribe(c *auth.Client, s packet.Subscription) {
	if w.cfg.events&kSubscribed != 0 {
		w.enqueue(&event{kind: kSubscribed, at: time.Now(), client: c, topic: s.Filter, qos: s.QoS})
	}
}

// OnUnsubscribe queues client.unsubscribed.
func (w *Webhook) OnUnsubscribe(c *auth.Client, filter string) {
	if w.cfg.events&kUnsubscribed != 0 {
		w.enqueue(&event{kind: kUnsubscribed, at: time.Now(), client: c, topic: filter})
	}
}

// OnPublish queues message.published for a topic the webhook wants; it
// never refuses a message.
func (w *Webhook) OnPublish(c *auth.Client, m *broker.Message) error {
	if w.cfg.events&kPublished != 0 && w.wants(m.Topic) {
		w.enqueue(w.message(kPublished, c, m, ""))
	}
	return nil
}

// OnDrop queues message.dropped; to is the subscriber that missed m.
func (w *Webhook) OnDrop(to *auth.Client, m *broker.Message, why broker.DropReason) {
	if w.cfg.events&kDropped != 0 && w.wants(m.Topic) {
		w.enqueue(w.message(kDropped, to, m, why.String()))
	}
}

func (w *Webhook) message(k kind, c *auth.Client, m *broker.Message, reason string) *event {
	return &event{kind: k, at: time.Now(), client: c, topic: m.Topic, qos: m.QoS, retain: m.Retain,
		payload: m.Payload, user: m.Properties.User, reason: reason}
}

// wants reports whether a message event on name passes the topic filters.
func (w *Webhook) wants(name string) bool {
	if len(w.cfg.Topics) == 0 {
		return true
	}
	for _, f := range w.cfg.Topics {
		if topic.Match(f, name) {
			return true
		}
	}
	return false
}

// enqueue puts e in the queue, or drops it when the queue is full: it
// never waits.
func (w *Webhook) enqueue(e *event) {
	if !w.closing.Load() {
		select {
		case w.queue <- e:
			return
		default:
		}
	}
	n := w.dropped.Add(1)
	now := time.Now().UnixNano()
	if last := w.dropLogged.Load(); now-last >= int64(time.Minute) && w.dropLogged.CompareAndSwap(last, now) {
		w.log.Warn("webhook queue full: events dropped", "url", w.url, "queue_size", w.cfg.QueueSize, "dropped_total", n)
	}
}

// run is the sender: it takes what is queued, in batches, until Close.
func (w *Webhook) run() {
	defer close(w.done)
	batch := make([]*event, 0, w.cfg.BatchSize)
	for {
		select {
		case e := <-w.queue:
			batch = w.fill(append(batch, e))
		case <-w.stop:
			// Send what is left, unless Close's deadline has passed.
			for {
				batch = w.fill(batch)
				if len(batch) == 0 {
					return
				}
				if w.ctx.Err() != nil {
					w.failed.Add(int64(len(batch)))
					clear(batch)
					batch = batch[:0]
					continue
				}
				w.send(batch)
				clear(batch)
				batch = batch[:0]
			}
		}
		w.send(batch)
		clear(batch)
		batch = batch[:0]
	}
}

// fill adds to batch the events already waiting, up to the batch's
// bounds.
func (w *Webhook) fill(batch []*event) []*event {
	size := 0
	for _, e := range batch {
		size += len(e.payload)
	}
	for len(batch) < w.cfg.BatchSize && size < maxBatchPayload {
		select {
		case e := <-w.queue:
			batch = append(batch, e)
			size += len(e.payload)
		default:
			return batch
		}
	}
	return batch
}

// send POSTs batch, retrying as the package documentation says.
func (w *Webhook) send(batch []*event) {
	body, err := encode(w.node, batch)
	if err != nil { // not expected: every field is a string or number
		w.fail(len(batch), err, "encoding")
		return
	}
	for attempt := 0; ; attempt++ {
		retry, wait, err := w.post(body)
		if err == nil {
			w.sent.Add(int64(len(batch)))
			return
		}
		if !retry || attempt >= w.cfg.MaxRetries || w.ctx.Err() != nil {
			w.fail(len(batch), err, failure(err))
			return
		}
		w.retried.Add(1)
		if wait <= 0 {
			wait = w.backoff(attempt)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-w.ctx.Done():
			t.Stop()
		}
	}
}

// backoff is the wait before retry number attempt+1: doubling from
// minBO, at most maxBO, with ±20% jitter so that webhooks do not retry
// in step.
func (w *Webhook) backoff(attempt int) time.Duration {
	d := w.minBO << min(attempt, 30)
	if d <= 0 || d > w.maxBO {
		d = w.maxBO
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// statusError is a response other than 2xx.
type statusError struct{ code int }

func (e statusError) Error() string {
	return "HTTP " + strconv.Itoa(e.code) + " " + http.StatusText(e.code)
}

// post sends body once. It reports whether a failure is worth retrying
// and, for a Retry-After, how long to wait.
func (w *Webhook) post(body []byte) (retry bool, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tern-webhook")
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return !isTLS(err), 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, 0, nil
	case c == http.StatusTooManyRequests || c >= 500:
		if c == http.StatusTooManyRequests || c == http.StatusServiceUnavailable {
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
				wait = min(time.Duration(s)*time.Second, w.maxBO)
			}
		}
		return true, wait, statusError{c}
	default:
		return false, 0, statusError{c}
	}
}

// isTLS reports whether err is a TLS handshake or certificate failure:
// a configuration problem that retrying does not solve.
func isTLS(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &record) || errors.As(err, &alert)
}

// failure names the kind of err for the log.
func failure(err error) string {
	var se statusError
	switch {
	case isTLS(err):
		return "TLS failure (is the receiver's certificate trusted, and valid for its host name?)"
	case errors.As(err, &se) && se.code >= 400 && se.code < 500 && se.code != http.StatusTooManyRequests:
		return "refused by the receiver"
	case errors.As(err, &se):
		return "receiver error, retries exhausted"
	}
	return "network error, retries exhausted"
}

// fail counts n events as failed and logs it: the first failure at once,
// then at most once a minute, with the failures in between.
func (w *Webhook) fail(n int, err error, what string) {
	w.failed.Add(int64(n))
	w.failSince += int64(n)
	if now := time.Now(); now.Sub(w.failLogged) >= time.Minute {
		w.log.Error("webhook: events not sent: "+what, "url", w.url, "events", w.failSince,
			"failed_total", w.failed.Load(), "err", err)
		w.failLogged, w.failSince = now, 0
	}
}
