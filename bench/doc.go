// Package bench is the load generator behind tern bench: it loads any MQTT
// broker (3.1, 3.1.1, 5.0 over TCP, TLS, WebSocket, WSS) and reports exact
// counts of what was sent, acknowledged, received, lost and duplicated,
// with end-to-end latency percentiles.
//
// Run takes a Config (start from DefaultConfig) and returns a Result, which
// prints itself as tern bench's text summary (WriteText), as JSON
// (WriteJSON) or as a self-contained HTML page (WriteHTML); a Report puts
// several results side by side on one page.
//
//	cfg := bench.DefaultConfig()
//	cfg.Scenario = "fanout" // 1 publisher -> Clients subscribers
//	cfg.URLs = []string{"tcp://127.0.0.1:1883"}
//	cfg.Clients, cfg.QoS, cfg.Count = 10, 1, 1000
//	res, err := bench.Run(ctx, cfg)
//
// The scenarios:
//
//	conn    Clients idle connections, opened at ConnectRate, held for Duration
//	        (with Topic: each subscribed to it first; %i is its index)
//	pub     Clients publishers, no subscribers
//	sub     Clients subscribers to Topic; counts whatever arrives
//	fanin   Clients publishers -> 1 subscriber
//	fanout  1 publisher -> Clients subscribers (with Shared: the group gets each once)
//	p2p     Clients pairs, publisher i -> subscriber i on its own topic
//
// Connections are spread over Config.URLs in turn, and the subscribers
// over Config.SubURLs when it is set: publishers on one node of a cluster
// and subscribers on another measure its forwarding.
//
// Every payload starts with a stamp (ParseStamp): send time, publisher,
// sequence number and a random run id, so that each receiver knows
// exactly which messages it got. The connections are lean (one reader
// goroutine that parses in place, a pre-encoded PUBLISH patched per send,
// batched writes, no allocation per message), so that the load generator
// does not measure itself. See bench/README.md for how to read a summary.
package bench
