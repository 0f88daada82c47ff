package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
)

// Exit codes of tern pub and tern sub.
const (
	exitOK    = 0
	exitFail  = 1 // connection, protocol or I/O failure
	exitUsage = 2 // bad flags
)

// cliFlags is a flag.FlagSet whose options have a short and a long name,
// like mosquitto_pub's -t/--topic. Go's flag package takes -x and --x
// alike, so both names work with one or two dashes.
type cliFlags struct {
	*flag.FlagSet
	long     map[string]string // short name -> long name
	order    []string          // names in registration order, for usage
	synopsis string
}

func newCLIFlags(name, synopsis string, stderr io.Writer) *cliFlags {
	f := &cliFlags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), long: map[string]string{}, synopsis: synopsis}
	f.SetOutput(stderr)
	f.Usage = f.usage
	return f
}

func (f *cliFlags) names(short, long string) {
	if short != "" && long != "" {
		f.long[short] = long
	}
	if short != "" {
		f.order = append(f.order, short)
	} else {
		f.order = append(f.order, long)
	}
}

// eachName calls reg for the short and the long name, whichever are set.
func eachName(short, long string, reg func(name string)) {
	for _, n := range []string{short, long} {
		if n != "" {
			reg(n)
		}
	}
}

func (f *cliFlags) stringVar(p *string, short, long, def, usage string) {
	f.names(short, long)
	eachName(short, long, func(n string) { f.StringVar(p, n, def, usage) })
}

func (f *cliFlags) intVar(p *int, short, long string, def int, usage string) {
	f.names(short, long)
	eachName(short, long, func(n string) { f.IntVar(p, n, def, usage) })
}

func (f *cliFlags) floatVar(p *float64, short, long string, def float64, usage string) {
	f.names(short, long)
	eachName(short, long, func(n string) { f.Float64Var(p, n, def, usage) })
}

func (f *cliFlags) boolVar(p *bool, short, long string, usage string) {
	f.names(short, long)
	eachName(short, long, func(n string) { f.BoolVar(p, n, false, usage) })
}

func (f *cliFlags) funcVar(short, long, usage string, fn func(string) error) {
	f.names(short, long)
	eachName(short, long, func(n string) { f.Func(n, usage, fn) })
}

// isSet reports whether the option was given, under either name.
func (f *cliFlags) isSet(name string) bool {
	set := false
	f.Visit(func(fl *flag.Flag) {
		if fl.Name == name || f.long[fl.Name] == name || f.long[name] == fl.Name {
			set = true
		}
	})
	return set
}

// parse parses args and refuses positional arguments.
func (f *cliFlags) parse(args []string) error {
	if err := f.FlagSet.Parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (flags come first; quote a message with spaces)", f.Arg(0))}
	}
	return nil
}

// usage prints each option once, with both its names.
func (f *cliFlags) usage() {
	w := f.Output()
	fmt.Fprintf(w, "Usage: %s\n\nOptions:\n", f.synopsis)
	for _, n := range f.order {
		fl := f.Lookup(n)
		names := "-" + n
		if l, ok := f.long[n]; ok {
			names += ", --" + l
		} else if len(n) > 1 {
			names = "--" + n
		}
		arg, usage := flag.UnquoteUsage(fl)
		if arg != "" {
			names += " " + arg
		}
		if fl.DefValue != "" && fl.DefValue != "0" && fl.DefValue != "false" && fl.DefValue != "[]" {
			usage += " (default " + fl.DefValue + ")"
		}
		fmt.Fprintf(w, "  %s\n    \t%s\n", names, strings.ReplaceAll(usage, "\n", "\n    \t"))
	}
}

// tlsFlags are the TLS options of tern pub, sub and bench.
type tlsFlags struct {
	caFile, certFile, keyFile string
	insecure                  bool
}

func (t *tlsFlags) register(f *cliFlags) {
	f.stringVar(&t.caFile, "", "cafile", "", "PEM `file` of CAs that sign the broker's certificate (tls://, wss://)")
	f.stringVar(&t.certFile, "", "cert", "", "client certificate PEM `file` (with --key)")
	f.stringVar(&t.keyFile, "", "key", "", "client key PEM `file`")
	f.boolVar(&t.insecure, "", "insecure", "do not verify the broker's certificate")
}

