package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"time"
)

// Config is a node's place in a cluster.
type Config struct {
	// Node names this node, unique in the cluster: letters, digits, '-'
	// and '_'.
	Node string
	// Listen is where the embedded NATS server accepts routes from other
	// nodes (host:port; port 0 picks one), Peers the Listen addresses of
	// other nodes: one running node is enough to join.
	Listen string
	Peers  []string
	// NATSURLs, instead, connects to an existing NATS cluster; no server is
	// embedded. Credentials (a .creds file), User/Password, Token and TLS
	// are the usual NATS client options.
	NATSURLs       []string
	Credentials    string
	User, Password string
	Token          string
	TLS            *tls.Config
	// DataDir holds the embedded server's JetStream files (DataDir/nats).
	DataDir string
	// Replicas of the JetStream state (owners, retained): 0 picks
	// min(3, number of nodes known at start).
	Replicas int
	Logger   *slog.Logger
	// ReceiveBuffer is how many messages forwarded by other nodes may
	// wait here (for plain and for shared subscriptions each) before NATS
	// drops the excess as a slow consumer: the memory it may take is this
	// times the size of the messages. 0 means DefaultReceiveBuffer.
	ReceiveBuffer int
	// ClaimTimeout bounds taking a client id over from another node;
	// 0 means 5 s.
	ClaimTimeout time.Duration
	// StreamMaxAge is how long the stream of QoS 1 and 2 messages keeps
	// one (with OpenStore): a node down longer than this loses what was
	// published for its sessions meanwhile. 0 means 7 days.
	StreamMaxAge time.Duration
}

var nodeName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate reports what is wrong with c, if anything.
func (c *Config) Validate() error {
	if !nodeName.MatchString(c.Node) {
		return fmt.Errorf("cluster: node name %q: 1 to 64 letters, digits, '-' or '_'", c.Node)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("cluster: replicas %d: 1 to 5", c.Replicas)
	}
	if c.ReceiveBuffer < 0 {
		return fmt.Errorf("cluster: receive_buffer %d: not negative", c.ReceiveBuffer)
	}
	if len(c.NATSURLs) > 0 {
		if c.Listen != "" || len(c.Peers) > 0 {
			return errors.New("cluster: nats_urls connects to an existing NATS cluster; listen and peers are for the embedded one")
		}
		return nil
	}
	if c.Listen == "" {
		return errors.New("cluster: listen (host:port for the other nodes) is required without nats_urls")
	}
	for _, a := range append([]string{c.Listen}, c.Peers...) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("cluster: address %q: %v", a, err)
		}
	}
	return nil
}

func (c *Config) replicas() int {
	if c.Replicas > 0 {
		return c.Replicas
	}
	if len(c.NATSURLs) > 0 {
		return min(3, len(c.NATSURLs))
	}
	return min(3, 1+len(c.Peers))
}

func (c *Config) receiveBuffer() int {
	if c.ReceiveBuffer > 0 {
		return c.ReceiveBuffer
	}
	return DefaultReceiveBuffer
}

func (c *Config) streamMaxAge() time.Duration {
	if c.StreamMaxAge > 0 {
		return c.StreamMaxAge
	}
	return defaultMaxAge
}

func (c *Config) claimTimeout() time.Duration {
	if c.ClaimTimeout > 0 {
		return c.ClaimTimeout
	}
	return 5 * time.Second
}
