package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/ternmq/tern/packet"
)

// ErrNoResponseTopic is returned by NewResponse for a message that asks for
// no response.
var ErrNoResponseTopic = errors.New("client: message has no response topic")

// requestConn is what Request needs of a Client or a Session.
type requestConn interface {
	Publish(ctx context.Context, p *packet.Publish) error
	SubscribeFunc(ctx context.Context, h Handler, subs ...packet.Subscription) (*packet.Suback, error)
}

// requester matches responses to requests (MQTT 5.0 4.10): one response
// topic per Client or Session, subscribed on the first Request, and a
// Correlation Data value per request.
type requester struct {
	subMu sync.Mutex // held while subscribing, so that only one call does
	mu    sync.Mutex
	topic string // the response topic, once subscribed
	wait  map[string]chan *packet.Publish
}

// request publishes p with a Response Topic and Correlation Data and
// returns the first message on the response topic carrying that
// Correlation Data. base is the Response Information from the CONNACK,
// if any.
func (r *requester) request(ctx context.Context, conn requestConn, closed <-chan struct{}, version byte, base string, p *packet.Publish) (*packet.Publish, error) {
	if version != packet.V5 {
		return nil, errors.New("client: request/response needs MQTT 5")
	}
	rt, err := r.subscribe(ctx, conn, base)
	if err != nil {
		return nil, err
	}
	corr := []byte(rand.Text())
	ch := make(chan *packet.Publish, 1)
	r.mu.Lock()
	r.wait[string(corr)] = ch
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.wait, string(corr))
		r.mu.Unlock()
	}()
	pp := *p
	pp.Properties.ResponseTopic = rt
	pp.Properties.CorrelationData = corr
	if err := conn.Publish(ctx, &pp); err != nil {
		return nil, err
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-closed:
		return nil, ErrClosed
	}
}

// subscribe subscribes to the response topic once and returns it.
func (r *requester) subscribe(ctx context.Context, conn requestConn, base string) (string, error) {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	r.mu.Lock()
	rt := r.topic
	r.mu.Unlock()
	if rt != "" {
		return rt, nil
	}
	if base == "" {
		base = "tern/response"
	}
	rt = base + "/" + rand.Text()
	if _, err := conn.SubscribeFunc(ctx, r.deliver, packet.Subscription{Filter: rt, QoS: 1}); err != nil {
		return "", fmt.Errorf("client: subscribing to the response topic: %w", err)
	}
	r.mu.Lock()
	r.topic = rt
	if r.wait == nil {
		r.wait = make(map[string]chan *packet.Publish)
	}
	r.mu.Unlock()
	return rt, nil
}

// deliver hands a response to its request; others (late, or unknown) are
// dropped.
func (r *requester) deliver(p *packet.Publish) {
	r.mu.Lock()
	ch := r.wait[string(p.Properties.CorrelationData)]
	delete(r.wait, string(p.Properties.CorrelationData))
	r.mu.Unlock()
	if ch != nil {
		ch <- p
	}
}

// Request publishes payload to topic at QoS 1 as a v5 request and waits for
// the response: it sets Response Topic and Correlation Data, subscribes to
// the response topic on the first call (under the CONNACK's Response
// Information when the server offers one), and returns the message there
// with the same Correlation Data. Responders answer with NewResponse.
func (c *Client) Request(ctx context.Context, topic string, payload []byte) (*packet.Publish, error) {
	return c.RequestPublish(ctx, &packet.Publish{Topic: topic, QoS: 1, Payload: payload})
}

// RequestPublish is Request for a message of the caller's making (QoS,
// user properties, content type).
func (c *Client) RequestPublish(ctx context.Context, p *packet.Publish) (*packet.Publish, error) {
	return c.req.request(ctx, c, c.closed, c.version, c.connack.Properties.ResponseInfo, p)
}

// Request is Client.Request over the Session: the response subscription is
// renewed with the others when the server loses the session.
func (s *Session) Request(ctx context.Context, topic string, payload []byte) (*packet.Publish, error) {
	return s.RequestPublish(ctx, &packet.Publish{Topic: topic, QoS: 1, Payload: payload})
}

// RequestPublish is Client.RequestPublish over the Session.
func (s *Session) RequestPublish(ctx context.Context, p *packet.Publish) (*packet.Publish, error) {
	c, err := s.awaitClient(ctx)
	if err != nil {
		return nil, err
	}
	return s.req.request(ctx, s, s.done, s.opts.Version, c.connack.Properties.ResponseInfo, p)
}

// NewResponse returns the response to a v5 request: a QoS 1 message to
// its Response Topic carrying its Correlation Data.
func NewResponse(req *packet.Publish, payload []byte) (*packet.Publish, error) {
	if req.Properties.ResponseTopic == "" {
		return nil, ErrNoResponseTopic
	}
	p := &packet.Publish{Topic: req.Properties.ResponseTopic, QoS: 1, Payload: payload}
	p.Properties.CorrelationData = req.Properties.CorrelationData
	return p, nil
}
