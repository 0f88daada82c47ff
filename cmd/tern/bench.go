package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// tern bench is a load generator: it opens many lean connections (see
// bench_conn.go), publishes stamped payloads and measures what arrives.

const benchSynopsis = `tern bench conn|pub|sub|fanin|fanout|p2p [options]

  conn    open -c connections (at --connect-rate) and hold them idle for -d
  pub     -c publishers
  sub     -c subscribers to -t; counts whatever arrives (from any publisher)
  fanin   -c publishers -> 1 subscriber
  fanout  1 publisher -> -c subscribers (each expects every message)
  p2p     -c pairs: publisher i -> its own subscriber i`

// benchConfig is what tern bench's flags ask for.
type benchConfig struct {
	scenario    string
	host        string
	port        int
	url         string
	caFile      string
	certFile    string
	keyFile     string
	insecure    bool
	clients     int
	qos         int
	size        int
	rate        float64
	duration    time.Duration
	count       int
	window      int
	topic       string
	shared      string
	version     string
	json        bool
	idPrefix    string
	username    string
	password    string
	connectRate float64
	keepAlive   int
	drain       time.Duration
	cpuProfile  string

	// Derived by parseBench.
	level    byte
	target   benchTarget
	userSet  bool
	passSet  bool
	runID    uint32 // stamped into payloads so that strays from other runs are not counted
	progress bool   // live progress line (stderr is a terminal)
}

// parseBench parses tern bench's arguments: the scenario, then flags.
func parseBench(args []string, stderr io.Writer) (*benchConfig, error) {
	cfg := &benchConfig{}
	f := newCLIFlags("tern bench", benchSynopsis, stderr)
	f.stringVar(&cfg.host, "h", "host", "localhost", "broker `host`")
	f.intVar(&cfg.port, "p", "port", 1883, "broker `port`")
	f.stringVar(&cfg.url, "", "url", "", "broker `URL`: tcp://, tls://, ws:// or wss:// host:port[/path] (overrides -h, -p)")
	f.stringVar(&cfg.caFile, "", "cafile", "", "PEM `file` of CAs that sign the broker's certificate (tls://, wss://)")
	f.stringVar(&cfg.certFile, "", "cert", "", "client certificate PEM `file` (with --key)")
	f.stringVar(&cfg.keyFile, "", "key", "", "client key PEM `file`")
	f.boolVar(&cfg.insecure, "", "insecure", "do not verify the broker's certificate")
	f.intVar(&cfg.clients, "c", "clients", 10, "`N` clients: publishers, subscribers or pairs, by scenario")
	f.intVar(&cfg.qos, "q", "qos", 0, "`QoS` 0, 1 or 2")
	f.intVar(&cfg.size, "s", "size", 256, "payload size in `bytes` (at least 20: timestamp, sequence, publisher, run)")
	f.floatVar(&cfg.rate, "r", "rate", 0, "messages per second per publisher (0: as fast as the window allows)")
	f.FlagSet.DurationVar(&cfg.duration, "d", 0, "publish (or, for conn, hold) for `duration` (default 10s unless -n)")
	f.FlagSet.DurationVar(&cfg.duration, "duration", 0, "same as -d")
	f.names("d", "duration")
	f.intVar(&cfg.count, "n", "count", 0, "publish `N` messages per publisher, then stop")
	f.intVar(&cfg.window, "w", "window", 64, "`N` QoS 1/2 messages in flight per publisher")
	f.stringVar(&cfg.topic, "t", "topic", "", "topic `pattern`; %i is the client index (default bench/%i, bench/%i/# for sub)")
	f.stringVar(&cfg.shared, "", "shared", "", "subscribers join shared subscription `group` ($share/group/...)")
	f.stringVar(&cfg.version, "V", "protocol-version", "311", "MQTT `version`: 31, 311 or 5")
	f.boolVar(&cfg.json, "", "json", "print the summary as one JSON object on stdout")
	f.stringVar(&cfg.idPrefix, "i", "id-prefix", "", "client id `prefix`; ids are prefix-pub-N, prefix-sub-N (default tern-bench-<random>)")
	f.stringVar(&cfg.username, "u", "username", "", "user `name`")
	f.stringVar(&cfg.password, "P", "pw", "", "`password`")
	f.floatVar(&cfg.connectRate, "", "connect-rate", 0, "new connections per `second` (0: as fast as handshakes complete, 100 at a time)")
	f.intVar(&cfg.keepAlive, "k", "keepalive", 60, "keep alive in `seconds` (0 disables)")
	f.FlagSet.DurationVar(&cfg.drain, "drain", 2*time.Second, "after publishing, wait up to `duration` without progress for acks and deliveries")
	f.names("", "drain")
	f.stringVar(&cfg.cpuProfile, "", "cpuprofile", "", "write the load generator's own CPU profile to `file` (is it the bottleneck?)")

	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && isHelp(args[0]) {
			f.usage()
			return nil, errHelp
		}
		return nil, usageError{errors.New("name a scenario: conn, pub, sub, fanin, fanout or p2p")}
	}
	cfg.scenario = args[0]
	if err := f.parse(args[1:]); err != nil {
		return nil, err
	}
	cfg.userSet, cfg.passSet = f.isSet("username"), f.isSet("pw")
	if err := cfg.check(); err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

