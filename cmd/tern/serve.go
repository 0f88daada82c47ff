package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ternmq/tern/admin"
	"github.com/ternmq/tern/bridge"
	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/cluster"
	"github.com/ternmq/tern/listener"
	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/store/memory"
	"github.com/ternmq/tern/store/pebble"
)

// serveFlags are the flags of tern serve that override the configuration.
type serveFlags struct {
	listens                                  []string
	logLevel, logFormat, dataDir, durability string
	noPersist                                bool
	config                                   string
	admin                                    *string
	cluster                                  clusterFlags
}

// flagSet is the flag set of tern serve, writing into f.
func (f *serveFlags) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tern serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Func("listen", "listen on `host:port` (repeatable; replaces the configured listeners)", func(s string) error {
		f.listens = append(f.listens, s)
		return nil
	})
	fs.StringVar(&f.config, "config", "", "YAML configuration `file` (re-read on SIGHUP)")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (default info)")
	fs.StringVar(&f.logFormat, "log-format", "", "text or json (default text)")
	fs.StringVar(&f.dataDir, "data-dir", "", "keep sessions and messages in `dir` (default ./data)")
	fs.StringVar(&f.durability, "durability", "", "sync, batch or none (default sync)")
	fs.BoolVar(&f.noPersist, "no-persist", false, "keep everything in memory: nothing survives a restart")
	fs.Func("node", "this node's `name` in a cluster (letters, digits, - and _)", func(s string) error {
		f.cluster.node = &s
		return nil
	})
	fs.Func("cluster-listen", "accept routes from the other nodes of a cluster on `host:port` (a private network: routes are not authenticated)", func(s string) error {
		f.cluster.listen = &s
		return nil
	})
	fs.Func("cluster-peer", "another node's --cluster-listen `host:port` (repeatable)", func(s string) error {
		f.cluster.peers = append(f.cluster.peers, s)
		return nil
	})
	fs.Func("cluster-nats", "join a cluster through an existing NATS cluster at `nats://host:port[,...]` (repeatable) instead of --cluster-listen", func(s string) error {
		for u := range strings.SplitSeq(s, ",") {
			if u = strings.TrimSpace(u); u != "" {
				f.cluster.nats = append(f.cluster.nats, u)
			}
		}
		return nil
	})
	fs.Func("admin", "admin HTTP server (health, metrics, API, dashboard) on `host:port`; \"\": none (default "+defaultAdminAddress+")", func(s string) error {
		f.admin = &s
		return nil
	})
	return fs
}

func runServe(ctx context.Context, args []string, stderr io.Writer) int {
	var f serveFlags
	fs := f.flagSet(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tern serve: unexpected arguments %q\n", fs.Args())
		return 2
	}
	configPath := &f.config
	// load reads the configuration with the flags over it; SIGHUP runs it
	// again.
	load := func() (Config, error) {
		cfg := defaultConfig()
		if *configPath != "" {
			if err := loadConfig(*configPath, &cfg); err != nil {
				return cfg, err
			}
		}
		f.apply(&cfg)
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintf(stderr, "tern serve: config: %v\n", err)
		return 2
	}
	log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintf(stderr, "tern serve: %v\n", err)
		return 2
	}
	opts, err := brokerOptions(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "tern serve: config: %v\n", err)
		return 2
	}
	if cfg.Cluster.enabled() {
		if _, err := clusterConfig(cfg, "", log); err != nil {
			if cfg.clusterKey != nil {
				err = fmt.Errorf("%s: %w", *configPath, err)
			}
			fmt.Fprintf(stderr, "tern serve: config: %v\n", err)
			return 2
		}
	}
	webhooks, clusterSection := cfg.Webhooks, cfg.Cluster
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	bridges := cfg.Bridges // those of the configuration last loaded
	reload := func() (broker.Options, admin.Auth, error) {
		cfg, err := load()
		if err != nil {
			return broker.Options{}, admin.Auth{}, err
		}
		opts, err := brokerOptions(cfg, log)
		if err != nil {
			return opts, admin.Auth{}, err
		}
		if !reflect.DeepEqual(cfg.Webhooks, webhooks) {
			log.Warn("webhooks are read at start: the changed webhooks section applies after a restart")
		}
		if !reflect.DeepEqual(cfg.Cluster, clusterSection) {
			log.Warn("the cluster section is read at start: the change applies after a restart")
		}
		a, err := adminAuth(cfg)
		bridges = cfg.Bridges
		return opts, a, err
	}
	rl := &reloader{signals: hup, options: reload, bridges: func() []bridge.Config { return bridges }}
	if err := serve(ctx, cfg, opts, nil, rl); err != nil {
		log.Error("serve failed", "err", err)
		return 1
	}
	return 0
}

