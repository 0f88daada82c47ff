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
	"strings"
	"sync"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/auth/scram"
	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/listener"
	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/store/memory"
	"github.com/ternmq/tern/store/pebble"
)

func runServe(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("tern serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var listens []string
	fs.Func("listen", "listen on `host:port` (repeatable; replaces the configured listeners)", func(s string) error {
		listens = append(listens, s)
		return nil
	})
	configPath := fs.String("config", "", "YAML configuration `file`")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default info)")
	logFormat := fs.String("log-format", "", "text or json (default text)")
	dataDir := fs.String("data-dir", "", "keep sessions and messages in `dir` (default ./data)")
	durability := fs.String("durability", "", "sync, batch or none (default sync)")
	noPersist := fs.Bool("no-persist", false, "keep everything in memory: nothing survives a restart")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tern serve: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg := defaultConfig()
	if *configPath != "" {
		if err := loadConfig(*configPath, &cfg); err != nil {
			fmt.Fprintf(stderr, "tern serve: config: %v\n", err)
			return 2
		}
	}
	if len(listens) > 0 {
		cfg.Listeners = cfg.Listeners[:0]
		for _, a := range listens {
			cfg.Listeners = append(cfg.Listeners, listener.Config{Type: "tcp", Address: a})
		}
	}
	if *logLevel != "" {
		cfg.LogLevel = *logLevel
	}
	if *logFormat != "" {
		cfg.LogFormat = *logFormat
	}
	if *dataDir != "" {
		cfg.Storage.DataDir = *dataDir
	}
	if *durability != "" {
		cfg.Storage.Durability = *durability
	}
	if *noPersist {
		cfg.Storage.Persist = new(false)
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
	if err := serve(ctx, cfg, opts, nil); err != nil {
		log.Error("serve failed", "err", err)
		return 1
	}
	return 0
}

// serve runs the broker on cfg's listeners until ctx ends. ready, if not
// nil, receives the bound addresses once all listeners are open.
func serve(ctx context.Context, cfg Config, opts broker.Options, ready func([]net.Addr)) error {
	log := opts.Logger
	if len(cfg.Listeners) == 0 {
		return errors.New("no listeners configured")
	}
	if opts.Store == nil {
		st, err := openStore(cfg.Storage, log)
		if err != nil {
			return err
		}
		opts.Store = st
	}
	b, err := broker.New(opts)
	if err != nil {
		opts.Store.Close()
		return err
	}
	var ls []net.Listener
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	for _, lc := range cfg.Listeners {
		l, err := listener.Listen(lc)
		if err != nil {
			closeAll()
			b.Close()
			return err
		}
		ls = append(ls, l)
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(ls))
	addrs := make([]net.Addr, 0, len(ls))
	for _, l := range ls {
		addrs = append(addrs, l.Addr())
		log.Info("listening", "type", l.Addr().Network(), "address", l.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Serve(l); err != nil && !errors.Is(err, broker.ErrServerClosed) {
				errc <- fmt.Errorf("listener %s: %w", l.Addr(), err)
			}
		}()
	}
	if ready != nil {
		ready(addrs)
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
	}
	start := time.Now()
	cerr := b.Close()
	wg.Wait()
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return errors.Join(err, cerr)
}

// brokerOptions turns the configuration into broker options.
func brokerOptions(cfg Config, log *slog.Logger) (broker.Options, error) {
	l := cfg.Limits
	opts := broker.Options{
		Logger:              log,
		ConnectTimeout:      l.ConnectTimeout,
		MaxKeepAlive:        l.MaxKeepAlive,
		MaxPacketSize:       l.MaxPacketSize,
		MaxClientIDLength:   l.MaxClientIDLength,
		MaxQueued:           l.MaxQueuedMessages,
		MaxQueuedBytes:      l.MaxQueuedBytes,
		MaxQueuedBytesTotal: l.MaxQueuedTotal,
		MaxInflight:         l.MaxInflight,
		MaxWriteBuffer:      l.MaxWriteBuffer,
		WriteTimeout:        l.WriteTimeout,
		DisableRetain:       off(cfg.Retain),
		DisableShared:       off(cfg.MQTT.SharedSubscriptions),
		DisableWildcards:    off(cfg.MQTT.WildcardSubscriptions),
		DisableSubIDs:       off(cfg.MQTT.SubscriptionIdentifiers),
		ReceiveMaximum:      cfg.MQTT.ReceiveMaximum,
		TopicAliasMaximum:   cfg.MQTT.TopicAliasMaximum,
		ResponseInformation: cfg.MQTT.ResponseInformation,
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
	// Anonymous access is allowed only while no users are configured,
	// unless the configuration says otherwise.
	anonymous := len(cfg.Users) == 0
	if cfg.AllowAnonymous != nil {
		anonymous = *cfg.AllowAnonymous
	}
	opts.Authenticator = auth.NewStatic(anonymous, cfg.Users)
	// The same users may sign in with v5 enhanced authentication
	// (SCRAM-SHA-256), which never sends the password.
	if len(cfg.Users) > 0 {
		creds := make(map[string]scram.Credentials, len(cfg.Users))
		for name, pw := range cfg.Users {
			c, err := scram.NewCredentials(pw, scram.MinIterations)
			if err != nil {
				return opts, fmt.Errorf("user %q: %w", name, err)
			}
			creds[name] = c
		}
		lookup := func(name string) (scram.Credentials, bool) { c, ok := creds[name]; return c, ok }
		opts.EnhancedAuth = []auth.EnhancedAuthenticator{scram.NewServer(lookup)}
	}
	return opts, nil
}

// openStore opens the configured store: Pebble under the data directory
// unless persistence is off.
func openStore(c Storage, log *slog.Logger) (store.Store, error) {
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
	st, err := pebble.Open(c.DataDir, pebble.Options{Durability: d, SyncInterval: c.SyncInterval, Logger: log})
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
