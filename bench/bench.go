package bench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// Scenarios are the names Config.Scenario takes.
var Scenarios = []string{"conn", "pub", "sub", "fanin", "fanout", "p2p"}

// DefaultURL is where a Config without URLs connects.
const DefaultURL = "tcp://localhost:1883"

// Config is what a run asks for; each field is a flag of tern bench
// (named in its comment), and the errors of Run name those flags.
// Start from DefaultConfig: a zero Clients, Size or Window is refused.
type Config struct {
	// Scenario is conn, pub, sub, fanin, fanout or p2p (see Scenarios and
	// the package documentation). A conn run with a Topic subscribes each
	// connection to it (%i its index) at QoS before holding it.
	Scenario string

	// URLs are the brokers (--url): tcp://, tls://, ws:// or wss://
	// host:port[/path]; none means DefaultURL. With several, connection i
	// of each kind (publisher i, subscriber i, idle connection i) goes to
	// URLs[i mod len(URLs)].
	URLs []string
	// SubURLs, when set (--sub-url), are where the subscribers connect,
	// in turn as above; the publishers and idle connections use URLs.
	// Publishers on one node of a cluster and subscribers on another
	// measure the cluster's forwarding.
	SubURLs []string
	// TLSConfig is for tls:// and wss:// URLs (--cafile, --cert, --key,
	// --insecure); nil means the system roots. Each URL gets a copy with
	// its own host as ServerName when ServerName is empty.
	TLSConfig *tls.Config

	Clients     int           // -c: publishers, subscribers, pairs or connections, by scenario
	QoS         int           // -q: 0, 1 or 2
	Size        int           // -s: payload bytes, at least HeaderLen
	Rate        float64       // -r: messages per second per publisher; 0: as fast as the window allows
	Duration    time.Duration // -d: publish (conn: hold) this long; 0 with Count 0: 10 s
	Count       int           // -n: messages per publisher (sub: per subscriber), then stop; 0: Duration
	Window      int           // -w: QoS 1/2 messages in flight per publisher (capped by a v5 Receive Maximum)
	Topic       string        // -t: topic pattern, %i is the client index; "": bench/%i (sub: bench/#; conn: no subscription)
	Shared      string        // --shared: subscribers join $share/Shared/...
	Version     byte          // -V: packet.V31, packet.V311 (or 0) or packet.V5
	IDPrefix    string        // -i: client ids are IDPrefix-pub-N, -sub-N, -conn-N; "": tern-bench-<random>
	Username    string        // -u
	UsernameSet bool          // send Username
	Password    string        // -P
	PasswordSet bool          // send Password (before MQTT 5 only with a user name)
	Persistent  bool          // --persistent: sessions outlive their connections (clean session 0; v5: no expiry)
	ConnectRate float64       // --connect-rate: new connections per second; 0: as fast as handshakes complete
	KeepAlive   time.Duration // -k: whole seconds up to 65535; 0: none
	Drain       time.Duration // --drain: after publishing, wait up to this long without progress

	// Progress, when set, gets a live progress line once a second (for a
	// terminal: it rewrites the line with \r and an ANSI erase).
	Progress io.Writer
}

// DefaultConfig returns tern bench's defaults (scenario unset).
func DefaultConfig() Config {
	return Config{Clients: 10, Size: 256, Window: 64, Version: packet.V311, KeepAlive: 60 * time.Second, Drain: 2 * time.Second}
}

// Check validates cfg as Run would, without connecting.
func (cfg Config) Check() error {
	_, err := cfg.settle()
	return err
}

// config is a checked Config with what it implies worked out: the
// engine's view.
type config struct {
	scenario    string
	targets     []benchTarget // publishers and idle connections, in turn
	subTargets  []benchTarget // subscribers, in turn: targets without SubURLs
	clients     int
	qos         int
	size        int
	rate        float64
	duration    time.Duration
	count       int
	window      int
	topic       string
	idleSub     bool // conn: each connection subscribes to topic
	shared      string
	level       byte
	idPrefix    string
	username    string
	password    string
	userSet     bool
	passSet     bool
	persistent  bool
	connectRate float64
	keepAlive   int // seconds
	drain       time.Duration
	progress    io.Writer
	runID       uint32 // stamped into payloads so that strays from other runs are not counted

	urls, subURLs []string // as given (SubURLs: nil when not), for the result
}

