package bench

import (
	"strconv"
	"strings"
)

// benchPlan is who a scenario connects and what each receiver must get.
// Knowing it up front is what lets the summary compute loss exactly: a
// receiver expects every message of the publishers in its range.
type benchPlan struct {
	idle  []benchSubPlan // conn scenario: held idle; filter "" unless each subscribes
	pubs  []benchPubPlan
	subs  []benchSubPlan
	recvs []benchRecvPlan // empty when the publishers are unknown (sub)
}

type benchPubPlan struct {
	id, topic string
}

type benchSubPlan struct {
	id, filter string
	recv       int // index into recvs, -1: no expectation
}

// benchRecvPlan is one logical receiver: a subscriber, or all the members
// of a shared subscription group, which together get each message once.
type benchRecvPlan struct {
	pubFirst, pubN int // publishers [pubFirst, pubFirst+pubN)
}

// expandTopic replaces %i in pattern with i.
func expandTopic(pattern string, i int) string {
	return strings.ReplaceAll(pattern, "%i", strconv.Itoa(i))
}

// wildcardTopic turns a publish pattern into the filter that matches every
// publisher's topic: each %i becomes +. "%i" must be a whole level for
// that to be a valid filter; the caller validates.
func wildcardTopic(pattern string) string {
	return strings.ReplaceAll(pattern, "%i", "+")
}

func planBench(cfg *config) benchPlan {
	var p benchPlan
	n := cfg.clients
	filter := func(f string) string {
		if cfg.shared != "" {
			return "$share/" + cfg.shared + "/" + f
		}
		return f
	}
	pub := func(i int, topic string) {
		p.pubs = append(p.pubs, benchPubPlan{id: cfg.idPrefix + "-pub-" + strconv.Itoa(i), topic: topic})
	}
	sub := func(i int, f string, recv int) {
		p.subs = append(p.subs, benchSubPlan{id: cfg.idPrefix + "-sub-" + strconv.Itoa(i), filter: filter(f), recv: recv})
	}
	switch cfg.scenario {
	case "conn":
		for i := range n {
			c := benchSubPlan{id: cfg.idPrefix + "-conn-" + strconv.Itoa(i), recv: -1}
			if cfg.idleSub {
				c.filter = filter(expandTopic(cfg.topic, i))
			}
			p.idle = append(p.idle, c)
		}
	case "pub":
		for i := range n {
			pub(i, expandTopic(cfg.topic, i))
		}
	case "sub":
		for i := range n {
			sub(i, expandTopic(cfg.topic, i), -1)
		}
	case "fanin":
		for i := range n {
			pub(i, expandTopic(cfg.topic, i))
		}
		sub(0, wildcardTopic(cfg.topic), 0)
		p.recvs = []benchRecvPlan{{0, n}}
	case "fanout":
		t := expandTopic(cfg.topic, 0)
		pub(0, t)
		for i := range n {
			recv := i
			if cfg.shared != "" {
				recv = 0 // one group: each message once, to any member
			}
			sub(i, t, recv)
		}
		p.recvs = make([]benchRecvPlan, len(p.subs))
		if cfg.shared != "" {
			p.recvs = p.recvs[:1]
		}
		for i := range p.recvs {
			p.recvs[i] = benchRecvPlan{0, 1}
		}
	case "p2p":
		for i := range n {
			t := expandTopic(cfg.topic, i)
			pub(i, t)
			sub(i, t, i)
			p.recvs = append(p.recvs, benchRecvPlan{i, 1})
		}
	}
	return p
}
