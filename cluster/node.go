package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	jsstore "github.com/ternmq/tern/store/jetstream"
)

// Node is this broker's membership of a cluster. It implements
// broker.Cluster; Start connects it to the broker.
type Node struct {
	cfg      Config
	log      *slog.Logger
	instance uint64 // random per start: tells this run's messages from a previous one's
	srv      *server.Server
	token    string // the embedded server's client token
	// pub publishes (and holds the plain subscriptions, with no echo, so
	// that this node does not get back what it forwarded); queue holds the
	// shared-subscription queue subscriptions and control subscriptions,
	// which must see this node's own publishes.
	pub, queue *nats.Conn
	js         jetstream.JetStream
	b          Broker
	st         *jsstore.Store // OpenStore's, nil without
	fwd        follower

	routes routes
	shares shares
	owners owners
	ret    retainedSync
	peers  peers

	stats    counters
	logLimit logLimiter

	stop chan struct{}
	wg   sync.WaitGroup
}

// New starts the embedded NATS server (or connects to an existing NATS
// cluster) and returns the node, not yet routing: the broker is given it
// in its Options, and Start connects the two.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, stop: make(chan struct{})}
	if n.log == nil {
		n.log = slog.Default()
	}
	n.log = n.log.With("node", cfg.Node)
	var b [8]byte
	rand.Read(b[:])
	n.instance = binary.BigEndian.Uint64(b[:])
	n.routes.init(cfg.receiveBuffer())
	n.shares.init(cfg.receiveBuffer())
	n.owners.init()
	n.fwd.following = make(chan struct{})
	var err error
	if len(cfg.NATSURLs) == 0 {
		n.token = rand.Text()
		if n.srv, err = startServer(cfg, n.token, n.log); err != nil {
			return nil, err
		}
	}
	if n.pub, err = n.connect("pub", nats.NoEcho()); err == nil {
		n.queue, err = n.connect("queue")
	}
	if err == nil {
		n.js, err = jetstream.New(n.queue, jetstream.WithPublishAsyncErrHandler(n.asyncFailed))
	}
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// ClusterAddr is where the embedded NATS server accepts routes ("" for an
// external NATS): Listen with the port it picked.
func (n *Node) ClusterAddr() string {
	if n.srv == nil {
		return ""
	}
	if a := n.srv.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// Ready waits until the node's JetStream state is open: client ids can be
// taken over, retained messages are in step with the cluster, and (with
// a replicated store) the node reads the message stream.
func (n *Node) Ready(ctx context.Context) error {
	if _, err := n.owners.bucket(ctx); err != nil {
		return err
	}
	select {
	case <-n.ret.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	return n.awaitFollowing(ctx)
}

// alone reports whether this node's embedded server has no route to
// another: the first node of a cluster, or one cut off from the rest.
// JetStream then has no quorum, and the node serves its own clients:
// client ids are owned here, retained messages replicated once others
// are reachable.
func (n *Node) alone() bool { return n.srv != nil && n.srv.NumRoutes() == 0 }

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Node }

func startServer(cfg Config, token string, log *slog.Logger) (*server.Server, error) {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen port %q: %v", port, err)
	}
	if p == 0 {
		if p, err = freePort(host); err != nil {
			return nil, err
		}
	}
	// Its own address among the routes (NATS skips it) makes even a
	// first node with no peers a cluster for JetStream, which others join.
	routes := []*url.URL{{Scheme: "nats-route", Host: net.JoinHostPort(host, strconv.Itoa(p))}}
	for _, peer := range cfg.Peers {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: peer})
	}
	dir := cfg.DataDir
	if dir == "" {
		return nil, errors.New("cluster: a data directory is needed for JetStream")
	}
	opts := &server.Options{
		ServerName: cfg.Node,
		// Nodes talk to their own server in-process; NATS still wants a
		// client port for routing to start: loopback, behind a token
		// nobody else has.
		Host:          clientHost(),
		Port:          server.RANDOM_PORT,
		Authorization: token,
		Cluster:       server.ClusterOpts{Name: "tern", Host: host, Port: p},
		Routes:        routes,
		JetStream:     true,
		StoreDir:      filepath.Join(dir, "nats"),
		NoSigs:        true,
		// A subject is a topic escaped (up to 3 bytes per byte) and a
		// forwarded message a whole PUBLISH: room for the largest.
		MaxControlLine: 64 << 10,
		MaxPayload:     server.MAX_PAYLOAD_MAX_SIZE,
		MaxPending:     256 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: nats server: %w", err)
	}
	srv.SetLoggerV2(natsLogger{log}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("cluster: the embedded NATS server did not start")
	}
	return srv, nil
}

