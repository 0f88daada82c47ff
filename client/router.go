package client

import (
	"context"
	"errors"
	"sync"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// Handler handles a received message. It runs on the delivery goroutine,
// like Options.OnMessage, and the message is acknowledged when it returns
// (with Options.ManualAck, when Ack is called).
type Handler func(*packet.Publish)

// Router hands each received message to the handlers whose topic filter
// matches its topic. A Client has one (SubscribeFunc fills it); a Router
// can also be used alone from an OnMessage function. The zero value is
// ready to use, and a Router is safe for concurrent use.
//
// A shared subscription's filter "$share/group/f" matches what f matches.
// Filters are tried in the order they were first registered; a handful
// to a few hundred filters is the intended scale.
type Router struct {
	mu     sync.RWMutex
	routes []route
}

type route struct {
	filter string // as registered
	match  string // the filter matched against topics: without $share/group/
	h      Handler
}

// Handle registers h for filter, replacing the handler registered for the
// same filter before. A nil h removes the filter.
func (r *Router) Handle(filter string, h Handler) {
	if h == nil {
		r.Remove(filter)
		return
	}
	match := filter
	if _, inner, ok := topic.ParseShared(filter); ok {
		match = inner
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.routes {
		if r.routes[i].filter == filter {
			r.routes[i].h = h
			return
		}
	}
	r.routes = append(r.routes, route{filter: filter, match: match, h: h})
}

// Remove unregisters filter's handler.
func (r *Router) Remove(filter string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.routes {
		if r.routes[i].filter == filter {
			r.routes = append(r.routes[:i], r.routes[i+1:]...)
			return
		}
	}
}

// Route calls, in registration order, every handler whose filter matches
// p's topic, and reports whether there was one. Overlapping filters each
// see the message; a server that delivers one copy per matching
// subscription (mosquitto does, Tern sends one) makes each handler see it
// once per copy.
func (r *Router) Route(p *packet.Publish) bool {
	r.mu.RLock()
	var hs []Handler
	var one [4]Handler
	hs = one[:0]
	for i := range r.routes {
		if topic.Match(r.routes[i].match, p.Topic) {
			hs = append(hs, r.routes[i].h)
		}
	}
	r.mu.RUnlock()
	// Handlers run without the lock, so that they may subscribe.
	for _, h := range hs {
		h(p)
	}
	return len(hs) > 0
}

// empty reports whether no handler is registered.
func (r *Router) empty() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.routes) == 0
}

// SubscribeFunc subscribes like Subscribe and routes the messages matching
// subs' filters to h instead of OnMessage. h is registered before the
// SUBSCRIBE is sent, so that retained messages reach it, and removed again
// for the filters the server refuses or when Subscribe fails. Unsubscribe
// removes the handlers of its filters.
func (c *Client) SubscribeFunc(ctx context.Context, h Handler, subs ...packet.Subscription) (*packet.Suback, error) {
	if h == nil {
		return nil, errors.New("client: subscribe: nil handler")
	}
	for i := range subs {
		c.router.Handle(subs[i].Filter, h)
	}
	sa, err := c.Subscribe(ctx, subs...)
	for i := range subs {
		if !granted(sa, err, i) {
			c.router.Remove(subs[i].Filter)
		}
	}
	return sa, err
}

// granted reports whether the SUBSCRIBE that got sa and err was granted
// its i-th filter.
func granted(sa *packet.Suback, err error, i int) bool {
	return err == nil && i < len(sa.ReasonCodes) && !sa.ReasonCodes[i].IsFailure()
}
