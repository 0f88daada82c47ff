package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/topic"
)

// pubConfig is what tern pub's flags ask for.
type pubConfig struct {
	clientFlags
	topic       string
	message     string
	file        string
	stdinFile   bool
	stdinLine   bool
	null        bool
	retain      bool
	repeat      int
	repeatDelay float64
}

// parsePub parses tern pub's flags into cfg and the client options. An
// error other than flag.ErrHelp is a usage error; the flag package has
// already printed its own.
func parsePub(args []string, stderr io.Writer) (*pubConfig, client.Options, error) {
	cfg := &pubConfig{}
	f := newCLIFlags("tern pub", "tern pub -t topic (-m message | -f file | -s | -l | -n) [options]", stderr)
	f.stringVar(&cfg.topic, "t", "topic", "", "`topic` to publish to (required)")
	f.stringVar(&cfg.message, "m", "message", "", "send `message`")
	f.stringVar(&cfg.file, "f", "file", "", "send the contents of `file` as the message")
	f.boolVar(&cfg.stdinFile, "s", "stdin-file", "send all of stdin as one message")
	f.boolVar(&cfg.stdinLine, "l", "stdin-line", "send each line of stdin as a message, until EOF (blank lines are skipped)")
	f.boolVar(&cfg.null, "n", "null-message", "send an empty message")
	f.boolVar(&cfg.retain, "r", "retain", "retain the message")
	f.intVar(&cfg.repeat, "", "repeat", 1, "publish the message `N` times")
	f.floatVar(&cfg.repeatDelay, "", "repeat-delay", 0, "wait `seconds` between repeats")
	cfg.register(f)
	if err := f.parse(args); err != nil {
		return nil, client.Options{}, err
	}
	o, err := cfg.options()
	if err != nil {
		return nil, o, usageError{err}
	}
	if cfg.topic == "" {
		return nil, o, usageError{errors.New("-t topic is required")}
	}
	if err := topic.ValidateName(cfg.topic); err != nil {
		return nil, o, usageError{err}
	}
	sources := 0
	for _, set := range []bool{f.isSet("message"), cfg.file != "", cfg.stdinFile, cfg.stdinLine, cfg.null} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return nil, o, usageError{errors.New("give exactly one of -m, -f, -s, -l and -n")}
	}
	if cfg.repeat < 1 {
		return nil, o, usageError{fmt.Errorf("--repeat %d: want at least 1", cfg.repeat)}
	}
	if cfg.repeatDelay < 0 {
		return nil, o, usageError{fmt.Errorf("--repeat-delay %g: want 0 or more seconds", cfg.repeatDelay)}
	}
	if cfg.stdinLine && cfg.repeat != 1 {
		return nil, o, usageError{errors.New("--repeat does not apply to -l")}
	}
	o.Trace = cfg.tracer(stderr, o.ClientID)
	return cfg, o, nil
}

// runPub is tern pub: publish one message (or one per stdin line) and
// disconnect once every QoS flow has completed.
// runPub publishes until done or until ctx ends: tern pub -l stops reading
// and disconnects; an unfinished publish fails.
func runPub(ctx context.Context, args []string, stdin io.Reader, _, stderr io.Writer) int {
	const cmd = "tern pub"
	cfg, o, err := parsePub(args, stderr)
	if err != nil {
		return reportParse(cmd, err, stderr)
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s: %s\n", cmd, errText(err))
		return exitFail
	}
	// Read the message before connecting, so that a missing file costs no
	// connection.
	var payload []byte
	switch {
	case cfg.file != "":
		if payload, err = os.ReadFile(cfg.file); err != nil {
			return fail(err)
		}
	case cfg.stdinFile:
		if payload, err = io.ReadAll(stdin); err != nil {
			return fail(fmt.Errorf("reading stdin: %w", err))
		}
	case cfg.null:
	case !cfg.stdinLine:
		payload = []byte(cfg.message)
	}

	c, err := connectAny(ctx, o, cfg.urls)
	if err != nil {
		return fail(err)
	}
	msg := &packet.Publish{Topic: cfg.topic, QoS: byte(cfg.qos), Retain: cfg.retain}
	if cfg.stdinLine {
		err = pubLines(ctx, c, msg, stdin)
	} else {
		msg.Payload = payload
		for i := range cfg.repeat {
			if i > 0 && cfg.repeatDelay > 0 {
				if err = sleepCtx(ctx, time.Duration(cfg.repeatDelay*float64(time.Second))); err != nil {
					break
				}
			}
			if err = c.Publish(ctx, msg); err != nil {
				break
			}
		}
	}
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		return fail(err)
	}
	if err := c.Disconnect(); err != nil {
		return fail(err)
	}
	return exitOK
}

// pubLines publishes each line of r, without its newline, until EOF or
// until ctx ends. A last line without a newline is published too; blank
// lines are skipped, as mosquitto_pub -l does.
func pubLines(ctx context.Context, c *client.Client, msg *packet.Publish, r io.Reader) error {
	type line struct {
		b   []byte
		eof bool
		err error
	}
	lines := make(chan line)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		send := func(l line) bool {
			select {
			case lines <- l:
				return true
			case <-quit:
				return false
			}
		}
		br := bufio.NewReader(r)
		for {
			b, err := br.ReadBytes('\n')
			// A last line without a newline is a message too; as with
			// mosquitto_pub, a blank line is not.
			b = bytes.TrimSuffix(b, []byte("\n"))
			if len(b) > 0 && !send(line{b: b}) {
				return
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				send(line{eof: true, err: err})
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil // interrupted: what was read is published
		case <-c.Done():
			return c.Err()
		case l := <-lines:
			if l.eof {
				if l.err != nil {
					return fmt.Errorf("reading stdin: %w", l.err)
				}
				return nil
			}
			m := *msg
			m.Payload = l.b
			if err := c.Publish(ctx, &m); err != nil {
				return err
			}
		}
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