// apply puts the flags over the configuration.
func (f *serveFlags) apply(cfg *Config) {
	if len(f.listens) > 0 {
		cfg.Listeners = cfg.Listeners[:0]
		for _, a := range f.listens {
			cfg.Listeners = append(cfg.Listeners, listener.Config{Type: "tcp", Address: a})
		}
	}
	if f.logLevel != "" {
		cfg.LogLevel = f.logLevel
	}
	if f.logFormat != "" {
		cfg.LogFormat = f.logFormat
	}
	if f.dataDir != "" {
		cfg.Storage.DataDir = f.dataDir
	}
	if f.durability != "" {
		cfg.Storage.Durability = f.durability
	}
	if f.noPersist {
		cfg.Storage.Persist = new(false)
	}
	if f.admin != nil {
		cfg.Admin.Address = f.admin
	}
	f.cluster.apply(&cfg.Cluster)
}

// reloader puts a new configuration in force when a signal arrives or
// the admin API asks (POST /api/v1/reload).
type reloader struct {
	signals <-chan os.Signal
	options func() (broker.Options, admin.Auth, error)
	after   func(error) // if not nil, told how each signalled reload went (tests)
	// bridges, if not nil, returns the bridges of the configuration
	// options last loaded, put in force after the options.
	bridges func() []bridge.Config
}

// reload re-reads users, ACLs, limits, TLS certificates and the admin
// credentials, and the bridges. A configuration that does not load is
// refused as a whole and the running one stays; each listener swaps its
// certificates only if the new ones load. Connections stay up; listeners
// themselves (the admin server's too) are not re-opened; bridges whose
// settings did not change keep running.
func (rl *reloader) reload(b *broker.Broker, ls []net.Listener, adm *admin.Server, bm *bridge.Manager, log *slog.Logger) error {
	opts, a, err := rl.options()
	if err == nil && adm != nil {
		err = adm.SetAuth(a)
	}
	if err != nil {
		log.Error("reload refused: the running configuration stays", "err", err)
		return err
	}
	b.Reload(opts)
	if rl.bridges != nil {
		if err := bm.Apply(rl.bridges()); err != nil {
			log.Error("reload: bridges", "err", err)
		}
	}
	for _, l := range ls {
		if r, ok := l.(interface{ Reload() error }); ok {
			if err := r.Reload(); err != nil {
				log.Error("reload: listener keeps its certificates", "address", l.Addr().String(), "err", err)
			}
		}
	}
	log.Info("configuration reloaded")
	return nil
}

