package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
)

// startBroker runs an in-process Tern broker on a free loopback port, so
// that the examples run on their own. Real programs connect to a broker
// that runs elsewhere.
func startBroker() (addr string, stop func()) {
	b, err := broker.New(broker.Options{
		Logger:              slog.New(slog.NewTextHandler(io.Discard, nil)),
		ResponseInformation: "replies/%c",
	})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go b.Serve(ln)
	return ln.Addr().String(), func() { b.Close() }
}

// A Client is one connection: messages for a filter go to its handler.
func ExampleClient_SubscribeFunc() {
	addr, stop := startBroker()
	defer stop()
	ctx := context.Background()

	c, err := client.Connect(ctx, client.Options{URL: "tcp://" + addr, Version: packet.V5, CleanStart: true})
	if err != nil {
		panic(err)
	}
	got := make(chan string)
	_, err = c.SubscribeFunc(ctx, func(p *packet.Publish) {
		got <- p.Topic + ": " + string(p.Payload)
	}, packet.Subscription{Filter: "sensors/+/temp", QoS: 1})
	if err != nil {
		panic(err)
	}
	err = c.Publish(ctx, &packet.Publish{Topic: "sensors/kitchen/temp", QoS: 1, Payload: []byte("21.5")})
	if err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	c.Disconnect()
	// Output: sensors/kitchen/temp: 21.5
}

// A Session reconnects by itself and keeps publishes made while offline
// in a queue; Publish returns once the server has acknowledged.
func ExampleSession() {
	addr, stop := startBroker()
	defer stop()
	ctx := context.Background()

	got := make(chan string, 3)
	s, err := client.NewSession(client.SessionOptions{
		Options: client.Options{
			Address:  addr,
			Version:  packet.V5,
			ClientID: "example-device",
			// Keep the session for an hour across reconnects.
			Properties: packet.Properties{SessionExpiry: new(uint32(3600))},
			OnMessage:  func(p *packet.Publish) { got <- string(p.Payload) },
		},
		Backoff:   client.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second},
		MaxQueued: 10000,
		OnConnect: func(ca *packet.Connack) { fmt.Println("connected, session present:", ca.SessionPresent) },
	})
	if err != nil {
		panic(err)
	}
	if _, err := s.Subscribe(ctx, packet.Subscription{Filter: "commands/#", QoS: 1}); err != nil {
		panic(err)
	}
	for _, cmd := range []string{"open", "close"} {
		if err := s.Publish(ctx, &packet.Publish{Topic: "commands/door", QoS: 1, Payload: []byte(cmd)}); err != nil {
			panic(err)
		}
		fmt.Println("received", <-got)
	}
	// Disconnect sends what is queued first.
	if err := s.Disconnect(ctx); err != nil {
		panic(err)
	}
	// Output:
	// connected, session present: false
	// received open
	// received close
}

// Request sends an MQTT 5 request and waits for the response that
// carries its correlation data; NewResponse makes that response.
func ExampleSession_Request() {
	addr, stop := startBroker()
	defer stop()
	ctx := context.Background()

	service, err := client.Connect(ctx, client.Options{Address: addr, Version: packet.V5, CleanStart: true})
	if err != nil {
		panic(err)
	}
	defer service.Disconnect()
	_, err = service.SubscribeFunc(ctx, func(req *packet.Publish) {
		resp, err := client.NewResponse(req, bytes.ToUpper(req.Payload))
		if err == nil {
			service.Publish(ctx, resp)
		}
	}, packet.Subscription{Filter: "svc/upper", QoS: 1})
	if err != nil {
		panic(err)
	}

	s, err := client.NewSession(client.SessionOptions{Options: client.Options{Address: addr, Version: packet.V5}})
	if err != nil {
		panic(err)
	}
	defer s.Disconnect(ctx)
	resp, err := s.Request(ctx, "svc/upper", []byte("hello"))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(resp.Payload))
	// Output: HELLO
}

// A Router can also be used alone, from OnMessage.
func ExampleRouter() {
	var r client.Router
	r.Handle("alerts/#", func(p *packet.Publish) { fmt.Println("alert:", string(p.Payload)) })
	r.Handle("$share/workers/jobs/+", func(p *packet.Publish) { fmt.Println("job:", string(p.Payload)) })
	onMessage := func(p *packet.Publish) {
		if !r.Route(p) {
			fmt.Println("unrouted:", p.Topic)
		}
	}
	onMessage(&packet.Publish{Topic: "alerts/fire", Payload: []byte("kitchen")})
	onMessage(&packet.Publish{Topic: "jobs/42", Payload: []byte("resize")})
	onMessage(&packet.Publish{Topic: "other"})
	// Output:
	// alert: kitchen
	// job: resize
	// unrouted: other
}

// With several servers, a Session fails over: when the connection to one
// is lost, it connects to the next. BeforeConnect sees which one each
// attempt goes to.
func ExampleSessionOptions_servers() {
	first, stopFirst := startBroker()
	second, stopSecond := startBroker()
	defer stopSecond()
	names := map[string]string{"tcp://" + first: "first", "tcp://" + second: "second"}
	var server string // BeforeConnect and OnConnect run on one goroutine, in turn
	connected := make(chan string, 10)
	s, err := client.NewSession(client.SessionOptions{
		Options: client.Options{Version: packet.V5, ClientID: "failover"},
		Servers: []string{"tcp://" + first, "tcp://" + second},
		Backoff: client.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		BeforeConnect: func(ctx context.Context, o *client.Options) error {
			server = names[o.URL]
			return nil
		},
		OnConnect: func(*packet.Connack) { connected <- server },
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("connected to the", <-connected, "server")
	stopFirst()
	fmt.Println("connected to the", <-connected, "server")
	s.Disconnect(context.Background())
	// Output:
	// connected to the first server
	// connected to the second server
}

// BeforeConnect runs before each connection attempt and may change the
// credentials: here a token that has expired when the first attempt is
// refused is renewed for the next.
func ExampleSessionOptions_beforeConnect() {
	b, err := broker.New(broker.Options{
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Authenticator: auth.NewStatic(false, map[string]string{"device-7": "token-2"}),
	})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go b.Serve(ln)
	defer b.Close()

	tokens := 0
	connected := make(chan struct{})
	s, err := client.NewSession(client.SessionOptions{
		Options: client.Options{Address: ln.Addr().String(), Version: packet.V5, ClientID: "device-7"},
		Backoff: client.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		BeforeConnect: func(ctx context.Context, o *client.Options) error {
			tokens++ // a real program fetches a fresh token here
			o.Username, o.UsernameSet = "device-7", true
			o.Password, o.PasswordSet = fmt.Appendf(nil, "token-%d", tokens), true
			fmt.Printf("attempt with %s\n", o.Password)
			return nil
		},
		OnConnectError: func(err error) {
			fmt.Println("refused, bad credentials:", errors.Is(err, packet.BadUsernameOrPassword))
		},
		OnConnect: func(*packet.Connack) { close(connected) },
	})
	if err != nil {
		panic(err)
	}
	<-connected
	fmt.Println("connected")
	s.Disconnect(context.Background())
	// Output:
	// attempt with token-1
	// refused, bad credentials: true
	// attempt with token-2
	// connected
}
