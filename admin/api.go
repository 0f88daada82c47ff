package admin

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// Paging of the list endpoints.
const (
	defaultLimit = 50
	maxLimit     = 1000
	// maxPublishBody bounds a POST /api/v1/publish body.
	maxPublishBody = 4 << 20
)

// routes is every endpoint. docs/openapi.yaml lists the same ones
// (TestOpenAPIMatchesRoutes).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	open := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, h)
		s.patterns = append(s.patterns, pattern)
	}
	guarded := func(pattern string, h http.HandlerFunc) { open(pattern, s.guard(h).ServeHTTP) }
	open("GET /healthz", s.healthz)
	open("GET /readyz", s.readyz)
	guarded("GET /metrics", s.metrics.handler().ServeHTTP)
	guarded("GET /api/v1/info", s.info)
	guarded("GET /api/v1/stats", s.stats)
	guarded("GET /api/v1/cluster", s.cluster)
	guarded("GET /api/v1/clients", s.clients)
	guarded("GET /api/v1/clients/{id}", s.client)
	guarded("POST /api/v1/clients/{id}/disconnect", s.disconnect)
	guarded("DELETE /api/v1/sessions/{id}", s.deleteSession)
	guarded("GET /api/v1/subscriptions", s.subscriptions)
	guarded("GET /api/v1/retained", s.retained)
	guarded("GET /api/v1/retained/message", s.retainedMessage)
	guarded("DELETE /api/v1/retained/message", s.deleteRetained)
	guarded("POST /api/v1/publish", s.publish)
	guarded("POST /api/v1/reload", s.reload)
	if s.cfg.UI != nil {
		mux.Handle("GET /", http.FileServerFS(s.cfg.UI))
	}
	return jsonMuxErrors(mux)
}

// jsonMuxErrors makes the answers for an unknown path (404) or method
// (405) under /api/ JSON like every other error of the API.
func jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			if _, pattern := mux.Handler(r); !strings.Contains(pattern, " /api/") {
				w = &jsonErrorWriter{ResponseWriter: w}
			}
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

// jsonErrorWriter replaces a plain-text error with {"error": ...}.
type jsonErrorWriter struct {
	http.ResponseWriter
	replaced bool
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if code >= 400 {
		w.replaced = true
		w.Header().Del("Content-Length")
		writeError(w.ResponseWriter, code, strings.ToLower(http.StatusText(code)))
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *jsonErrorWriter) Write(p []byte) (int, error) {
	if w.replaced {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // the client may have gone; nothing to do about it
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// writeBrokerError answers with the status an administrative error of
// the broker stands for.
func writeBrokerError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, broker.ErrNoSession), errors.Is(err, broker.ErrNoRetained):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, broker.ErrConnected), errors.Is(err, broker.ErrNotConnected):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz: ready while the listeners are open (SetReady), the broker can
// keep its promises (Health) and, in a cluster, once the node's
// replicated state is open (Cluster.Health).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	reason := *s.notReady.Load()
	if reason == "" {
		if err := s.cfg.Broker.Health(); err != nil {
			reason = err.Error()
		}
	}
	if reason == "" && s.cfg.Cluster != nil {
		if err := s.cfg.Cluster.Health(); err != nil {
			reason = err.Error()
		}
	}
	if reason != "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	ls := s.cfg.Listeners
	if ls == nil {
		ls = []Listener{}
	}
	limits := s.cfg.Limits
	if limits == nil {
		limits = map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"version":        s.cfg.Version,
		"started_at":     s.cfg.StartedAt.UTC().Format(time.RFC3339),
		"uptime_seconds": int64(time.Since(s.cfg.StartedAt).Seconds()),
		"listeners":      ls,
		"limits":         limits,
	})
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, statsView(s.cfg.Broker.Stats()))
}

// page is one page of a list.
type page[T any] struct {
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
	Items  []T `json:"items"`
}

// paging reads offset and limit; a bad value is the error to answer.
func paging(r *http.Request) (offset, limit int, err error) {
	q := r.URL.Query()
	offset, limit = 0, defaultLimit
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("offset %q: want a whole number from 0", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxLimit {
			return 0, 0, fmt.Errorf("limit %q: want a whole number from 1 to %d", v, maxLimit)
		}
	}
	return offset, limit, nil
}

func newPage[T any](items []T, total, offset, limit int) page[T] {
	if items == nil {
		items = []T{}
	}
	return page[T]{Total: total, Offset: offset, Limit: limit, Items: items}
}

func (s *Server) clients(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := paging(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	items, total := s.cfg.Broker.Clients(broker.ClientQuery{Search: r.URL.Query().Get("search"), Offset: offset, Limit: limit})
	writeJSON(w, http.StatusOK, newPage(items, total, offset, limit))
}

func (s *Server) client(w http.ResponseWriter, r *http.Request) {
	c, subs, err := s.cfg.Broker.Client(r.PathValue("id"))
	if err != nil {
		writeBrokerError(w, err)
		return
	}
	if subs == nil {
		subs = []broker.SubscriptionInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"client": c, "subscriptions": subs})
}

