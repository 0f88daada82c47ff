package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// exitTimeout is tern sub's exit code when -W ends it before -C messages
// arrived, as mosquitto_sub's.
const exitTimeout = 27

// subConfig is what tern sub's flags ask for.
type subConfig struct {
	clientFlags
	topics     []string
	verbose    bool
	format     string // plain, topic or json
	json       bool
	count      int
	timeout    float64
	noEOL      bool
	noRetained bool
}

// parseSub parses tern sub's flags into cfg and the client options.
func parseSub(args []string, stderr io.Writer) (*subConfig, client.Options, error) {
	cfg := &subConfig{}
	f := newCLIFlags("tern sub", "tern sub -t topic [-t topic ...] [options]", stderr)
	f.funcVar("t", "topic", "subscribe to `filter` (repeatable)", func(s string) error {
		cfg.topics = append(cfg.topics, s)
		return nil
	})
	f.boolVar(&cfg.verbose, "v", "verbose", "print \"topic payload\" rather than the payload alone (-F topic)")
	f.stringVar(&cfg.format, "F", "format", "", "output `format`: plain (the payload), topic (\"topic payload\", as -v) or json\n"+
		"(a JSON object per line: topic, qos, retain, dup, payload or payload_base64, properties)")
	f.boolVar(&cfg.json, "", "json", "print a JSON object per message (-F json)")
	f.intVar(&cfg.count, "C", "count", 0, "exit after `N` messages")
	f.floatVar(&cfg.timeout, "W", "timeout", 0, "exit after `seconds`")
	f.boolVar(&cfg.noEOL, "N", "", "no newline after each payload")
	f.boolVar(&cfg.noRetained, "R", "", "do not print stale retained messages")
	cfg.register(f)
	if err := f.parse(args); err != nil {
		return nil, client.Options{}, err
	}
	o, err := cfg.options()
	if err != nil {
		return nil, o, usageError{err}
	}
	if len(cfg.topics) == 0 {
		return nil, o, usageError{errors.New("at least one -t topic is required")}
	}
	switch cfg.format {
	case "":
		cfg.format = "plain"
		if cfg.verbose {
			cfg.format = "topic"
		}
		if cfg.json {
			cfg.format = "json"
		}
	case "plain", "topic", "json":
	default:
		return nil, o, usageError{fmt.Errorf("-F %q: want plain, topic or json", cfg.format)}
	}
	if (cfg.verbose && cfg.format != "topic") || (cfg.json && cfg.format != "json") {
		return nil, o, usageError{errors.New("give one output format: -v, --json or -F")}
	}
	for _, t := range cfg.topics {
		if err := topic.ValidateFilter(t); err != nil {
			return nil, o, usageError{err}
		}
	}
	if cfg.count < 0 {
		return nil, o, usageError{fmt.Errorf("-C %d: want a positive count", cfg.count)}
	}
	if cfg.timeout < 0 {
		return nil, o, usageError{fmt.Errorf("-W %g: want a positive number of seconds", cfg.timeout)}
	}
	o.Trace = cfg.tracer(stderr, o.ClientID)
	return cfg, o, nil
}

