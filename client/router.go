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
	gen    uint64 // the last registration's number
}

type route struct {
	filter string // as registered
	match  string // the filter matched against topics: without $share/group/
	h      Handler
	gen    uint64 // which registration put h here
}

// Handle registers h for filter, replacing the handler registered for the
// same filter before. A nil h removes the filter.
func (r *Router) Handle(filter string, h Handler) {
	if h == nil {
		r.Remove(filter)
		return
	}
	r.swap(filter, h)
}

// swap registers h for filter and returns what it replaced (prev.h nil:
// nothing) and the registration, for undo.
func (r *Router) swap(filter string, h Handler) (prev route, now uint64) {
	match := filter
	if _, inner, ok := topic.ParseShared(filter); ok {
		match = inner
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	for i := range r.routes {
		if r.routes[i].filter == filter {
			prev = r.routes[i]
			r.routes[i].h, r.routes[i].gen = h, r.gen
			return prev, r.gen
		}
	}
	r.routes = append(r.routes, route{filter: filter, match: match, h: h, gen: r.gen})
	return prev, r.gen
}

// undo takes back the registration now of filter, which replaced prev,
// unless a later one replaced it meanwhile: then that one stays.
func (r *Router) undo(filter string, prev route, now uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.routes {
		if r.routes[i].filter != filter || r.routes[i].gen != now {
			continue
		}
		if prev.h != nil {
			r.routes[i].h, r.routes[i].gen = prev.h, prev.gen
		} else {
			r.routes = append(r.routes[:i], r.routes[i+1:]...)
		}
		return
	}
}

// handleAll registers h for every filter of subs and returns the function
// that takes back the registration of filter i (see undo).
func (r *Router) handleAll(h Handler, subs []packet.Subscription) (undo func(i int)) {
	prev := make([]route, len(subs))
	now := make([]uint64, len(subs))
	for i := range subs {
		prev[i], now[i] = r.swap(subs[i].Filter, h)
	}
	return func(i int) { r.undo(subs[i].Filter, prev[i], now[i]) }
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
// SUBSCRIBE is sent, so that retained messages reach it, replacing the
// handler of an earlier subscription to the same filter. For the filters
// the server refuses, or all when Subscribe fails or ctx ends, that is
// undone: the earlier handler, if any, is back (unless another call
// registered one for the filter meanwhile). Unsubscribe removes the
// handlers of its filters.
func (c *Client) SubscribeFunc(ctx context.Context, h Handler, subs ...packet.Subscription) (*packet.Suback, error) {
	if h == nil {
		return nil, errors.New("client: subscribe: nil handler")
	}
	undo := c.router.handleAll(h, subs)
	sa, err := c.Subscribe(ctx, subs...)
	for i := range subs {
		if !granted(sa, err, i) {
			undo(i)
		}
	}
	return sa, err
}

// granted reports whether the SUBSCRIBE that got sa and err was granted
// its i-th filter.
func granted(sa *packet.Suback, err error, i int) bool {
	var se *SubscribeError
	if err != nil && !errors.As(err, &se) {
		return false
	}
	return sa != nil && i < len(sa.ReasonCodes) && !sa.ReasonCodes[i].IsFailure()
}