// settle validates cfg and works out the engine's config.
func (cfg Config) settle() (*config, error) {
	c := &config{scenario: cfg.Scenario, clients: cfg.Clients, qos: cfg.QoS, size: cfg.Size, rate: cfg.Rate,
		duration: cfg.Duration, count: cfg.Count, window: cfg.Window, topic: cfg.Topic, shared: cfg.Shared,
		level: cfg.Version, idPrefix: cfg.IDPrefix, username: cfg.Username, password: cfg.Password,
		userSet: cfg.UsernameSet, passSet: cfg.PasswordSet, persistent: cfg.Persistent, connectRate: cfg.ConnectRate,
		drain: cfg.Drain, progress: cfg.Progress}
	switch c.scenario {
	case "conn", "pub", "sub", "fanin", "fanout", "p2p":
	default:
		return nil, fmt.Errorf("unknown scenario %q: want conn, pub, sub, fanin, fanout or p2p", c.scenario)
	}
	switch c.level {
	case 0:
		c.level = packet.V311
	case packet.V31, packet.V311, packet.V5:
	default:
		return nil, fmt.Errorf("-V: protocol level %d: want 3 (3.1), 4 (3.1.1) or 5", c.level)
	}
	c.urls = cfg.URLs
	if len(c.urls) == 0 {
		c.urls = []string{DefaultURL}
	}
	var err error
	if c.targets, err = parseTargets("--url", c.urls, cfg.TLSConfig); err != nil {
		return nil, err
	}
	c.subTargets = c.targets
	if len(cfg.SubURLs) > 0 {
		c.subURLs = cfg.SubURLs
		if c.subTargets, err = parseTargets("--sub-url", c.subURLs, cfg.TLSConfig); err != nil {
			return nil, err
		}
	}
	ka := cfg.KeepAlive
	switch {
	case c.clients < 1:
		return nil, fmt.Errorf("-c %d: want at least 1", c.clients)
	case c.qos < 0 || c.qos > 2:
		return nil, fmt.Errorf("-q %d: want 0, 1 or 2", c.qos)
	case c.size < HeaderLen:
		return nil, fmt.Errorf("-s %d: want at least %d bytes (the payload carries a %d-byte stamp)", c.size, HeaderLen, HeaderLen)
	case c.size > 256<<20:
		return nil, fmt.Errorf("-s %d: want at most 256 MiB", c.size)
	case c.rate < 0:
		return nil, fmt.Errorf("-r %g: want 0 or more messages per second", c.rate)
	case c.count < 0:
		return nil, fmt.Errorf("-n %d: want 0 or more", c.count)
	case c.count > 0 && c.duration > 0:
		return nil, errors.New("give -d or -n, not both")
	case c.count > 0 && c.scenario == "conn":
		return nil, errors.New("conn holds its connections for -d; -n does not apply")
	case c.duration < 0:
		return nil, fmt.Errorf("-d %s: want a positive duration", c.duration)
	case c.window < 1 || c.window > 65535:
		return nil, fmt.Errorf("-w %d: want 1 to 65535", c.window)
	case c.connectRate < 0:
		return nil, fmt.Errorf("--connect-rate %g: want 0 or more", c.connectRate)
	case ka < 0 || ka > 65535*time.Second:
		return nil, fmt.Errorf("-k %d: want 0 to 65535 seconds", int64(ka/time.Second))
	case c.drain < 0:
		return nil, fmt.Errorf("--drain %s: want 0 or more", c.drain)
	case c.passSet && !c.userSet && c.level != packet.V5:
		return nil, errors.New("-P needs -u before MQTT 5")
	case c.shared != "" && (strings.ContainsAny(c.shared, "/+#") || c.level == packet.V31):
		return nil, fmt.Errorf("--shared %q: want a group name without / + #, and MQTT 3.1.1 or 5", c.shared)
	}
	c.keepAlive = int((ka + time.Second - 1) / time.Second)
	if c.count == 0 && c.duration == 0 {
		c.duration = 10 * time.Second
	}
	c.idleSub = c.scenario == "conn" && c.topic != ""
	if c.topic == "" {
		c.topic = "bench/%i"
		if c.scenario == "sub" {
			c.topic = "bench/#"
		}
	}
	if c.scenario == "p2p" && !strings.Contains(c.topic, "%i") {
		return nil, fmt.Errorf("-t %q: p2p needs %%i in the topic, so that each pair has its own", c.topic)
	}
	if err := c.checkTopics(); err != nil {
		return nil, err
	}
	if c.idPrefix == "" {
		c.idPrefix = "tern-bench-" + strings.ToLower(rand.Text()[:6])
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	c.runID = binary.BigEndian.Uint32(b[:]) | 1
	return c, nil
}

// checkTopics validates the topic names and filters the scenario will use.
func (cfg *config) checkTopics() error {
	plan := planBench(cfg)
	for _, p := range plan.pubs {
		if err := topic.ValidateName(p.topic); err != nil {
			return fmt.Errorf("-t %q: publish topic %q: %w", cfg.topic, p.topic, err)
		}
	}
	for _, s := range plan.subs {
		if err := topic.ValidateFilter(s.filter); err != nil {
			return fmt.Errorf("-t %q: filter %q: %w", cfg.topic, s.filter, err)
		}
	}
	for _, s := range plan.idle {
		if s.filter == "" {
			break // none subscribes
		}
		if err := topic.ValidateFilter(s.filter); err != nil {
			return fmt.Errorf("-t %q: filter %q: %w", cfg.topic, s.filter, err)
		}
	}
	return nil
}

// Run runs cfg's scenario and returns its summary. It fails only for what
// makes the run meaningless (a Config that does not check); connections
// that fail are counted in the Result instead, with the reasons in its
// Errors. When ctx ends, publishing stops, the run drains (up to
// Config.Drain without progress) and Run returns what happened so far.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	c, err := cfg.settle()
	if err != nil {
		return nil, err
	}
	return benchRun(ctx, c)
}