// runSub is tern sub: print the messages of the subscriptions until ctx
// ends (exit 0), -C messages were printed (0), -W seconds passed (0, or 27
// if -C was not reached), or the connection is lost (1).
func runSub(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "tern sub"
	cfg, o, err := parseSub(args, stderr)
	if err != nil {
		return reportParse(cmd, err, stderr)
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s: %s\n", cmd, errText(err))
		return exitFail
	}

	// The handler runs on the client's delivery goroutine. Messages can
	// come before Subscribe returns (a resumed session), so it shares
	// nothing with this goroutine but these channels and the counter.
	var printed atomic.Int64
	reached := make(chan struct{})
	writeFailed := make(chan error, 1)
	var once sync.Once
	var line []byte
	o.OnMessage = func(p *packet.Publish) {
		if cfg.noRetained && p.Retain {
			return
		}
		if cfg.count > 0 && printed.Load() >= int64(cfg.count) {
			return
		}
		line = formatMessage(line[:0], p, cfg.format, !cfg.noEOL)
		if _, err := stdout.Write(line); err != nil {
			once.Do(func() { writeFailed <- err })
			return
		}
		if n := printed.Add(1); cfg.count > 0 && n == int64(cfg.count) {
			close(reached)
		}
	}

	c, err := dialSub(ctx, o, cfg.urls, cfg.noClean, stderr)
	if err != nil {
		if ctx.Err() != nil {
			err = errors.New("interrupted while connecting")
		}
		return fail(err)
	}
	var timeout <-chan time.Time
	if cfg.timeout > 0 {
		t := time.NewTimer(time.Duration(cfg.timeout * float64(time.Second)))
		defer t.Stop()
		timeout = t.C
	}
	subs := make([]packet.Subscription, len(cfg.topics))
	for i, t := range cfg.topics {
		subs[i] = packet.Subscription{Filter: t, QoS: byte(cfg.qos)}
	}
	code := exitOK
	var refused *client.SubscribeError
	if sa, err := c.subscribe(ctx, subs...); err != nil && !errors.As(err, &refused) {
		if ctx.Err() == nil {
			code = fail(err)
		}
	} else if refusedAll(sa, subs, o.Version, stderr) {
		code = exitFail
	} else {
		select {
		case <-reached:
		case <-ctx.Done():
		case <-timeout:
			if cfg.count > 0 {
				fmt.Fprintf(stderr, "%s: timed out after %g seconds with %d of %d messages\n",
					cmd, cfg.timeout, printed.Load(), cfg.count)
				code = exitTimeout
			}
		case err := <-writeFailed:
			code = fail(fmt.Errorf("writing output: %w", err))
		case <-c.done():
			code = fail(c.err())
		}
	}
	// Disconnect waits for an OnMessage call in progress; do not wait
	// forever for one stuck on a blocked stdout.
	disc := make(chan error, 1)
	go func() { disc <- c.disconnect() }()
	select {
	case err := <-disc:
		if err != nil && code == exitOK {
			code = fail(err)
		}
		select {
		case <-c.done():
		case <-time.After(5 * time.Second):
			c.close()
		}
	case <-time.After(5 * time.Second):
		c.close()
	}
	return code
}

// subConn is what tern sub reads from: a Client, or with -c a
// client.Session, which reconnects and resumes the persistent session when
// the connection is lost.
type subConn struct {
	subscribe  func(context.Context, ...packet.Subscription) (*packet.Suback, error)
	done       func() <-chan struct{}
	err        func() error
	disconnect func() error
	close      func()
}

// dialSub connects, to the first of urls that answers when there are
// several. With persistent, a connection lost later is made again (to the
// next of urls, in turn), but the first must succeed: a wrong address is
// reported, not retried; with several URLs, once each has failed.
func dialSub(ctx context.Context, o client.Options, urls []string, persistent bool, stderr io.Writer) (*subConn, error) {
	if !persistent {
		c, err := connectAny(ctx, o, urls)
		if err != nil {
			return nil, err
		}
		return &subConn{subscribe: c.Subscribe, done: c.Done, err: c.Err, disconnect: c.Disconnect,
			close: func() { c.Close() }}, nil
	}
	firstErr := make(chan error, 1)
	var connected atomic.Bool
	var servers []string
	if len(urls) > 1 {
		servers = urls
	}
	var firstErrs []string // the first round's failures; OnConnectError's (one call at a time)
	s, err := client.NewSession(client.SessionOptions{
		Options: o,
		Servers: servers,
		OnConnect: func(*packet.Connack) {
			connected.Store(true)
		},
		OnConnectError: func(err error) {
			switch {
			case connected.Load():
				fmt.Fprintf(stderr, "tern sub: reconnecting: %s\n", errText(err))
			case len(servers) == 0:
				select {
				case firstErr <- err:
				default:
				}
			default:
				// Each server has its turn before tern sub gives up.
				firstErrs = append(firstErrs, servers[len(firstErrs)%len(servers)]+": "+errText(err))
				if len(firstErrs) == len(servers) {
					select {
					case firstErr <- errors.New(strings.Join(firstErrs, "; ")):
					default:
					}
				} else if !errors.As(err, new(*client.ConnectError)) {
					// (A refusal may end the session: it would not be tried.)
					fmt.Fprintf(stderr, "tern sub: %s; trying the next server\n", firstErrs[len(firstErrs)-1])
				}
			}
		},
		OnConnectionLost: func(err error) {
			fmt.Fprintf(stderr, "tern sub: connection lost: %s; reconnecting\n", errText(err))
		},
	})
	if err != nil {
		return nil, err
	}
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case err := <-firstErr:
			firstErr <- err // for the caller, before AwaitConnection returns
			s.Close()
		case <-connCtx.Done():
		}
	}()
	if err := s.AwaitConnection(connCtx); err != nil {
		s.Close()
		select {
		case err = <-firstErr:
		default:
		}
		return nil, err
	}
	return &subConn{
		subscribe: s.Subscribe, done: s.Done, err: s.Err,
		disconnect: func() error {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return s.Disconnect(dctx)
		},
		close: func() { s.Close() },
	}, nil
}

