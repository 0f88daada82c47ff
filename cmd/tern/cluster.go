package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ternmq/tern/admin"
	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/cluster"
)

// ClusterConfig is the cluster section: this node's place among other
// Tern nodes that form one broker (package cluster). Unset: a single
// node, and no cluster code runs. Read at start.
type ClusterConfig struct {
	// Node names this node, unique in the cluster.
	Node string `yaml:"node"`
	// Listen is where the embedded NATS server takes routes from the
	// other nodes; Peers are their Listen addresses.
	Listen string   `yaml:"listen"`
	Peers  []string `yaml:"peers"`
	// NATSURLs, instead, connects to an existing NATS cluster (with
	// JetStream), with its usual client credentials and TLS.
	NATSURLs    []string    `yaml:"nats_urls"`
	Credentials string      `yaml:"credentials"` // a .creds file (JWT and NKey)
	User        string      `yaml:"user"`
	Password    string      `yaml:"password"`
	Token       string      `yaml:"token"`
	TLS         *ClusterTLS `yaml:"tls"`
	// Replicas of the replicated state; 0: min(3, nodes).
	Replicas int `yaml:"replicas"`
	// DrainTimeout is how long a stopping node keeps its clients'
	// sessions for the nodes they reconnect to; nil: defaultDrainTimeout.
	DrainTimeout *time.Duration `yaml:"drain_timeout"`
	// ReceiveBuffer is cluster.Config.ReceiveBuffer; 0: its default.
	ReceiveBuffer int `yaml:"receive_buffer"`
	// StreamMaxAge is cluster.Config.StreamMaxAge; 0: its default.
	StreamMaxAge time.Duration `yaml:"stream_max_age"`
}

// defaultDrainTimeout is cluster.drain_timeout when unset.
const defaultDrainTimeout = 10 * time.Second

func (c *ClusterConfig) drainTimeout() time.Duration {
	if c.DrainTimeout == nil {
		return defaultDrainTimeout
	}
	return *c.DrainTimeout
}

// ClusterTLS is TLS to an existing NATS cluster.
type ClusterTLS struct {
	CAFile   string `yaml:"ca_file"`   // CAs that sign the servers' certificates; default: the system's
	CertFile string `yaml:"cert_file"` // a client certificate, with key_file
	KeyFile  string `yaml:"key_file"`
}

// enabled reports whether the section asks for a cluster at all.
func (c *ClusterConfig) enabled() bool {
	return c.Node != "" || c.Listen != "" || len(c.Peers) > 0 || len(c.NATSURLs) > 0 ||
		c.Credentials != "" || c.User != "" || c.Password != "" || c.Token != "" || c.tls() != nil || c.Replicas != 0 ||
		c.DrainTimeout != nil || c.ReceiveBuffer != 0
}

// tls is the TLS subsection, nil when it sets nothing.
func (c *ClusterConfig) tls() *ClusterTLS {
	if c.TLS == nil || *c.TLS == (ClusterTLS{}) {
		return nil
	}
	return c.TLS
}

// embedded reports whether this node runs its own NATS server.
func (c *ClusterConfig) embedded() bool { return len(c.NATSURLs) == 0 }

// clusterConfig turns the cluster section into the package's Config, with
// dataDir for the embedded server's files, checking it as cluster.New
// would and reading the TLS files. Errors name the line of the file, when
// the section came from one.
func clusterConfig(cfg Config, dataDir string, log *slog.Logger) (cluster.Config, error) {
	c := cfg.Cluster
	cc := cluster.Config{Node: c.Node, Listen: c.Listen, Peers: c.Peers, NATSURLs: c.NATSURLs,
		Credentials: c.Credentials, User: c.User, Password: c.Password, Token: c.Token,
		DataDir: dataDir, Replicas: c.Replicas, ReceiveBuffer: c.ReceiveBuffer, StreamMaxAge: c.StreamMaxAge, Logger: log}
	var errs []error
	bad := func(err error) { errs = append(errs, cfg.clusterLine(err)) }
	if err := cc.Validate(); err != nil {
		bad(err)
	}
	if c.StreamMaxAge < 0 {
		bad(fmt.Errorf("cluster: stream_max_age %v: not negative", c.StreamMaxAge))
	}
	if c.DrainTimeout != nil && *c.DrainTimeout < 0 {
		bad(fmt.Errorf("cluster: drain_timeout %v: not negative", *c.DrainTimeout))
	}
	if c.embedded() {
		if c.Credentials != "" || c.User != "" || c.Password != "" || c.Token != "" || c.tls() != nil {
			bad(errors.New("cluster: credentials, user, password, token and tls are for nats_urls (an existing NATS cluster); the embedded server needs none"))
		}
	} else {
		for _, u := range c.NATSURLs {
			if err := checkNATSURL(u); err != nil {
				bad(err)
			}
		}
		if c.Credentials != "" {
			if _, err := os.Stat(c.Credentials); err != nil {
				bad(fmt.Errorf("cluster: credentials: %w", err))
			}
		}
		if c.Password != "" && c.User == "" {
			bad(errors.New("cluster: password needs user"))
		}
		if c.tls() != nil {
			t, err := clusterTLS(c.TLS)
			if err != nil {
				bad(err)
			}
			cc.TLS = t
		}
	}
	return cc, errors.Join(errs...)
}

