// Package webhook sends broker events to HTTP receivers: a client
// connected, disconnected, subscribed or unsubscribed, a message published
// or dropped. A Webhook implements the broker's hook interfaces
// (broker.OnConnect, broker.OnDisconnect, broker.OnPublish,
// broker.OnSubscribe, broker.OnUnsubscribe, broker.OnDrop) and is passed
// in broker.Options.Hooks like any other hook.
//
// # Never in the way of delivery
//
// A hook only puts the event in the webhook's bounded queue (Config.
// QueueSize) and returns: it never waits for the network, and a full
// queue drops the event, counted in Stats().Dropped and logged at most
// once a minute. One goroutine per webhook POSTs what is queued: one
// event or, when several are waiting, up to Config.BatchSize of them in
// one request; the body is always a JSON array. A network error, a 5xx or
// a 429 is retried with exponential backoff (429 and 503 honour
// Retry-After), up to Config.MaxRetries times; any other status, and a
// TLS failure (an untrusted or mismatched certificate), fails the batch
// at once. Failures are logged, at most once a minute after the first.
//
// The JSON of each event is described in docs/webhooks.md.
package webhook