// clientHost is where the embedded server's unused client port goes:
// 127.0.0.2 where that is loopback too (Linux), so that the random port
// it takes can never be one an MQTT or admin listener on 127.0.0.1 is
// about to bind; otherwise 127.0.0.1.
func clientHost() string {
	if l, err := net.Listen("tcp", "127.0.0.2:0"); err == nil {
		l.Close()
		return "127.0.0.2"
	}
	return "127.0.0.1"
}

// freePort returns a port on host nobody listens on now.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("cluster: listen: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (n *Node) connect(role string, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("tern " + n.cfg.Node + " " + role),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(64 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				n.log.Warn("cluster: NATS connection lost", "role", role, "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { n.log.Info("cluster: NATS connection back", "role", role) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				n.logOnce("slow", "cluster: this node falls behind what other nodes forward; messages are dropped (tern_cluster_dropped_total)")
				return
			}
			n.logOnce("nats-"+role, "cluster: NATS", "role", role, "err", err)
		}),
	}
	opts = append(opts, extra...)
	if n.srv != nil {
		opts = append(opts, nats.InProcessServer(n.srv), nats.Token(n.token))
		return nats.Connect("", opts...)
	}
	c := n.cfg
	if c.Credentials != "" {
		opts = append(opts, nats.UserCredentials(c.Credentials))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.TLS != nil {
		opts = append(opts, nats.Secure(c.TLS))
	}
	urls := ""
	for i, u := range c.NATSURLs {
		if i > 0 {
			urls += ","
		}
		urls += u
	}
	conn, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS %s: %w", urls, err)
	}
	return conn, nil
}

// Start connects the node to the broker: it subscribes for the broker's
// subscriptions, serves takeovers, and follows the retained messages. It
// waits until the retained messages are in step with the cluster, or
// until ctx ends (then they catch up in the background).
func (n *Node) Start(ctx context.Context, b Broker) error {
	n.b = b
	if err := n.routes.start(n); err != nil {
		return err
	}
	if err := n.shares.start(n); err != nil {
		return err
	}
	if err := n.owners.start(n); err != nil {
		return err
	}
	n.peers.start(n)
	if len(n.cfg.Peers) > 0 {
		// Give the routes to the peers a moment to come up.
		for deadline := time.Now().Add(2 * time.Second); n.alone() && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if n.alone() {
		ctx = context.Background() // nothing to catch up with
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		ctx = cancelled
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		rctx, cancel := n.ctx(time.Minute)
		defer cancel()
		n.owners.reconcile(rctx)
		if n.st != nil {
			// Sessions restored here that are another node's are gone
			// before this node routes what it missed.
			n.wg.Add(1)
			fctx, cancel := n.untilStop()
			go func() {
				defer cancel()
				n.follow(fctx)
			}()
		}
	}()
	return n.ret.start(ctx, n)
}

// Close leaves the cluster: this node's subscriptions go, what it
// published is flushed, and the embedded server shuts down. Close the
// broker first, so its clients are told and go elsewhere.
func (n *Node) Close() error {
	select {
	case <-n.stop:
		return nil
	default:
	}
	close(n.stop)
	n.ret.close()
	for _, c := range []*nats.Conn{n.pub, n.queue} {
		if c != nil {
			c.Flush()
			c.Close()
		}
	}
	n.wg.Wait()
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
	return nil
}

// untilStop returns a context that ends with Close.
func (n *Node) untilStop() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// ctx returns a context for JetStream calls bounded by d and by Close.
func (n *Node) ctx(d time.Duration) (context.Context, context.CancelFunc) {
	stop, cancelStop := n.untilStop()
	ctx, cancel := context.WithTimeout(stop, d)
	return ctx, func() { cancel(); cancelStop() }
}

// natsLogger passes the embedded server's messages to the broker's log, a
// level lower than the server's own: its warnings and errors are mostly
// routine in a cluster (a route to a node that is down, a snapshot), and
// the cluster's real failures are logged by this package.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) {
	l.log.Debug("nats: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Warnf(format string, v ...any)  { l.log.Debug("nats: " + fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any) { l.log.Info("nats: " + fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any) {
	l.log.Error("nats: " + fmt.Sprintf(format, v...))
}
func (l natsLogger) Debugf(format string, v ...any) {}
func (l natsLogger) Tracef(format string, v ...any) {}
