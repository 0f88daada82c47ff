package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ternmq/tern/topic"
)

// Event names, as in Config.Events and in each event's "event" field.
const (
	ClientConnected    = "client.connected"
	ClientDisconnected = "client.disconnected"
	ClientSubscribed   = "client.subscribed"
	ClientUnsubscribed = "client.unsubscribed"
	MessagePublished   = "message.published"
	MessageDropped     = "message.dropped"
)

// kind is an event as a bit of Webhook.events.
type kind uint8

const (
	kConnected kind = 1 << iota
	kDisconnected
	kSubscribed
	kUnsubscribed
	kPublished
	kDropped
)

var kinds = []struct {
	name string
	k    kind
}{
	{ClientConnected, kConnected}, {ClientDisconnected, kDisconnected},
	{ClientSubscribed, kSubscribed}, {ClientUnsubscribed, kUnsubscribed},
	{MessagePublished, kPublished}, {MessageDropped, kDropped},
}

func (k kind) String() string {
	for _, x := range kinds {
		if x.k == k {
			return x.name
		}
	}
	return "unknown"
}

// Defaults for the zero values of Config.
const (
	DefaultTimeout    = 5 * time.Second
	DefaultQueueSize  = 10000
	DefaultBatchSize  = 100
	DefaultMaxRetries = 5
)

// Config is one webhook, as under `webhooks:` in tern's configuration.
type Config struct {
	URL string `yaml:"url"` // http:// or https://
	// Events are the event names sent; empty: all of them.
	Events []string `yaml:"events"`
	// Topics filter the message events (message.published,
	// message.dropped) by topic, with MQTT wildcards; empty: all topics.
	// A filter starting with a wildcard does not match $-topics.
	Topics  []string          `yaml:"topics"`
	Headers map[string]string `yaml:"headers"` // added to every POST
	Timeout time.Duration     `yaml:"timeout"` // one POST, connecting included; default 5s
	// QueueSize is how many events may wait to be sent; beyond it they
	// are dropped (counted). Default 10000.
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most events in one POST; default 100. A batch
	// also stops growing past 1 MiB of payload.
	BatchSize int `yaml:"batch_size"`
	// MaxRetries is how often a POST is sent again after a network
	// error, a 5xx or a 429; default 5, negative: never.
	MaxRetries int `yaml:"max_retries"`
}

// Validate checks c as New would, without starting anything. Errors
// name the URL.
func (c Config) Validate() error {
	_, err := c.parse()
	return err
}

// parsed is a Config checked, with the defaults applied.
type parsed struct {
	Config
	url    *url.URL
	events kind
}

func (c Config) parse() (*parsed, error) {
	p := &parsed{Config: c}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return nil, errors.New("webhook: url is missing")
	case err != nil:
		return nil, fmt.Errorf("webhook: url %q: %w", c.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("webhook: url %q: the scheme must be http or https", u.Redacted())
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("webhook: url %q: no host", u.Redacted())
	}
	p.url = u
	name := u.Redacted()
	var errs []error
	for _, e := range c.Events {
		k := kindOf(e)
		if k == 0 {
			var all []string
			for _, x := range kinds {
				all = append(all, x.name)
			}
			errs = append(errs, fmt.Errorf("webhook %s: unknown event %q: want one of %s", name, e, strings.Join(all, ", ")))
		}
		p.events |= k
	}
	if len(c.Events) == 0 {
		p.events = kConnected | kDisconnected | kSubscribed | kUnsubscribed | kPublished | kDropped
	}
	for _, f := range c.Topics {
		if err := topic.ValidateFilter(f); err != nil {
			errs = append(errs, fmt.Errorf("webhook %s: topic filter %q: %w", name, f, err))
		} else if _, _, shared := topic.ParseShared(f); shared {
			errs = append(errs, fmt.Errorf("webhook %s: topic filter %q: a shared subscription is no topic filter here", name, f))
		}
	}
	for k, v := range c.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") || strings.ContainsAny(v, "\r\n") {
			errs = append(errs, fmt.Errorf("webhook %s: header %q: not a valid HTTP header", name, k))
		}
	}
	if c.Timeout < 0 || c.QueueSize < 0 || c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("webhook %s: timeout, queue_size and batch_size may not be negative", name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultTimeout
	}
	if p.QueueSize == 0 {
		p.QueueSize = DefaultQueueSize
	}
	if p.BatchSize == 0 {
		p.BatchSize = DefaultBatchSize
	}
	switch {
	case p.MaxRetries == 0:
		p.MaxRetries = DefaultMaxRetries
	case p.MaxRetries < 0:
		p.MaxRetries = 0
	}
	return p, nil
}

func kindOf(name string) kind {
	for _, x := range kinds {
		if x.name == name {
			return x.k
		}
	}
	return 0
}
