package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ternmq/tern/bench"
)

// tern bench is the load generator of package bench; this file wires its
// flags.

const benchSynopsis = `tern bench conn|pub|sub|fanin|fanout|p2p [options]

  conn    open -c connections (at --connect-rate) and hold them idle for -d;
          with -t, each subscribes to it (%i its index) at -q first
  pub     -c publishers
  sub     -c subscribers to -t; counts whatever arrives (from any publisher)
  fanin   -c publishers -> 1 subscriber
  fanout  1 publisher -> -c subscribers (each expects every message)
  p2p     -c pairs: publisher i -> its own subscriber i

--url and --sub-url may be repeated: connections go to each URL in turn.`

// benchFlags is what tern bench's flags ask for, beyond bench.Config.
type benchFlags struct {
	bench.Config
	host       string
	port       int
	tls        tlsFlags
	version    string
	keepAlive  int
	json       bool
	report     string
	cpuProfile string
}

// parseBench parses tern bench's arguments: the scenario, then flags.
func parseBench(args []string, stderr io.Writer) (*benchFlags, error) {
	cfg := &benchFlags{Config: bench.DefaultConfig()}
	c := &cfg.Config
	f := newCLIFlags("tern bench", benchSynopsis, stderr)
	f.stringVar(&cfg.host, "h", "host", "localhost", "broker `host`")
	f.intVar(&cfg.port, "p", "port", 1883, "broker `port`")
	f.funcVar("", "url", "broker `URL`: tcp://, tls://, ws:// or wss:// host:port[/path] (overrides -h, -p);\n"+
		"repeat it for several brokers (nodes of a cluster): connections go to each in turn", func(s string) error {
		c.URLs = append(c.URLs, s)
		return nil
	})
	f.funcVar("", "sub-url", "subscribers connect to `URL` (repeatable, in turn), publishers to --url or -h/-p:\n"+
		"e.g. publishers on one node of a cluster, subscribers on another", func(s string) error {
		c.SubURLs = append(c.SubURLs, s)
		return nil
	})
	cfg.tls.register(f)
	f.intVar(&c.Clients, "c", "clients", c.Clients, "`N` clients: publishers, subscribers or pairs, by scenario")
	f.intVar(&c.QoS, "q", "qos", 0, "`QoS` 0, 1 or 2")
	f.intVar(&c.Size, "s", "size", c.Size, "payload size in `bytes` (at least 20: timestamp, sequence, publisher, run)")
	f.floatVar(&c.Rate, "r", "rate", 0, "messages per second per publisher (0: as fast as the window allows)")
	f.FlagSet.DurationVar(&c.Duration, "d", 0, "publish (or, for conn, hold) for `duration` (default 10s unless -n)")
	f.FlagSet.DurationVar(&c.Duration, "duration", 0, "same as -d")
	f.names("d", "duration")
	f.intVar(&c.Count, "n", "count", 0, "publish `N` messages per publisher, then stop")
	f.intVar(&c.Window, "w", "window", c.Window, "`N` QoS 1/2 messages in flight per publisher")
	f.stringVar(&c.Topic, "t", "topic", "", "topic `pattern`; %i is the client index (default bench/%i, bench/# for sub;\n"+
		"conn: none, given, each connection subscribes to it)")
	f.stringVar(&c.Shared, "", "shared", "", "subscribers join shared subscription `group` ($share/group/...)")
	f.stringVar(&cfg.version, "V", "protocol-version", "311", "MQTT `version`: 31, 311 or 5")
	f.boolVar(&cfg.json, "", "json", "print the summary as one JSON object on stdout")
	f.stringVar(&cfg.report, "", "report", "", "also write an HTML report to `file`: throughput over time, latency histogram\n"+
		"and percentiles, the run's parameters (one page, no external resources)")
	f.stringVar(&c.IDPrefix, "i", "id-prefix", "", "client id `prefix`; ids are prefix-pub-N, prefix-sub-N (default tern-bench-<random>)")
	f.stringVar(&c.Username, "u", "username", "", "user `name`")
	f.stringVar(&c.Password, "P", "pw", "", "`password`")
	f.boolVar(&c.Persistent, "", "persistent", "persistent sessions: clean session 0 (v5: Clean Start 0, no expiry), kept after the run")
	f.floatVar(&c.ConnectRate, "", "connect-rate", 0, "new connections per `second` (0: as fast as handshakes complete, 100 at a time)")
	f.intVar(&cfg.keepAlive, "k", "keepalive", 60, "keep alive in `seconds` (0 disables)")
	f.FlagSet.DurationVar(&c.Drain, "drain", c.Drain, "after publishing, wait up to `duration` without progress for acks and deliveries")
	f.names("", "drain")
	f.stringVar(&cfg.cpuProfile, "", "cpuprofile", "", "write the load generator's own CPU profile to `file` (is it the bottleneck?)")

	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && isHelp(args[0]) {
			f.usage()
			return nil, errHelp
		}
		return nil, usageError{errors.New("name a scenario: conn, pub, sub, fanin, fanout or p2p")}
	}
	c.Scenario = args[0]
	if err := f.parse(args[1:]); err != nil {
		return nil, err
	}
	c.UsernameSet, c.PasswordSet = f.isSet("username"), f.isSet("pw")
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

// check turns the flags bench.Config has no field for into its fields,
// and checks the whole.
func (cfg *benchFlags) check() error {
	c := &cfg.Config
	if !slices.Contains(bench.Scenarios, c.Scenario) {
		return fmt.Errorf("unknown scenario %q: want conn, pub, sub, fanin, fanout or p2p", c.Scenario)
	}
	var err error
	if c.Version, err = parseVersion(cfg.version); err != nil {
		return err
	}
	if len(c.URLs) == 0 {
		c.URLs = []string{"tcp://" + net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port))}
	}
	if c.TLSConfig, err = cfg.tls.config(append(c.URLs[:len(c.URLs):len(c.URLs)], c.SubURLs...)); err != nil {
		return err
	}
	c.KeepAlive = time.Duration(cfg.keepAlive) * time.Second
	if cfg.keepAlive < 0 || cfg.keepAlive > 65535 {
		return fmt.Errorf("-k %d: want 0 to 65535 seconds", cfg.keepAlive)
	}
	return c.Check()
}

// runBench is tern bench.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "tern bench"
	cfg, err := parseBench(args, stderr)
	if err != nil {
		return reportParse(cmd, err, stderr)
	}
	if isTerminal(stderr) {
		cfg.Progress = stderr
	}
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
	res, err := bench.Run(ctx, cfg.Config)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return exitFail
	}
	if cfg.json {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteText(stdout)
	}
	if err == nil && cfg.report != "" {
		err = writeReport(cfg.report, res)
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

// writeReport writes res's HTML page to path.
func writeReport(path string, res *bench.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if err := res.WriteHTML(f); err != nil {
		f.Close()
		return fmt.Errorf("--report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	return nil
}

// isTerminal reports whether w is a terminal, where a live progress line
// belongs; piped or redirected output stays quiet.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
