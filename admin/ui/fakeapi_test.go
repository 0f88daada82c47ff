package ui_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/topic"
)

// fakeAPI serves the admin REST API of the contract (/api/v1/...) from
// canned data that stays consistent as the page changes it: a kicked
// client is offline afterwards, a deleted retained message is gone, a
// retained publish shows up in the retained browser. Requests that change
// something need "Authorization: Bearer <token>", as on a loopback admin
// server; reads need nothing. It records what the page asked for.
type fakeAPI struct {
	token     string
	listeners []listenerInfo
	started   time.Time

	mu        sync.Mutex
	clients   []broker.ClientInfo // ordered by client id
	subs      []broker.SubscriptionInfo
	retained  map[string]retainedItem
	kicked    []string
	deleted   []string // sessions
	unretain  []string // retained topics deleted
	published []publishBody
	unauth    int // mutating requests refused for want of the token
	polls     int // GET /api/v1/stats
}

type listenerInfo struct {
	Type    string `json:"type"`
	Address string `json:"address"`
	Path    string `json:"path,omitempty"`
}

type retainedItem struct {
	Topic         string     `json:"topic"`
	QoS           byte       `json:"qos"`
	PayloadBase64 string     `json:"payload_base64"`
	PayloadText   *string    `json:"payload_text,omitempty"`
	Size          int        `json:"size"`
	ContentType   string     `json:"content_type,omitempty"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
}

type publishBody struct {
	Topic          string  `json:"topic"`
	Payload        *string `json:"payload"`
	PayloadBase64  *string `json:"payload_base64"`
	QoS            byte    `json:"qos"`
	Retain         bool    `json:"retain"`
	ContentType    string  `json:"content_type"`
	UserProperties []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"user_properties"`
}

type page[T any] struct {
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
	Items  []T `json:"items"`
}

func newFakeAPI(token string, listeners []listenerInfo) *fakeAPI {
	now := time.Now()
	f := &fakeAPI{token: token, listeners: listeners, started: now.Add(-26 * time.Hour), retained: map[string]retainedItem{}}
	f.clients = []broker.ClientInfo{
		{ClientID: "sensor-1", Username: "alice", Connected: true, Address: "192.0.2.10:50122", ProtocolVersion: 5,
			ConnectedSince: now.Add(-3 * time.Hour), KeepAlive: 60, Persistent: true, Queued: 2, Inflight: 1,
			BytesReceived: 48213, BytesSent: 1290331},
		{ClientID: "sensor-2", Username: "bob", Connected: true, Address: "192.0.2.11:40001", ProtocolVersion: 4,
			ConnectedSince: now.Add(-90 * time.Minute), KeepAlive: 30, BytesReceived: 9120, BytesSent: 21004},
		{ClientID: "archiver", Username: "carol", ProtocolVersion: 5, Persistent: true,
			ExpiresAt: now.Add(20 * time.Hour), Queued: 310},
	}
	for i := range 57 {
		f.clients = append(f.clients, broker.ClientInfo{ClientID: fmt.Sprintf("bulk-%03d", i), Anonymous: true, Connected: true,
			Address: fmt.Sprintf("198.51.100.%d:%d", 1+i, 30000+i), ProtocolVersion: 4, ConnectedSince: now.Add(-time.Duration(i) * time.Minute), KeepAlive: 60})
	}
	slices.SortFunc(f.clients, func(a, b broker.ClientInfo) int { return strings.Compare(a.ClientID, b.ClientID) })
	f.subs = []broker.SubscriptionInfo{
		{ClientID: "archiver", Filter: "#", QoS: 1, SubscriptionID: 7},
		{ClientID: "sensor-1", Filter: "cmd/sensor-1/#", QoS: 2, NoLocal: true},
		{ClientID: "sensor-1", Filter: "home/+/temp", QoS: 1, RetainAsPublished: true},
		{ClientID: "sensor-2", Filter: "home/#", QoS: 0, RetainHandling: 1},
	}
	for i := range f.clients {
		for _, s := range f.subs {
			if s.ClientID == f.clients[i].ClientID {
				f.clients[i].Subscriptions++
			}
		}
	}
	exp := now.Add(time.Hour)
	for _, m := range []struct {
		topic   string
		payload []byte
		qos     byte
		ct      string
		exp     *time.Time
	}{
		{"home/kitchen/temp", []byte("21.5"), 1, "text/plain", nil},
		{"home/kitchen/humidity", []byte("48"), 0, "", nil},
		{"home/door", []byte("open"), 1, "", &exp},
		{"home", []byte("the house"), 0, "", nil},
		{"devices/cam-1/firmware", []byte{0x7f, 'E', 'L', 'F', 0xff, 0x00, 0x10}, 1, "application/octet-stream", nil},
	} {
		f.retained[m.topic] = makeRetained(m.topic, m.payload, m.qos, m.ct, m.exp)
	}
	return f
}

