package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// Config is one bridge, as the `bridges:` section of the configuration
// file holds it.
type Config struct {
	Name            string  `yaml:"name"`
	URL             string  `yaml:"url"`              // tcp://, tls://, ws://, wss://
	ProtocolVersion int     `yaml:"protocol_version"` // 31, 311 or 5 (default)
	ClientID        string  `yaml:"client_id"`        // default tern-bridge-<name>-<node>
	Username        string  `yaml:"username"`
	Password        string  `yaml:"password"`
	PasswordFile    string  `yaml:"password_file"` // instead of password: its first line
	CAFile          string  `yaml:"ca_file"`
	CertFile        string  `yaml:"cert_file"` // with key_file: mutual TLS
	KeyFile         string  `yaml:"key_file"`
	CleanStart      bool    `yaml:"clean_start"`
	Topics          []Topic `yaml:"topics"`
	Queue           Queue   `yaml:"queue"`
}

// Topic is one pattern the bridge forwards.
type Topic struct {
	Pattern      string `yaml:"pattern"`
	Direction    string `yaml:"direction"` // out, in or both
	QoS          byte   `yaml:"qos"`
	LocalPrefix  string `yaml:"local_prefix"`
	RemotePrefix string `yaml:"remote_prefix"`
}

// Queue bounds what waits in the broker for a remote that is away: the
// local session's queue. Zero values are the broker's per-session limits
// (limits.max_queued_messages, limits.max_queued_bytes,
// limits.queue_full_policy); limits.max_queued_bytes_total applies too.
type Queue struct {
	MaxMessages int    `yaml:"max_messages"`
	MaxBytes    int64  `yaml:"max_bytes"`
	Policy      string `yaml:"policy"` // drop-newest, drop-oldest or refuse
}

// Directions.
const (
	Out  = "out"
	In   = "in"
	Both = "both"
)

// LocalIDPrefix starts the client id of every bridge's local session;
// only bridges may use such ids (see Trust).
const LocalIDPrefix = "$bridge/"

// LocalClientID is the client id of bridge name's local session.
func LocalClientID(name string) string { return LocalIDPrefix + name }

// out reports whether the topic is forwarded to the remote.
func (t Topic) out() bool { return t.Direction == Out || t.Direction == Both }

// in reports whether the topic is forwarded from the remote.
func (t Topic) in() bool { return t.Direction == In || t.Direction == Both }

func (t Topic) localFilter() string  { return t.LocalPrefix + t.Pattern }
func (t Topic) remoteFilter() string { return t.RemotePrefix + t.Pattern }

// version is the protocol level to speak to the remote.
func (c *Config) version() byte {
	switch c.ProtocolVersion {
	case 31:
		return packet.V31
	case 311:
		return packet.V311
	}
	return packet.V5
}