// config returns the TLS configuration for urls: nil when none of them
// is tls:// or wss:// (and then no TLS flag may be set).
func (t *tlsFlags) config(urls []string) (*tls.Config, error) {
	if !slices.ContainsFunc(urls, secureURL) {
		if t.caFile != "" || t.insecure || t.certFile != "" || t.keyFile != "" {
			return nil, errors.New("--cafile, --cert and --insecure need a tls:// or wss:// --url")
		}
		return nil, nil
	}
	// The server name is each URL's host, filled in by whoever dials it.
	tc := &tls.Config{InsecureSkipVerify: t.insecure, ClientSessionCache: tls.NewLRUClientSessionCache(0)}
	if t.caFile != "" {
		pem, err := os.ReadFile(t.caFile)
		if err != nil {
			return nil, fmt.Errorf("--cafile: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cafile %s: no PEM certificates", t.caFile)
		}
	}
	if (t.certFile == "") != (t.keyFile == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if t.certFile != "" {
		c, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// secureURL reports whether a broker URL is one that TLS applies to.
func secureURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "tls", "ssl", "mqtts", "wss":
		return true
	}
	return false
}

// clientFlags are the connection options tern pub and tern sub share,
// named as in mosquitto_pub and mosquitto_sub.
type clientFlags struct {
	host        string
	port        int
	urls        []string // --url, in order: the first is tried first
	tls         tlsFlags
	id          string
	username    string
	password    string
	keepAlive   int
	qos         int
	noClean     bool
	version     string
	willTopic   string
	willPayload string
	willQoS     int
	willRetain  bool
	debug       bool

	fs *cliFlags // for isSet after parsing
}

func (c *clientFlags) register(f *cliFlags) {
	c.fs = f
	f.stringVar(&c.host, "h", "host", "localhost", "broker `host`")
	f.intVar(&c.port, "p", "port", 1883, "broker `port`")
	f.funcVar("", "url", "broker `URL`: tcp://, tls://, ws:// or wss:// host:port[/path] (overrides -h, -p);\n"+
		"repeat it for several brokers (nodes of a cluster): the first that answers is used, and\n"+
		"with -c the next one in turn whenever the connection fails", func(s string) error {
		c.urls = append(c.urls, s)
		return nil
	})
	c.tls.register(f)
	f.stringVar(&c.id, "i", "id", "", "client `id` (default: generated for 3.1/3.1.1, assigned by the broker for 5)")
	f.stringVar(&c.username, "u", "username", "", "user `name`")
	f.stringVar(&c.password, "P", "pw", "", "`password`")
	f.intVar(&c.keepAlive, "k", "keepalive", 60, "keep alive in `seconds` (0 disables)")
	f.intVar(&c.qos, "q", "qos", 0, "`QoS` 0, 1 or 2")
	f.boolVar(&c.noClean, "c", "disable-clean-session", "keep the session after disconnecting (needs -i)")
	f.stringVar(&c.version, "V", "protocol-version", "311", "MQTT `version`: 31, 311 or 5 (also mqttv31, mqttv311, mqttv5)")
	f.stringVar(&c.willTopic, "", "will-topic", "", "will `topic`, published if the connection is lost")
	f.stringVar(&c.willPayload, "", "will-payload", "", "will `message`")
	f.intVar(&c.willQoS, "", "will-qos", 0, "will `QoS`")
	f.boolVar(&c.willRetain, "", "will-retain", "retain the will")
	f.boolVar(&c.debug, "d", "debug", "print the packets sent and received on stderr")
}

// parseVersion maps a -V value to a protocol level.
func parseVersion(s string) (byte, error) {
	switch strings.ToLower(s) {
	case "31", "mqttv31":
		return packet.V31, nil
	case "311", "mqttv311":
		return packet.V311, nil
	case "5", "mqttv5":
		return packet.V5, nil
	}
	return 0, fmt.Errorf("protocol version %q: want 31, 311 or 5", s)
}

// options checks the flags and turns them into client options.
func (c *clientFlags) options() (client.Options, error) {
	var o client.Options
	v, err := parseVersion(c.version)
	if err != nil {
		return o, err
	}
	if c.port < 1 || c.port > 65535 {
		return o, fmt.Errorf("port %d: want 1 to 65535", c.port)
	}
	if c.qos < 0 || c.qos > 2 {
		return o, fmt.Errorf("QoS %d: want 0, 1 or 2", c.qos)
	}
	if c.keepAlive < 0 || c.keepAlive > 65535 {
		return o, fmt.Errorf("keep alive %d: want 0 to 65535 seconds", c.keepAlive)
	}
	if len(c.urls) > 0 {
		for _, u := range c.urls {
			if err := checkURL(u); err != nil {
				return o, err
			}
		}
		o.URL = c.urls[0]
	} else {
		o.Address = net.JoinHostPort(c.host, strconv.Itoa(c.port))
	}
	if o.TLSConfig, err = c.tls.config(c.urls); err != nil {
		return o, err
	}
	o.Version = v
	o.ClientID = c.id
	o.CleanStart = !c.noClean
	o.KeepAlive = time.Duration(c.keepAlive) * time.Second
	if c.keepAlive == 0 {
		o.KeepAlive = -1
	}
	if c.noClean && c.id == "" {
		return o, errors.New("-c needs a client id (-i): a session is found again by its client id")
	}
	if o.ClientID == "" && v != packet.V5 {
		// 3.1 needs a client id; as mosquitto_pub does, give 3.1.1 one too
		// and let a 5.0 broker assign it.
		o.ClientID = "tern-" + rand.Text()[:16]
	}
	if c.fs.isSet("username") {
		o.Username, o.UsernameSet = c.username, true
	}
	if c.fs.isSet("pw") {
		if !o.UsernameSet && v != packet.V5 {
			return o, errors.New("-P needs -u before MQTT 5")
		}
		o.Password, o.PasswordSet = []byte(c.password), true
	}
	if c.willTopic == "" {
		if c.fs.isSet("will-payload") || c.fs.isSet("will-qos") || c.willRetain {
			return o, errors.New("--will-payload, --will-qos and --will-retain need --will-topic")
		}
	} else {
		if c.willQoS < 0 || c.willQoS > 2 {
			return o, fmt.Errorf("will QoS %d: want 0, 1 or 2", c.willQoS)
		}
		o.Will = &packet.Will{Topic: c.willTopic, Payload: []byte(c.willPayload), QoS: byte(c.willQoS), Retain: c.willRetain}
	}
	return o, nil
}

// checkURL refuses a --url the client could not dial, before connecting.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt", "tls", "ssl", "mqtts", "ws", "wss":
	default:
		return fmt.Errorf("--url %q: want tcp://, tls://, ws:// or wss:// with a host", raw)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("--url %q: want tcp://, tls://, ws:// or wss:// with a host", raw)
	}
	return nil
}