// checkNATSURL checks one URL of nats_urls: nats://, tls://, ws:// or
// wss:// with a host, or a bare host:port as NATS clients take it.
func checkNATSURL(s string) error {
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("cluster: nats_urls %q: %v", s, err)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("cluster: nats_urls %q: scheme %q: want nats, tls, ws or wss", s, u.Scheme)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("cluster: nats_urls %q: no host", s)
	}
	return nil
}

// clusterTLS reads the TLS files of the cluster section.
func clusterTLS(t *ClusterTLS) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster: tls.ca_file %s: no PEM certificate in it", t.CAFile)
		}
		conf.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("cluster: tls.cert_file and tls.key_file go together")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: tls: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// clusterLine puts the line of the configuration file where the cluster
// section says what err is about in front of err: the line of a value
// err quotes, else of a key it names, else of the section's key.
func (c *Config) clusterLine(err error) error {
	if c.clusterKey == nil {
		return err
	}
	msg := err.Error()
	quoted, named := 0, 0
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.ScalarNode:
			if quoted == 0 && n.Value != "" && strings.Contains(msg, strconv.Quote(n.Value)) {
				quoted = n.Line
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				// The innermost key named wins: tls.ca_file is ca_file's line.
				if k := n.Content[i]; k.Value != "" && regexp.MustCompile(`\b`+regexp.QuoteMeta(k.Value)+`\b`).MatchString(msg) {
					named = k.Line
				}
				walk(n.Content[i+1])
			}
		case yaml.SequenceNode:
			for _, item := range n.Content {
				walk(item)
			}
		}
	}
	walk(c.clusterValue)
	line := c.clusterKey.Line
	if quoted != 0 {
		line = quoted
	} else if named != 0 {
		line = named
	}
	return fmt.Errorf("line %d: %w", line, err)
}

// findCluster returns the key and value nodes of the cluster section of
// a parsed file; nil when it has none.
func findCluster(doc *yaml.Node) (key, value *yaml.Node) {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "cluster" {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// clusterAdmin is a node as the admin server shows it; ready once the
// node's JetStream state has opened.
type clusterAdmin struct {
	n     *cluster.Node
	ready atomic.Bool
}

var _ admin.Cluster = (*clusterAdmin)(nil)

func (c *clusterAdmin) Name() string { return c.n.Name() }

func (c *clusterAdmin) Nodes() []admin.ClusterNode {
	var out []admin.ClusterNode
	for _, n := range c.n.Nodes() {
		out = append(out, admin.ClusterNode{Name: n.Name, Self: n.Self, LastSeen: n.LastSeen})
	}
	return out
}

func (c *clusterAdmin) Stats() admin.ClusterStats {
	s := c.n.Stats()
	return admin.ClusterStats{Forwarded: s.Forwarded, ForwardFailed: s.ForwardFailed, Received: s.Received,
		Malformed: s.Malformed, HandedOver: s.HandedOver, Takeovers: s.Takeovers, Released: s.Released, Dropped: s.Dropped,
		RetainedPending: s.RetainedPending, Adopted: s.Adopted, Replayed: s.Replayed, StreamLag: s.StreamLag,
		Reforwarded: s.Reforwarded}
}

func (c *clusterAdmin) Health() error {
	if c.ready.Load() {
		return nil
	}
	return errors.New("cluster: waiting for JetStream (client id owners, retained messages, the message stream)")
}

// awaitReady marks the node ready once its JetStream state is open, or
// gives up when ctx ends.
func (c *clusterAdmin) awaitReady(ctx context.Context, log *slog.Logger) {
	start := time.Now()
	if c.n.Ready(ctx) != nil {
		return
	}
	c.ready.Store(true)
	var names []string
	for _, n := range c.n.Nodes() {
		names = append(names, n.Name)
	}
	log.Info("cluster ready", "node", c.n.Name(), "nodes", strings.Join(names, ","),
		"took", time.Since(start).Round(time.Millisecond))
}

// clusterFlags are the cluster flags of tern serve.
type clusterFlags struct {
	node, listen *string
	peers, nats  []string
}

func (f *clusterFlags) apply(c *ClusterConfig) {
	if f.node != nil {
		c.Node = *f.node
	}
	if f.listen != nil {
		c.Listen = *f.listen
	}
	if len(f.peers) > 0 {
		c.Peers = slices.Clone(f.peers)
	}
	if len(f.nats) > 0 {
		c.NATSURLs = slices.Clone(f.nats)
	}
}

// drain ends every connection (MQTT 5 clients are told 0x8B) and keeps
// the sessions until the nodes their clients reconnect to have taken them
// over, or until timeout: what is left then stays in this node's store.
func drain(b *broker.Broker, timeout time.Duration, log *slog.Logger) {
	start := time.Now()
	b.Drain()
	before := len(b.SessionIDs())
	for left := before; left > 0 && time.Since(start) < timeout; left = len(b.SessionIDs()) {
		time.Sleep(50 * time.Millisecond)
	}
	log.Info("drained", "sessions", before, "taken_over", before-len(b.SessionIDs()), "took", time.Since(start).Round(time.Millisecond))
}