// refusedAll reports the filters the SUBACK refused on stderr, and whether
// that was all of them.
func refusedAll(sa *packet.Suback, subs []packet.Subscription, version byte, stderr io.Writer) bool {
	refused := 0
	for i, code := range sa.ReasonCodes {
		if !code.IsFailure() || i >= len(subs) {
			continue
		}
		refused++
		why := ""
		if version == packet.V5 {
			why = ": " + code.Error()
		}
		fmt.Fprintf(stderr, "tern sub: subscription to %q refused%s\n", subs[i].Filter, why)
	}
	return refused == len(subs)
}

// formatMessage appends the output line for p in format: the payload
// (plain), the topic, a space and the payload (topic), or a JSON object
// (json); and a newline if eol.
func formatMessage(dst []byte, p *packet.Publish, format string, eol bool) []byte {
	switch format {
	case "json":
		dst = appendJSON(dst, p)
	case "topic":
		dst = append(dst, p.Topic...)
		dst = append(dst, ' ')
		fallthrough
	default:
		dst = append(dst, p.Payload...)
	}
	if eol {
		dst = append(dst, '\n')
	}
	return dst
}

// jsonMessage is tern sub --json's line. Bytes that are valid UTF-8 are
// printed as a string, others in base64 under the _base64 name, so that a
// reader never has to guess.
type jsonMessage struct {
	Topic         string          `json:"topic"`
	QoS           byte            `json:"qos"`
	Retain        bool            `json:"retain"`
	Dup           bool            `json:"dup"`
	Payload       *string         `json:"payload,omitempty"`
	PayloadBase64 []byte          `json:"payload_base64,omitempty"`
	Properties    *jsonProperties `json:"properties,omitempty"`
}

type jsonProperties struct {
	User                  []jsonUserProperty `json:"user_properties,omitempty"`
	ContentType           string             `json:"content_type,omitempty"`
	ResponseTopic         string             `json:"response_topic,omitempty"`
	CorrelationData       *string            `json:"correlation_data,omitempty"`
	CorrelationDataBase64 []byte             `json:"correlation_data_base64,omitempty"`
	MessageExpiry         *uint32            `json:"message_expiry,omitempty"`
	PayloadFormat         *byte              `json:"payload_format,omitempty"`
	SubscriptionIDs       []uint32           `json:"subscription_ids,omitempty"`
}

// jsonUserProperty keeps user properties a list: names may repeat and
// their order is kept [MQTT-3.3.2-18].
type jsonUserProperty struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// textOrBase64 sets exactly one of text and b64 from b.
func textOrBase64(b []byte, text **string, b64 *[]byte) {
	if utf8.Valid(b) {
		s := string(b)
		*text = &s
		return
	}
	*b64 = b
}

func appendJSON(dst []byte, p *packet.Publish) []byte {
	m := jsonMessage{Topic: p.Topic, QoS: p.QoS, Retain: p.Retain, Dup: p.Dup}
	textOrBase64(p.Payload, &m.Payload, &m.PayloadBase64)
	pr := &p.Properties
	jp := jsonProperties{ContentType: pr.ContentType, ResponseTopic: pr.ResponseTopic,
		MessageExpiry: pr.MessageExpiry, PayloadFormat: pr.PayloadFormat, SubscriptionIDs: pr.SubscriptionIDs}
	for _, u := range pr.User {
		jp.User = append(jp.User, jsonUserProperty{u.Key, u.Value})
	}
	if len(pr.CorrelationData) > 0 {
		textOrBase64(pr.CorrelationData, &jp.CorrelationData, &jp.CorrelationDataBase64)
	}
	if jp.User != nil || jp.ContentType != "" || jp.ResponseTopic != "" || jp.CorrelationData != nil ||
		jp.CorrelationDataBase64 != nil || jp.MessageExpiry != nil || jp.PayloadFormat != nil || jp.SubscriptionIDs != nil {
		m.Properties = &jp
	}
	b, err := json.Marshal(m)
	if err != nil {
		// Nothing in jsonMessage can fail to encode.
		panic(err)
	}
	return append(dst, b...)
}
