package webhook_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/client"
	"github.com/ternmq/tern/packet"
	"github.com/ternmq/tern/webhook"
)

// auditHook writes every message published under audit/ to a database,
// through the same hook interfaces a Webhook implements.
//
// OnPublish runs on the publisher's connection, after authorization and
// before the message is routed and acknowledged: when it returns, the row
// is written, and an error refuses the message (a v5 publisher reads
// why in its PUBACK). A slow database slows that publisher only. For
// fire-and-forget instead, queue the row and write it elsewhere, as
// Webhook does with its events.
type auditHook struct {
	db *sql.DB
}

var _ broker.OnPublish = (*auditHook)(nil)

func (h *auditHook) OnPublish(c *auth.Client, m *broker.Message) error {
	if !strings.HasPrefix(m.Topic, "audit/") {
		return nil
	}
	_, err := h.db.Exec("INSERT INTO messages (client_id, topic, payload) VALUES (?, ?, ?)",
		c.ClientID, m.Topic, m.Payload)
	return err
}

// Example_databaseHook stores published messages in a database with a
// broker.OnPublish hook.
func Example_databaseHook() {
	sql.Register("memdb", &memDriver{})
	db, err := sql.Open("memdb", "")
	if err != nil {
		log.Fatal(err)
	}
	b, err := broker.New(broker.Options{
		Hooks:  []any{&auditHook{db: db}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go b.Serve(ln)

	ctx := context.Background()
	c, err := client.Connect(ctx, client.Options{Address: ln.Addr().String(), ClientID: "door-7", CleanStart: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range []*packet.Publish{
		{Topic: "audit/door", QoS: 1, Payload: []byte("opened")},
		{Topic: "telemetry/temp", QoS: 1, Payload: []byte("21.5")}, // not audited
		{Topic: "audit/door", QoS: 1, Payload: []byte("closed")},
	} {
		// QoS 1: Publish returns on PUBACK, after the hook has run.
		if err := c.Publish(ctx, p); err != nil {
			log.Fatal(err)
		}
	}
	c.Disconnect()

	rows, err := db.Query("SELECT client_id, topic, payload FROM messages")
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, topic string
		var payload []byte
		if err := rows.Scan(&id, &topic, &payload); err != nil {
			log.Fatal(err)
		}
		fmt.Println(id, topic, string(payload))
	}
	// Output:
	// door-7 audit/door opened
	// door-7 audit/door closed
}

// ExampleNew sends client and message events to an HTTP receiver.
func ExampleNew() {
	w, err := webhook.New(webhook.Config{
		URL:     "https://hooks.example/mqtt",
		Events:  []string{webhook.ClientConnected, webhook.MessagePublished},
		Topics:  []string{"sensors/#"},
		Headers: map[string]string{"Authorization": "Bearer ..."},
	}, webhook.Options{Node: "edge-1"})
	if err != nil {
		log.Fatal(err)
	}
	b, err := broker.New(broker.Options{Hooks: []any{w}})
	if err != nil {
		log.Fatal(err)
	}
	// ... b.Serve(listener) ...
	b.Close()
	// After the broker: its last events (client.disconnected) go out too.
	w.Close(context.Background())
	fmt.Printf("%+v\n", w.Stats())
	// Output:
	// {Sent:0 Failed:0 Dropped:0 Retried:0 Queued:0}
}

// memDriver is a database/sql driver holding one table, messages, in
// memory: just enough for the example.
type memDriver struct {
	mu   sync.Mutex
	rows [][]driver.Value
}

func (d *memDriver) Open(string) (driver.Conn, error) { return memConn{d}, nil }

type memConn struct{ d *memDriver }

func (c memConn) Prepare(q string) (driver.Stmt, error) { return memStmt{c.d, q}, nil }
func (c memConn) Close() error                          { return nil }
func (c memConn) Begin() (driver.Tx, error)             { return nil, errors.New("memdb: no transactions") }

type memStmt struct {
	d *memDriver
	q string
}

func (s memStmt) Close() error  { return nil }
func (s memStmt) NumInput() int { return -1 }

func (s memStmt) Exec(args []driver.Value) (driver.Result, error) {
	if !strings.HasPrefix(s.q, "INSERT INTO messages ") || len(args) != 3 {
		return nil, fmt.Errorf("memdb: cannot run %q", s.q)
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.rows = append(s.d.rows, args)
	return driver.RowsAffected(1), nil
}

func (s memStmt) Query([]driver.Value) (driver.Rows, error) {
	if !strings.HasPrefix(s.q, "SELECT client_id, topic, payload FROM messages") {
		return nil, fmt.Errorf("memdb: cannot run %q", s.q)
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	return &memRows{rows: append([][]driver.Value(nil), s.d.rows...)}, nil
}

type memRows struct{ rows [][]driver.Value }

func (r *memRows) Columns() []string { return []string{"client_id", "topic", "payload"} }
func (r *memRows) Close() error      { return nil }
func (r *memRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	copy(dest, r.rows[0])
	r.rows = r.rows[1:]
	return nil
}