// serve runs the broker on cfg's listeners until ctx ends. ready, if not
// nil, receives the bound addresses once all listeners are open; rl, if
// not nil, reloads the configuration on its signal.
func serve(ctx context.Context, cfg Config, opts broker.Options, ready func([]net.Addr), rl *reloader) error {
	log := opts.Logger
	if len(cfg.Listeners) == 0 {
		return errors.New("no listeners configured")
	}
	// The admin server's socket first: a bad admin configuration stops
	// the start before the store is opened.
	adminCreds, err := adminAuth(cfg)
	if err != nil {
		return err
	}
	adminL, err := listenAdmin(cfg, adminCreds, log)
	if err != nil {
		return err
	}
	var metrics *admin.Metrics
	var onCommit func(time.Duration, int)
	if adminL != nil {
		defer adminL.Close()
		// The metrics observe deliveries and the store's commits.
		metrics = admin.NewMetrics()
		opts.Observer, onCommit = metrics, metrics.CommitLatency
	}
	// A cluster's nodes share a replicated store, opened with the node.
	if opts.Store == nil && !cfg.Cluster.enabled() {
		st, err := openStore(cfg.Storage, onCommit, log)
		if err != nil {
			return err
		}
		opts.Store = st
		if ps, ok := st.(*pebble.Store); ok && metrics != nil {
			metrics.StoreBytes(func() uint64 { return ps.Stats().Bytes })
		}
	}
	closeStore := func() {
		if opts.Store != nil {
			opts.Store.Close()
		}
	}
	hooks, err := startWebhooks(cfg.Webhooks, log)
	if err != nil {
		closeStore()
		return err
	}
	// After the broker: its last events (client.disconnected) go out too.
	defer closeWebhooks(hooks, log)
	for _, h := range hooks {
		opts.Hooks = append(opts.Hooks, h)
	}
	// The cluster node before the broker, whose Options.Cluster it is,
	// and after the store: a second broker on the same data directory is
	// refused by the store before NATS touches the files there.
	var node *cluster.Node
	var nodeAdmin *clusterAdmin
	if cfg.Cluster.enabled() {
		dir := cfg.Storage.DataDir
		if off(cfg.Storage.Persist) && cfg.Cluster.embedded() {
			// Nothing of this node survives a restart: JetStream's files
			// neither. The other nodes keep the replicated state.
			if dir, err = os.MkdirTemp("", "tern-cluster-"); err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
			defer os.RemoveAll(dir)
			log.Warn("persistence off: the cluster's JetStream files go to a temporary directory, removed at exit", "dir", dir)
		}
		cc, err := clusterConfig(cfg, dir, log)
		if err == nil {
			node, err = cluster.New(cc)
		}
		if err != nil {
			closeStore()
			return err
		}
		if opts.Store == nil {
			// Sessions and their messages are replicated: the store
			// opens once a quorum of the nodes is up.
			st, err := node.OpenStore(ctx)
			if err != nil {
				node.Close()
				return err
			}
			opts.Store = st
			log.Info("replicated store open")
		}
		opts.Cluster = node
		nodeAdmin = &clusterAdmin{n: node}
	}
	b, err := broker.New(opts)
	if err != nil {
		closeStore()
		if node != nil {
			node.Close()
		}
		return err
	}
	// closeBroker drains the broker (MQTT 5 clients get DISCONNECT 0x8B,
	// all are closed and may go to another node), then leaves the cluster.
	closeBroker := func() error {
		err := b.Close()
		if node != nil {
			node.Close()
		}
		return err
	}
	// The node routes for the broker before any client connects. It
	// waits a while for the retained messages to be in step with the
	// cluster; /readyz waits for all of its replicated state.
	readyCtx, stopAwaitReady := context.WithCancel(context.Background())
	defer stopAwaitReady()
	if node != nil {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := node.Start(sctx, b)
		cancel()
		if err != nil {
			closeBroker()
			return fmt.Errorf("cluster: %w", err)
		}
		log.Info("cluster node started", "node", node.Name(), "cluster_address", node.ClusterAddr())
		go nodeAdmin.awaitReady(readyCtx, log)
	}
	var ls []net.Listener
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	for _, lc := range cfg.Listeners {
		lc.Logger = log
		l, err := listener.Listen(lc)
		if err != nil {
			closeAll()
			closeBroker()
			return err
		}
		ls = append(ls, l)
	}
	// API reloads run here, in the loop below, one at a time with SIGHUP.
	reloads := make(chan chan error)
	stopping := make(chan struct{}) // closed when the loop has ended
	var adm *admin.Server
	if adminL != nil {
		infos := make([]admin.Listener, len(ls))
		for i, l := range ls {
			infos[i] = listenerInfo(cfg.Listeners[i], l)
		}
		ac := admin.Config{Broker: b, Metrics: metrics, Auth: adminCreds, Version: versionString(), Listeners: infos,
			Limits: limitsMap(cfg.Limits), UI: dashboardFiles, Logger: log}
		if nodeAdmin != nil {
			ac.Cluster = nodeAdmin
		}
		if rl != nil {
			ac.Reload = func() error {
				res := make(chan error, 1)
				select {
				case reloads <- res:
					return <-res
				case <-stopping:
					return errors.New("shutting down")
				}
			}
		}
		if adm, err = admin.New(ac); err != nil {
			closeAll()
			closeBroker()
			return err
		}
		go func() {
			if err := adm.Serve(adminL); err != nil {
				log.Error("admin server stopped", "err", err)
			}
		}()
		log.Info("admin server listening", "address", adminL.Addr().String())
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(ls))
	addrs := make([]net.Addr, 0, len(ls))
	for i, l := range ls {
		addrs = append(addrs, l.Addr())
		li := listenerInfo(cfg.Listeners[i], l)
		if li.Path != "" {
			log.Info("listening", "type", li.Type, "address", li.Address, "path", li.Path)
		} else {
			log.Info("listening", "type", li.Type, "address", li.Address)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Serve(l); err != nil && !errors.Is(err, broker.ErrServerClosed) {
				errc <- fmt.Errorf("listener %s: %w", l.Addr(), err)
			}
		}()
	}
	// Bridges start once the broker serves and stop before it closes:
	// their local side is a client of it.
	bm := bridge.NewManager(b, log)
	if err := bm.Apply(cfg.Bridges); err != nil {
		log.Error("bridges", "err", err)
	}
	defer bm.Close() // on the error paths below; a second Close is a no-op
	if metrics != nil {
		metrics.Registry().MustRegister(integrations{bridges: bm.Stats, webhooks: hooks})
	}
	// $SYS stops before the broker closes: it publishes through it.
	sysCtx, stopSys := context.WithCancel(context.Background())
	sysDone := make(chan struct{})
	if iv := cfg.sysInterval(); iv > 0 {
		sys := admin.NewSys(b, versionString(), time.Now(), iv, log)
		if nodeAdmin != nil {
			sys.SetCluster(nodeAdmin)
		}
		go func() { defer close(sysDone); sys.Run(sysCtx) }()
	} else {
		close(sysDone)
	}
	if adm != nil {
		adm.SetReady("")
	}
	if ready != nil {
		ready(addrs)
	}
	var signals <-chan os.Signal
	if rl != nil {
		signals = rl.signals
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			done = true
		case err = <-errc:
			done = true
		case <-signals:
			err := rl.reload(b, ls, adm, bm, log)
			if rl.after != nil {
				rl.after(err)
			}
		case res := <-reloads:
			res <- rl.reload(b, ls, adm, bm, log)
		}
	}
	// A reload asked for from now on is refused at once, not left for
	// adm.Shutdown to wait on.
	close(stopping)
	start := time.Now()
	bm.Close()
	stopSys()
	<-sysDone
	if adm != nil {
		adm.SetReady("shutting down")
	}
	stopAwaitReady()
	if node != nil {
		drain(b, cfg.Cluster.drainTimeout(), log)
	}
	cerr := b.Close()
	wg.Wait()
	if node != nil {
		// After the broker: its clients were told to go, and a takeover
		// of their sessions by another node is still answered meanwhile.
		node.Close()
	}
	closeWebhooks(hooks, log)
	if adm != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		adm.Shutdown(sctx)
		cancel()
	}
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return errors.Join(err, cerr)
}