// Check checks every bridge and that names are unique; it reports every
// failure at once.
func Check(cfgs []Config) error {
	var errs []error
	seen := make(map[string]bool)
	for i := range cfgs {
		c := &cfgs[i]
		if c.Name != "" && seen[c.Name] {
			errs = append(errs, fmt.Errorf("bridges: name %q used twice", c.Name))
		}
		seen[c.Name] = true
		if _, err := c.resolve(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// resolved is a checked Config with its files read.
type resolved struct {
	Config
	password []byte
	tls      *tls.Config
}

// resolve checks c and reads its password and certificate files.
func (c Config) resolve() (*resolved, error) {
	where := fmt.Sprintf("bridge %q", c.Name)
	if c.Name == "" {
		return nil, errors.New("bridges: a bridge without a name")
	}
	if strings.ContainsAny(c.Name, "/+#\x00") {
		return nil, fmt.Errorf("%s: name must not contain /, + or #", where)
	}
	r := &resolved{Config: c}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(where+": "+format, args...)) }
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		bad("no url")
	case err != nil:
		bad("url: %v", err)
	case u.Scheme != "tcp" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
		bad("url %q: want tcp://, tls://, ws:// or wss://", c.URL)
	case u.Host == "":
		bad("url %q: no host", c.URL)
	}
	switch c.ProtocolVersion {
	case 0:
		r.ProtocolVersion = 5
	case 31, 311, 5:
	default:
		bad("protocol_version %d: want 31, 311 or 5", c.ProtocolVersion)
	}
	if c.ProtocolVersion == 31 && len(r.ClientID) > 23 {
		bad("client_id %q: MQTT 3.1 allows at most 23 characters", r.ClientID)
	}
	switch {
	case c.Password != "" && c.PasswordFile != "":
		bad("password and password_file: want one")
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			bad("password_file: %v", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		r.password = []byte(strings.TrimRight(line, "\r"))
	case c.Password != "":
		r.password = []byte(c.Password)
	}
	if r.password != nil && c.Username == "" && c.ProtocolVersion != 5 && c.ProtocolVersion != 0 {
		bad("a password needs a username before MQTT 5")
	}
	if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" {
		if u != nil && (u.Scheme == "tcp" || u.Scheme == "ws") {
			bad("ca_file, cert_file and key_file need a tls:// or wss:// url")
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				bad("ca_file: %v", err)
			} else {
				tc.RootCAs = x509.NewCertPool()
				if !tc.RootCAs.AppendCertsFromPEM(pem) {
					bad("ca_file %s: no PEM certificate", c.CAFile)
				}
			}
		}
		if (c.CertFile == "") != (c.KeyFile == "") {
			bad("cert_file and key_file go together")
		} else if c.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				bad("cert_file/key_file: %v", err)
			} else {
				tc.Certificates = []tls.Certificate{cert}
			}
		}
		r.tls = tc
	}
	if len(c.Topics) == 0 {
		bad("no topics")
	}
	for i, t := range c.Topics {
		tw := fmt.Sprintf("topics[%d]", i)
		if t.Direction != Out && t.Direction != In && t.Direction != Both {
			bad("%s: direction %q: want out, in or both", tw, t.Direction)
		}
		if t.QoS > 2 {
			bad("%s: qos %d: want 0, 1 or 2", tw, t.QoS)
		}
		if t.Pattern == "" {
			bad("%s: no pattern", tw)
			continue
		}
		if _, _, shared := topic.ParseShared(t.Pattern); shared {
			bad("%s: pattern %q: a shared subscription cannot be bridged", tw, t.Pattern)
		}
		for _, p := range []struct{ key, v string }{{"local_prefix", t.LocalPrefix}, {"remote_prefix", t.RemotePrefix}} {
			if topic.HasWildcard(p.v) {
				bad("%s: %s %q: no wildcards in a prefix", tw, p.key, p.v)
			}
		}
		if err := topic.ValidateFilter(t.localFilter()); err != nil {
			bad("%s: local_prefix+pattern %q: %v", tw, t.localFilter(), err)
		}
		if err := topic.ValidateFilter(t.remoteFilter()); err != nil {
			bad("%s: remote_prefix+pattern %q: %v", tw, t.remoteFilter(), err)
		}
	}
	if c.Queue.MaxMessages < 0 || c.Queue.MaxBytes < 0 {
		bad("queue: max_messages and max_bytes must not be negative")
	}
	if _, err := c.Queue.policy(); err != nil {
		bad("queue: %v", err)
	}
	return r, errors.Join(errs...)
}

func (q Queue) policy() (*broker.QueuePolicy, error) {
	var p broker.QueuePolicy
	switch q.Policy {
	case "":
		return nil, nil
	case "drop-newest":
		p = broker.DropNewest
	case "drop-oldest":
		p = broker.DropOldest
	case "refuse":
		p = broker.RefusePublisher
	default:
		return nil, fmt.Errorf("policy %q: want drop-newest, drop-oldest or refuse", q.Policy)
	}
	return &p, nil
}

// QueueLimits returns the queue bounds of the bridges' local sessions,
// for broker.Options.QueueLimits; nil when none sets any.
func QueueLimits(cfgs []Config) map[string]broker.QueueLimit {
	var m map[string]broker.QueueLimit
	for _, c := range cfgs {
		p, _ := c.Queue.policy()
		if c.Queue.MaxMessages == 0 && c.Queue.MaxBytes == 0 && p == nil {
			continue
		}
		if m == nil {
			m = make(map[string]broker.QueueLimit)
		}
		m[LocalClientID(c.Name)] = broker.QueueLimit{MaxQueued: c.Queue.MaxMessages, MaxQueuedBytes: c.Queue.MaxBytes, Policy: p}
	}
	return m
}