// connectAny connects to the first of urls that answers (o's Address or
// URL when there are fewer than two). Every one is tried, refusals
// included: a node of a cluster may refuse while it starts or stops.
func connectAny(ctx context.Context, o client.Options, urls []string) (*client.Client, error) {
	if len(urls) < 2 {
		return client.Connect(ctx, o)
	}
	var errs []string
	for _, u := range urls {
		o.URL = u
		c, err := client.Connect(ctx, o)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, u+": "+errText(err))
	}
	return nil, errors.New(strings.Join(errs, "; "))
}

// tracer returns a client.Options.Trace that prints packets as
// mosquitto's -d does, or nil without -d.
func (c *clientFlags) tracer(w io.Writer, id string) func(bool, packet.Packet) {
	if !c.debug {
		return nil
	}
	if id == "" {
		id = "(assigned by the broker)"
	}
	return func(out bool, p packet.Packet) {
		dir := "received"
		if out {
			dir = "sending"
		}
		fmt.Fprintf(w, "Client %s %s %s\n", id, dir, describe(p))
	}
}

// describe summarizes a packet for -d output.
func describe(p packet.Packet) string {
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	switch p := p.(type) {
	case *packet.Connack:
		return fmt.Sprintf("CONNACK (%d)", p.ReasonCode)
	case *packet.Publish:
		return fmt.Sprintf("PUBLISH (d%d, q%d, r%d, m%d, '%s', ... (%d bytes))",
			b(p.Dup), p.QoS, b(p.Retain), p.PacketID, p.Topic, len(p.Payload))
	case *packet.Puback:
		return fmt.Sprintf("PUBACK (m%d, rc%d)", p.PacketID, p.ReasonCode)
	case *packet.Pubrec:
		return fmt.Sprintf("PUBREC (m%d, rc%d)", p.PacketID, p.ReasonCode)
	case *packet.Pubrel:
		return fmt.Sprintf("PUBREL (m%d)", p.PacketID)
	case *packet.Pubcomp:
		return fmt.Sprintf("PUBCOMP (m%d)", p.PacketID)
	case *packet.Subscribe:
		var s []string
		for _, sub := range p.Subscriptions {
			s = append(s, fmt.Sprintf("%s (QoS %d)", sub.Filter, sub.QoS))
		}
		return fmt.Sprintf("SUBSCRIBE (m%d, %s)", p.PacketID, strings.Join(s, ", "))
	case *packet.Suback:
		codes := make([]string, len(p.ReasonCodes))
		for i, c := range p.ReasonCodes {
			codes[i] = strconv.Itoa(int(c))
		}
		return fmt.Sprintf("SUBACK (m%d, %s)", p.PacketID, strings.Join(codes, ", "))
	case *packet.Unsubscribe:
		return fmt.Sprintf("UNSUBSCRIBE (m%d, %s)", p.PacketID, strings.Join(p.Filters, ", "))
	case *packet.Unsuback:
		return fmt.Sprintf("UNSUBACK (m%d)", p.PacketID)
	case *packet.Disconnect:
		if p.ReasonCode != 0 {
			return fmt.Sprintf("DISCONNECT (%d)", p.ReasonCode)
		}
	}
	return p.Type().String()
}

// usageError is a bad command line found after the flag package parsed
// it; the flag package prints its own errors.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// reportParse turns a parse error into an exit code, printing what the
// flag package did not.
func reportParse(cmd string, err error, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd, ue.err, cmd)
	}
	return exitUsage
}

// errText is err for the user: without the client package's prefixes,
// which say nothing to someone running tern pub or tern sub.
func errText(err error) string {
	return strings.ReplaceAll(strings.TrimPrefix(err.Error(), "client: "), ": client: ", ": ")
}