func (s *Server) disconnect(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.cfg.Broker.Disconnect(id); err != nil {
		writeBrokerError(w, err)
		return
	}
	s.log.Info("admin: client disconnected", "client", id, "by", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.cfg.Broker.DeleteSession(id); err != nil {
		writeBrokerError(w, err)
		return
	}
	s.log.Info("admin: session deleted", "client", id, "by", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) subscriptions(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := paging(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	items, total := s.cfg.Broker.Subscriptions(broker.SubscriptionQuery{ClientID: q.Get("client"), Search: q.Get("search"),
		Offset: offset, Limit: limit})
	writeJSON(w, http.StatusOK, newPage(items, total, offset, limit))
}

// retainedJSON is a retained message as the API shows it.
type retainedJSON struct {
	Topic          string         `json:"topic"`
	QoS            byte           `json:"qos"`
	PayloadBase64  string         `json:"payload_base64"`
	PayloadText    *string        `json:"payload_text,omitempty"` // only when valid UTF-8
	Size           int            `json:"size"`
	ContentType    string         `json:"content_type,omitempty"`
	ExpiresAt      time.Time      `json:"expires_at,omitzero"`
	UserProperties []userProperty `json:"user_properties,omitempty"`
}

func retainedView(m *broker.Message) retainedJSON {
	v := retainedJSON{Topic: m.Topic, QoS: m.QoS, PayloadBase64: base64.StdEncoding.EncodeToString(m.Payload),
		Size: len(m.Payload), ContentType: m.Properties.ContentType, ExpiresAt: m.Expiry,
		UserProperties: userProperties(m.Properties.User)}
	if utf8.Valid(m.Payload) {
		t := string(m.Payload)
		v.PayloadText = &t
	}
	return v
}

func (s *Server) retained(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := paging(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	filter := r.URL.Query().Get("filter")
	if filter == "" {
		filter = "#"
	}
	if err := topic.ValidateFilter(filter); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("filter %q: %v", filter, err))
		return
	}
	msgs, total, err := s.cfg.Broker.Retained(filter, offset, limit)
	if err != nil {
		// The filter passed validation here; the broker may know more
		// limits (levels, length) than the syntax.
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	items := make([]retainedJSON, 0, len(msgs))
	for _, m := range msgs {
		items = append(items, retainedView(m))
	}
	writeJSON(w, http.StatusOK, newPage(items, total, offset, limit))
}

// topicParam is the topic query parameter, a valid topic name.
func topicParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	t := r.URL.Query().Get("topic")
	if err := topic.ValidateName(t); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("topic %q: %v", t, err))
		return "", false
	}
	return t, true
}

func (s *Server) retainedMessage(w http.ResponseWriter, r *http.Request) {
	t, ok := topicParam(w, r)
	if !ok {
		return
	}
	m, err := s.cfg.Broker.RetainedMessage(t)
	if err != nil {
		writeBrokerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, retainedView(m))
}

func (s *Server) deleteRetained(w http.ResponseWriter, r *http.Request) {
	t, ok := topicParam(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Broker.DeleteRetained(t); err != nil {
		writeBrokerError(w, err)
		return
	}
	s.log.Info("admin: retained message deleted", "topic", t, "by", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

// publishRequest is the body of POST /api/v1/publish.
type publishRequest struct {
	Topic          string         `json:"topic"`
	Payload        *string        `json:"payload"`
	PayloadBase64  *string        `json:"payload_base64"`
	QoS            int            `json:"qos"`
	Retain         bool           `json:"retain"`
	ContentType    string         `json:"content_type"`
	UserProperties []userProperty `json:"user_properties"`
}

// userProperty is a v5 user property in the API.
type userProperty struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func userProperties(ps []packet.UserProperty) []userProperty {
	var out []userProperty
	for _, p := range ps {
		out = append(out, userProperty{p.Key, p.Value})
	}
	return out
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	var req publishRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPublishBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxPublishBody))
			return
		}
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "body: one JSON object expected")
		return
	}
	if err := topic.ValidateName(req.Topic); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("topic %q: %v", req.Topic, err))
		return
	}
	if req.QoS < 0 || req.QoS > 2 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("qos %d: want 0, 1 or 2", req.QoS))
		return
	}
	var payload []byte
	switch {
	case req.Payload != nil && req.PayloadBase64 != nil:
		writeError(w, http.StatusBadRequest, "payload and payload_base64: give one")
		return
	case req.Payload != nil:
		payload = []byte(*req.Payload)
	case req.PayloadBase64 != nil:
		var err error
		if payload, err = base64.StdEncoding.DecodeString(*req.PayloadBase64); err != nil {
			writeError(w, http.StatusBadRequest, "payload_base64: "+err.Error())
			return
		}
	}
	var props packet.Properties
	props.ContentType = req.ContentType
	for _, p := range req.UserProperties {
		props.User = append(props.User, packet.UserProperty{Key: p.Key, Value: p.Value})
	}
	m := &broker.Message{Topic: req.Topic, Payload: payload, QoS: byte(req.QoS), Retain: req.Retain, Properties: props}
	if err := s.cfg.Broker.Publish(m); err != nil {
		writeError(w, http.StatusServiceUnavailable, "publish: "+err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Reload == nil {
		writeError(w, http.StatusNotImplemented, "reload is not available")
		return
	}
	if err := s.cfg.Reload(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.log.Info("admin: configuration reloaded", "by", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}