// listenerInfo describes an open listener as the admin API shows it: its
// type and, for ws and wss, its path with the defaults applied, and the
// address it is bound to (the port 0 asked for is a real one here).
func listenerInfo(lc listener.Config, l net.Listener) admin.Listener {
	info := admin.Listener{Type: lc.Type, Address: l.Addr().String()}
	if info.Type == "" {
		info.Type = listener.TypeTCP
	}
	if info.Type == listener.TypeWS || info.Type == listener.TypeWSS {
		info.Path = lc.Path
		if info.Path == "" {
			info.Path = listener.DefaultPath
		}
	}
	return info
}

// brokerOptions turns the configuration into broker options.
func brokerOptions(cfg Config, log *slog.Logger) (broker.Options, error) {
	l := cfg.Limits
	opts := broker.Options{
		Logger:                  log,
		ConnectTimeout:          l.ConnectTimeout,
		MaxKeepAlive:            l.MaxKeepAlive,
		MaxPacketSize:           l.MaxPacketSize,
		MaxClientIDLength:       l.MaxClientIDLength,
		MaxConnectSize:          l.MaxConnectSize,
		MaxPreAuthMemory:        l.MaxPreAuthMemory,
		MaxQueued:               l.MaxQueuedMessages,
		MaxQueuedBytes:          l.MaxQueuedBytes,
		MaxQueuedBytesTotal:     l.MaxQueuedTotal,
		MaxInflight:             l.MaxInflight,
		MaxConnections:          l.MaxConnections,
		MaxConnectionsPerIP:     l.MaxConnsPerIP,
		ConnectRatePerIP:        l.ConnectRatePerIP,
		MaxSubscriptions:        l.MaxSubscriptions,
		MaxTopicLevels:          l.MaxTopicLevels,
		MaxTopicLength:          l.MaxTopicLength,
		MaxFiltersPerSubscribe:  l.MaxFiltersPerSubscribe,
		MaxRetained:             l.MaxRetained,
		MaxRetainedBytes:        l.MaxRetainedBytes,
		MaxSessionExpiry:        l.MaxSessionExpiry,
		PersistentSessionExpiry: l.PersistentSessionExpiry,
		MessageRate:             l.MessageRate,
		ByteRate:                l.ByteRate,
		MaxWriteBuffer:          l.MaxWriteBuffer,
		WriteTimeout:            l.WriteTimeout,
		DisableRetain:           off(cfg.Retain),
		DisableShared:           off(cfg.MQTT.SharedSubscriptions),
		DisableWildcards:        off(cfg.MQTT.WildcardSubscriptions),
		DisableSubIDs:           off(cfg.MQTT.SubscriptionIdentifiers),
		ReceiveMaximum:          cfg.MQTT.ReceiveMaximum,
		TopicAliasMaximum:       cfg.MQTT.TopicAliasMaximum,
		ResponseInformation:     cfg.MQTT.ResponseInformation,
	}
	strategies := map[string]broker.SharedStrategy{"": broker.RoundRobin, "round-robin": broker.RoundRobin,
		"random": broker.Random, "sticky": broker.Sticky, "hash": broker.HashClientID}
	s, ok := strategies[cfg.MQTT.SharedStrategy]
	if !ok {
		return opts, fmt.Errorf("mqtt.shared_strategy %q: want round-robin, random, sticky or hash", cfg.MQTT.SharedStrategy)
	}
	opts.SharedStrategy = s
	switch l.QueueFullPolicy {
	case "", "drop-newest":
		opts.QueuePolicy = broker.DropNewest
	case "drop-oldest":
		opts.QueuePolicy = broker.DropOldest
	case "refuse":
		opts.QueuePolicy = broker.RefusePublisher
	default:
		return opts, fmt.Errorf("limits.queue_full_policy %q: want drop-newest, drop-oldest or refuse", l.QueueFullPolicy)
	}
	// Webhooks start in serve; a reload checks them but keeps the
	// running ones.
	if err := checkWebhooks(cfg.Webhooks); err != nil {
		return opts, err
	}
	authn, authz, enhanced, err := buildAuth(cfg, log)
	if err != nil {
		return opts, err
	}
	opts.Authenticator, opts.Authorizer, opts.EnhancedAuth = authn, authz, enhanced
	if len(cfg.Bridges) > 0 {
		if err := bridge.Check(cfg.Bridges); err != nil {
			return opts, err
		}
		// Only with bridges: the wrapped authorizer is no longer the
		// broker's AllowAll fast path.
		opts.Authenticator, opts.Authorizer = bridge.Trust(opts.Authenticator, opts.Authorizer)
		opts.QueueLimits = bridge.QueueLimits(cfg.Bridges)
	}
	return opts, nil
}

// openStore opens the configured store: Pebble under the data directory
// unless persistence is off; onCommit (nil: none) observes its commits.
func openStore(c Storage, onCommit func(time.Duration, int), log *slog.Logger) (store.Store, error) {
	if off(c.Persist) {
		log.Warn("persistence off: sessions and messages live in memory only")
		return memory.New(), nil
	}
	d, err := pebble.ParseDurability(c.Durability)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	st, err := pebble.Open(c.DataDir, pebble.Options{Durability: d, SyncInterval: c.SyncInterval, Logger: log, OnCommit: onCommit})
	if err != nil {
		return nil, err
	}
	log.Info("store open", "dir", c.DataDir, "durability", d)
	return st, nil
}

// off reports whether an optional feature switch is set to false.
func off(b *bool) bool { return b != nil && !*b }

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}