func isHelp(s string) bool {
	switch s {
	case "-h", "-help", "--help":
		return true
	}
	return false
}

// errHelp is flag.ErrHelp for a scenario-less "tern bench --help", so
// that reportParse exits 0.
var errHelp = flag.ErrHelp

// check validates the flags and fills in the derived fields.
func (cfg *benchConfig) check() error {
	switch cfg.scenario {
	case "conn", "pub", "sub", "fanin", "fanout", "p2p":
	default:
		return fmt.Errorf("unknown scenario %q: want conn, pub, sub, fanin, fanout or p2p", cfg.scenario)
	}
	var err error
	if cfg.level, err = parseVersion(cfg.version); err != nil {
		return err
	}
	if cfg.target, err = parseTarget(cfg); err != nil {
		return err
	}
	switch {
	case cfg.clients < 1:
		return fmt.Errorf("-c %d: want at least 1", cfg.clients)
	case cfg.qos < 0 || cfg.qos > 2:
		return fmt.Errorf("-q %d: want 0, 1 or 2", cfg.qos)
	case cfg.size < benchHeaderLen:
		return fmt.Errorf("-s %d: want at least %d bytes (the payload carries a %d-byte stamp)", cfg.size, benchHeaderLen, benchHeaderLen)
	case cfg.size > 256<<20:
		return fmt.Errorf("-s %d: want at most 256 MiB", cfg.size)
	case cfg.rate < 0:
		return fmt.Errorf("-r %g: want 0 or more messages per second", cfg.rate)
	case cfg.count < 0:
		return fmt.Errorf("-n %d: want 0 or more", cfg.count)
	case cfg.count > 0 && cfg.duration > 0:
		return errors.New("give -d or -n, not both")
	case cfg.count > 0 && cfg.scenario == "conn":
		return errors.New("conn holds its connections for -d; -n does not apply")
	case cfg.duration < 0:
		return fmt.Errorf("-d %s: want a positive duration", cfg.duration)
	case cfg.window < 1 || cfg.window > 65535:
		return fmt.Errorf("-w %d: want 1 to 65535", cfg.window)
	case cfg.connectRate < 0:
		return fmt.Errorf("--connect-rate %g: want 0 or more", cfg.connectRate)
	case cfg.keepAlive < 0 || cfg.keepAlive > 65535:
		return fmt.Errorf("-k %d: want 0 to 65535 seconds", cfg.keepAlive)
	case cfg.passSet && !cfg.userSet && cfg.level != packet.V5:
		return errors.New("-P needs -u before MQTT 5")
	case cfg.shared != "" && (strings.ContainsAny(cfg.shared, "/+#") || cfg.level == packet.V31):
		return fmt.Errorf("--shared %q: want a group name without / + #, and MQTT 3.1.1 or 5", cfg.shared)
	}
	if cfg.count == 0 && cfg.duration == 0 {
		cfg.duration = 10 * time.Second
	}
	if cfg.topic == "" {
		cfg.topic = "bench/%i"
		if cfg.scenario == "sub" {
			cfg.topic = "bench/#"
		}
	}
	if cfg.scenario == "p2p" && !strings.Contains(cfg.topic, "%i") {
		return fmt.Errorf("-t %q: p2p needs %%i in the topic, so that each pair has its own", cfg.topic)
	}
	if err := cfg.checkTopics(); err != nil {
		return err
	}
	if cfg.idPrefix == "" {
		cfg.idPrefix = "tern-bench-" + strings.ToLower(rand.Text()[:6])
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	cfg.runID = binary.BigEndian.Uint32(b[:]) | 1
	return nil
}

// checkTopics validates the topic names and filters the scenario will use.
func (cfg *benchConfig) checkTopics() error {
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
	return nil
}

// runBench is tern bench.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "tern bench"
	cfg, err := parseBench(args, stderr)
	if err != nil {
		return reportParse(cmd, err, stderr)
	}
	cfg.progress = isTerminal(stderr)
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
			return exitFail
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
			return exitFail
		}
		defer pprof.StopCPUProfile()
	}
	res, err := benchRun(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return exitFail
	}
	if cfg.json {
		err = res.writeJSON(stdout)
	} else {
		err = res.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return exitFail
	}
	if res.Connections.OK == 0 {
		return exitFail
	}
	return exitOK
}
