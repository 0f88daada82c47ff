package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ternmq/tern/broker"
)

// Broker is what the admin server needs of the broker; *broker.Broker
// implements it.
type Broker interface {
	Stats() broker.Stats
	Clients(q broker.ClientQuery) (items []broker.ClientInfo, total int)
	Client(id string) (broker.ClientInfo, []broker.SubscriptionInfo, error)
	Disconnect(id string) error
	DeleteSession(id string) error
	Subscriptions(q broker.SubscriptionQuery) (items []broker.SubscriptionInfo, total int)
	Retained(filter string, offset, limit int) (items []*broker.Message, total int, err error)
	RetainedMessage(topic string) (*broker.Message, error)
	DeleteRetained(topic string) error
	Publish(m *broker.Message) error
	Health() error
}

var (
	_ Broker          = (*broker.Broker)(nil)
	_ SysSource       = (*broker.Broker)(nil)
	_ broker.Observer = (*Metrics)(nil)
)

// Listener describes one of the broker's listeners for /api/v1/info.
type Listener struct {
	Type    string `json:"type"`
	Address string `json:"address"`
	Path    string `json:"path,omitempty"` // ws, wss: the HTTP path (the dashboard's subscribe panel connects there)
}

// Config is what New needs.
type Config struct {
	Broker  Broker
	Metrics *Metrics // the broker's observer; nil: a new one
	Auth    Auth

	Version   string
	StartedAt time.Time      // zero: when New was called
	Listeners []Listener     // for /api/v1/info
	Limits    map[string]any // for /api/v1/info, keyed as in the configuration file

	// Reload puts a re-read configuration in force, as SIGHUP does; its
	// error is the reason a configuration was refused. nil: POST
	// /api/v1/reload answers 501.
	Reload func() error
	// UI holds the dashboard's files, index.html at the top; nil: none.
	UI fs.FS
	// Cluster, if not nil, is the cluster this node belongs to: GET
	// /api/v1/cluster shows it, /metrics counts its traffic
	// (tern_cluster_*), and /readyz waits for its Health.
	Cluster Cluster

	Logger *slog.Logger // default: discard
}

// Server is the admin HTTP server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	handler http.Handler
	// patterns are the routes but the dashboard's, for the OpenAPI test.
	patterns []string
	auth     atomic.Pointer[authState]
	// notReady is why /readyz answers 503; "" once SetReady("") is called.
	notReady atomic.Pointer[string]
	// loopback: anonymous reads allowed; set by Serve from the bound address.
	loopback atomic.Bool
	serving  atomic.Bool
	http     *http.Server
}

// New makes a server; Serve runs it.
func New(cfg Config) (*Server, error) {
	if cfg.Broker == nil {
		return nil, errors.New("admin: no broker")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.StartedAt.IsZero() {
		cfg.StartedAt = time.Now()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics}
	if err := s.metrics.register(cfg.Broker); err != nil {
		return nil, err
	}
	if cfg.Cluster != nil {
		if err := s.metrics.reg.Register(clusterCollector{cfg.Cluster}); err != nil {
			return nil, fmt.Errorf("admin: cluster metrics: %w", err)
		}
	}
	s.auth.Store(newAuthState(cfg.Auth))
	s.SetReady("starting")
	s.handler = s.routes()
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handler returns the server's routes. Until Serve has seen its
// listener, the server does not count as bound to loopback: requests
// without credentials are refused.
func (s *Server) Handler() http.Handler { return s.handler }

// SetReady sets why /readyz answers 503 ("starting", "shutting down");
// "" makes it answer 200 while the broker's Health is nil.
func (s *Server) SetReady(notReady string) { s.notReady.Store(&notReady) }

// SetAuth replaces the credentials (on reload). It refuses to leave a
// server bound to a non-loopback address without any.
func (s *Server) SetAuth(a Auth) error {
	if s.serving.Load() && !s.loopback.Load() && !a.Configured() {
		return errors.New("admin: a server on a non-loopback address needs a token or users")
	}
	s.auth.Store(newAuthState(a))
	return nil
}

// Serve answers requests on l until Shutdown. A listener on a
// non-loopback address is refused unless credentials are configured.
func (s *Server) Serve(l net.Listener) error {
	lb := IsLoopback(l.Addr())
	if !lb && !s.auth.Load().Configured() {
		return fmt.Errorf("admin: %s is not a loopback address and no admin token or users are configured", l.Addr())
	}
	s.loopback.Store(lb)
	s.serving.Store(true)
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the server, waiting for requests in progress until ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// IsLoopback reports whether a bound address accepts connections from
// this machine only.
func IsLoopback(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackAddress reports whether host:port names a loopback address
// ("localhost" counts; an empty host means every interface).
func IsLoopbackAddress(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
