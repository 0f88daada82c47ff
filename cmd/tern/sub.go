package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

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
	f.boolVar(&cfg.verbose, "v", "verbose", "print \"topic payload\" rather than the payload alone")
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
		line = formatMessage(line[:0], p, cfg.verbose, !cfg.noEOL)
		if _, err := stdout.Write(line); err != nil {
			once.Do(func() { writeFailed <- err })
			return
		}
		if n := printed.Add(1); cfg.count > 0 && n == int64(cfg.count) {
			close(reached)
		}
	}

	c, err := client.Connect(ctx, o)
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
	if sa, err := c.Subscribe(ctx, subs...); err != nil {
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
		case <-c.Done():
			code = fail(c.Err())
		}
	}
	if err := c.Disconnect(); err != nil && code == exitOK {
		code = fail(err)
	}
	// Disconnect waits for an OnMessage call in progress; do not wait
	// forever for one stuck on a blocked stdout.
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		c.Close()
	}
	return code
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

// formatMessage appends the output line for p: the payload, after the
// topic and a space when verbose, and a newline unless noEOL.
func formatMessage(dst []byte, p *packet.Publish, verbose, eol bool) []byte {
	if verbose {
		dst = append(dst, p.Topic...)
		dst = append(dst, ' ')
	}
	dst = append(dst, p.Payload...)
	if eol {
		dst = append(dst, '\n')
	}
	return dst
}