func makeRetained(topic string, payload []byte, qos byte, ct string, exp *time.Time) retainedItem {
	it := retainedItem{Topic: topic, QoS: qos, PayloadBase64: base64.StdEncoding.EncodeToString(payload), Size: len(payload), ContentType: ct, ExpiresAt: exp}
	if utf8.Valid(payload) {
		s := string(payload)
		it.PayloadText = &s
	}
	return it
}

func (f *fakeAPI) handler(static http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", static)
	mux.HandleFunc("GET /api/v1/info", f.info)
	mux.HandleFunc("GET /api/v1/stats", f.stats)
	mux.HandleFunc("GET /api/v1/cluster", f.cluster)
	mux.HandleFunc("GET /api/v1/clients", f.listClients)
	mux.HandleFunc("GET /api/v1/clients/{id}", f.client)
	mux.HandleFunc("POST /api/v1/clients/{id}/disconnect", f.auth(f.disconnect))
	mux.HandleFunc("DELETE /api/v1/sessions/{id}", f.auth(f.deleteSession))
	mux.HandleFunc("GET /api/v1/subscriptions", f.listSubscriptions)
	mux.HandleFunc("GET /api/v1/retained", f.listRetained)
	mux.HandleFunc("GET /api/v1/retained/message", f.retainedMessage)
	mux.HandleFunc("DELETE /api/v1/retained/message", f.auth(f.deleteRetained))
	mux.HandleFunc("POST /api/v1/publish", f.auth(f.publish))
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func (f *fakeAPI) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			f.mu.Lock()
			f.unauth++
			f.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Bearer realm="tern"`)
			fail(w, http.StatusUnauthorized, "credentials required")
			return
		}
		next(w, r)
	}
}

// paging reads offset and limit as the contract has them: limit default
// 50, at most 1000; anything else is a 400.
func paging(w http.ResponseWriter, r *http.Request) (offset, limit int, ok bool) {
	offset, limit = 0, 50
	if s := r.URL.Query().Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			fail(w, http.StatusBadRequest, "offset: want a number >= 0")
			return 0, 0, false
		}
		offset = n
	}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			fail(w, http.StatusBadRequest, "limit: want 1..1000")
			return 0, 0, false
		}
		limit = n
	}
	return offset, limit, true
}

func pageOf[T any](items []T, offset, limit int) page[T] {
	p := page[T]{Total: len(items), Offset: offset, Limit: limit, Items: []T{}}
	if offset < len(items) {
		p.Items = items[offset:min(len(items), offset+limit)]
	}
	return p
}

func (f *fakeAPI) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"version":        "v0.9.0-e2e",
		"started_at":     f.started.UTC().Format(time.RFC3339),
		"uptime_seconds": int64(time.Since(f.started).Seconds()),
		"listeners":      f.listeners,
		"limits":         map[string]any{"max_connections": 10000, "max_packet_size": 268435455, "max_queued_messages": 1000},
	})
}

// cluster is a node of three.
func (f *fakeAPI) cluster(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UTC()
	writeJSON(w, http.StatusOK, map[string]any{
		"enabled": true, "node": "edge-1", "ready": true,
		"nodes": []map[string]any{
			{"name": "edge-1", "self": true, "last_seen": now},
			{"name": "edge-2", "self": false, "last_seen": now.Add(-400 * time.Millisecond)},
			{"name": "edge-3", "self": false, "last_seen": now.Add(-900 * time.Millisecond)},
		},
		"stats": map[string]uint64{"forwarded": 120345, "forward_failed": 0, "received": 98012, "malformed": 0,
			"handed_over": 12, "takeovers": 3, "released": 2},
	})
}

// stats grows its counters by steady rates with a slow wave on top, so
// that the charts have something to draw.
func (f *fakeAPI) stats(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.polls++
	connected := int64(0)
	for _, c := range f.clients {
		if c.Connected {
			connected++
		}
	}
	sessions, subs, retained := int64(len(f.clients)), int64(len(f.subs)), int64(len(f.retained))
	var retainedBytes int64
	for _, m := range f.retained {
		retainedBytes += int64(m.Size)
	}
	kicked := len(f.kicked)
	f.mu.Unlock()
	t := time.Since(f.started).Seconds()
	wave := func(period float64) float64 { // between 0 and 2, 1 on average
		x := t / period
		return 1 + 0.6*math.Sin(2*math.Pi*x) + 0.3*math.Sin(2*math.Pi*x*3.1)
	}
	in := int64(t*1200 + 400*wave(40)*10)
	out := int64(t*3400 + 900*wave(55)*10)
	writeJSON(w, http.StatusOK, map[string]any{
		"connections":           connected,
		"connections_total":     1042,
		"connections_max":       connected + 12,
		"sessions":              sessions,
		"subscriptions":         subs,
		"retained":              retained,
		"retained_bytes":        retainedBytes,
		"messages_received":     in,
		"messages_sent":         out,
		"messages_received_qos": []int64{in * 7 / 10, in * 3 / 10, 0},
		"messages_sent_qos":     []int64{out * 7 / 10, out * 3 / 10, 0},
		"bytes_received":        in * 180,
		"bytes_sent":            out * 175,
		"queued":                312,
		"inflight":              3,
		"sessions_expired":      4,
		"kicked":                kicked,
		"auth_failures":         2,
		"refused_connects":      map[string]int64{"bad_credentials": 2, "not_authorized": 0, "connection_limit": 0},
		"dropped":               map[string]int64{"queue_full": 0, "slow": 17, "expired": 1},
	})
}

func (f *fakeAPI) listClients(w http.ResponseWriter, r *http.Request) {
	offset, limit, ok := paging(w, r)
	if !ok {
		return
	}
	search := r.URL.Query().Get("search")
	f.mu.Lock()
	var hits []broker.ClientInfo
	for _, c := range f.clients {
		if strings.Contains(c.ClientID, search) || strings.Contains(c.Username, search) || strings.Contains(c.Address, search) {
			hits = append(hits, c)
		}
	}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, pageOf(hits, offset, limit))
}

func (f *fakeAPI) find(id string) int {
	return slices.IndexFunc(f.clients, func(c broker.ClientInfo) bool { return c.ClientID == id })
}

func (f *fakeAPI) client(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.find(id)
	if i < 0 {
		fail(w, http.StatusNotFound, broker.ErrNoSession.Error())
		return
	}
	subs := []broker.SubscriptionInfo{}
	for _, s := range f.subs {
		if s.ClientID == id {
			subs = append(subs, s)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"client": f.clients[i], "subscriptions": subs})
}

func (f *fakeAPI) disconnect(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.find(id)
	switch {
	case i < 0:
		fail(w, http.StatusNotFound, broker.ErrNoSession.Error())
	case !f.clients[i].Connected:
		fail(w, http.StatusConflict, broker.ErrNotConnected.Error())
	default:
		f.kicked = append(f.kicked, id)
		c := &f.clients[i]
		c.Connected, c.Address, c.ConnectedSince = false, "", time.Time{}
		if c.Persistent {
			c.ExpiresAt = time.Now().Add(time.Hour)
		} else {
			f.clients = slices.Delete(f.clients, i, i+1)
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeAPI) deleteSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.find(id)
	switch {
	case i < 0:
		fail(w, http.StatusNotFound, broker.ErrNoSession.Error())
	case f.clients[i].Connected:
		fail(w, http.StatusConflict, broker.ErrConnected.Error())
	default:
		f.deleted = append(f.deleted, id)
		f.clients = slices.Delete(f.clients, i, i+1)
		f.subs = slices.DeleteFunc(f.subs, func(s broker.SubscriptionInfo) bool { return s.ClientID == id })
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeAPI) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	offset, limit, ok := paging(w, r)
	if !ok {
		return
	}
	client, search := r.URL.Query().Get("client"), r.URL.Query().Get("search")
	f.mu.Lock()
	var hits []broker.SubscriptionInfo
	for _, s := range f.subs {
		if (client == "" || s.ClientID == client) && strings.Contains(s.Filter, search) {
			hits = append(hits, s)
		}
	}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, pageOf(hits, offset, limit))
}

func (f *fakeAPI) listRetained(w http.ResponseWriter, r *http.Request) {
	offset, limit, ok := paging(w, r)
	if !ok {
		return
	}
	filter := r.URL.Query().Get("filter")
	if filter == "" {
		filter = "#"
	}
	if err := topic.ValidateFilter(filter); err != nil {
		fail(w, http.StatusBadRequest, fmt.Sprintf("filter: %v", err))
		return
	}
	f.mu.Lock()
	var hits []retainedItem
	for name, m := range f.retained {
		if topic.Match(filter, name) {
			hits = append(hits, m)
		}
	}
	f.mu.Unlock()
	slices.SortFunc(hits, func(a, b retainedItem) int { return strings.Compare(a.Topic, b.Topic) })
	writeJSON(w, http.StatusOK, pageOf(hits, offset, limit))
}

func (f *fakeAPI) retainedMessage(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	m, ok := f.retained[r.URL.Query().Get("topic")]
	f.mu.Unlock()
	if !ok {
		fail(w, http.StatusNotFound, broker.ErrNoRetained.Error())
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (f *fakeAPI) deleteRetained(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("topic")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.retained[name]; !ok {
		fail(w, http.StatusNotFound, broker.ErrNoRetained.Error())
		return
	}
	delete(f.retained, name)
	f.unretain = append(f.unretain, name)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeAPI) publish(w http.ResponseWriter, r *http.Request) {
	var p publishBody
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		fail(w, http.StatusBadRequest, fmt.Sprintf("body: %v", err))
		return
	}
	if err := topic.ValidateName(p.Topic); err != nil {
		fail(w, http.StatusBadRequest, fmt.Sprintf("topic: %v", err))
		return
	}
	if p.QoS > 2 {
		fail(w, http.StatusBadRequest, "qos: want 0, 1 or 2")
		return
	}
	if p.Payload != nil && p.PayloadBase64 != nil {
		fail(w, http.StatusBadRequest, "payload and payload_base64: give one")
		return
	}
	var payload []byte
	if p.Payload != nil {
		payload = []byte(*p.Payload)
	} else if p.PayloadBase64 != nil {
		b, err := base64.StdEncoding.DecodeString(*p.PayloadBase64)
		if err != nil {
			fail(w, http.StatusBadRequest, fmt.Sprintf("payload_base64: %v", err))
			return
		}
		payload = b
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = append(f.published, p)
	if p.Retain {
		if len(payload) == 0 {
			delete(f.retained, p.Topic)
		} else {
			f.retained[p.Topic] = makeRetained(p.Topic, payload, p.QoS, p.ContentType, nil)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
