package broker

import (
	"log/slog"
	"time"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/store"
)

// QueuePolicy says what happens to a QoS 1/2 message for a session whose
// queue is full.
type QueuePolicy uint8

const (
	DropNewest QueuePolicy = iota // the arriving message is dropped
	DropOldest                    // the oldest queued messages make room
	// RefusePublisher drops it too; when no session took the message, a
	// v5 publisher is told: Quota exceeded (0x97). When some took it, the
	// publisher is told success, so that a retry makes no duplicates.
	RefusePublisher
)

// QueueLimit bounds one session's queue; a zero field means the
// broker-wide value (Options.MaxQueued, MaxQueuedBytes, QueuePolicy).
type QueueLimit struct {
	MaxQueued      int
	MaxQueuedBytes int64
	Policy         *QueuePolicy
}

// Options configure a Broker. The zero value of each field means its
// default.
type Options struct {
	Logger        *slog.Logger
	Store         store.Store        // default: in-memory
	Authenticator auth.Authenticator // default: anonymous clients allowed
	Authorizer    auth.Authorizer    // default: everything allowed
	// EnhancedAuth are the v5 Authentication Methods offered (spec 4.12);
	// a CONNECT naming one is authenticated by it instead of by password.
	EnhancedAuth []auth.EnhancedAuthenticator
	// Hooks holds values implementing any of OnConnect, OnDisconnect,
	// OnPublish, OnSubscribe, OnUnsubscribe, OnDrop; they are sorted into
	// per-event lists once, in New.
	Hooks []any

	ConnectTimeout time.Duration // time allowed for CONNECT after accept; default 10s
	// MaxKeepAlive caps the keep alive a client may ask for (and replaces
	// 0, "none"); v5 clients are told with Server Keep Alive. 0: no cap.
	MaxKeepAlive      time.Duration
	MaxPacketSize     uint32 // largest packet accepted from a client; default 1 MiB
	MaxClientIDLength int    // 0: any length the protocol can carry
	MaxQueued         int    // messages queued per session; default 1000
	MaxQueuedBytes    int64  // bytes (topic and payload) queued per session; default 16 MiB
	// MaxQueuedBytesTotal bounds the queues of all sessions together;
	// default 1 GiB.
	MaxQueuedBytesTotal int64
	QueuePolicy         QueuePolicy // when a queue limit is reached
	// QueueLimits replaces MaxQueued, MaxQueuedBytes and QueuePolicy for
	// the sessions of the client ids it names (a bridge's local session,
	// which may hold hours of messages while its remote is away).
	// MaxQueuedBytesTotal still applies to them.
	QueueLimits map[string]QueueLimit
	// ExpirySweep is how often expired messages are removed from queues
	// and the retained set; default 1 minute.
	ExpirySweep time.Duration
	MaxInflight int // unacknowledged QoS 1/2 messages sent to one client; default 100

	// Connection limits, checked before anything is read; 0: none.
	MaxConnections      int // in total
	MaxConnectionsPerIP int
	ConnectRatePerIP    int // new connections per second from one address
	// MaxConnectSize is the largest packet accepted before CONNACK (the
	// CONNECT, v5 AUTH during enhanced authentication), from a client not
	// yet authenticated; default 64 KiB: room for credentials and a will
	// of tens of KB, far below what a stranger should make the broker
	// hold. MaxPacketSize applies too when smaller.
	MaxConnectSize uint32
	// MaxPreAuthMemory bounds the bytes of CONNECT and AUTH bodies being
	// read before CONNACK by all connections together: a connection
	// whose declared packet does not fit in what is left is closed.
	// Default 64 MiB, a thousand half-sent CONNECTs of the default
	// maximum size.
	MaxPreAuthMemory int64

	// Bounds on what any client, authenticated or not, can make the
	// broker hold. 0: the default; negative: none (beyond the protocol's).
	MaxSubscriptions       int   // filters one session may hold (SUBACK 0x97 / 0x80 beyond); default 1000
	MaxFiltersPerSubscribe int   // filters in one SUBSCRIBE; those beyond get SUBACK 0x97 / 0x80; default 100
	MaxTopicLevels         int   // levels in a topic name or filter; default 128
	MaxTopicLength         int   // bytes in a topic name or filter; default 4096
	MaxRetained            int   // retained messages in all; default 1,000,000
	MaxRetainedBytes       int64 // retained topics, payloads and index together; default 256 MiB
	// MaxSessionExpiry caps the v5 Session Expiry Interval (the client is
	// told in CONNACK); default 7 days.
	MaxSessionExpiry time.Duration
	// PersistentSessionExpiry is how long a 3.1.1 session with clean
	// session 0 outlives its connection; default 7 days.
	PersistentSessionExpiry time.Duration
	// 0: none.
	MessageRate int // PUBLISH packets per second a client may send; faster ones are read more slowly
	ByteRate    int // bytes per second a client may send; likewise
	// ReceiveMaximum is how many QoS 2 messages a v5 client may have
	// unreleased (PUBREC sent, PUBREL pending) at once; default 1024.
	ReceiveMaximum int
	// TopicAliasMaximum is how many topic aliases a v5 client may set up
	// towards the server; default 64, negative: none.
	TopicAliasMaximum int
	MaxWriteBuffer    int           // bytes buffered for one client before QoS 0 is dropped; default 1 MiB
	WriteTimeout      time.Duration // a client that accepts no data for this long is dropped; default 30s
	// ResponseInformation is sent to v5 clients that request it, as the
	// base of their response topics; %c becomes the client id. Empty:
	// none is offered.
	ResponseInformation string
	DisableRetain       bool
	DisableShared       bool // refuse $share subscriptions (SUBACK 0x9E)
	DisableWildcards    bool // refuse filters with + or # (SUBACK 0xA2)
	DisableSubIDs       bool // refuse v5 Subscription Identifiers (SUBACK 0xA1)
	SharedStrategy      SharedStrategy
	// Observer, if not nil, is told the latency of deliveries (see
	// Observer.DeliveryLatency); nil costs nothing on the delivery path.
	Observer Observer
	// Cluster, if not nil, joins the broker to other nodes (package
	// cluster); nil: a single node, and no cluster code runs.
	Cluster Cluster
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Authenticator == nil {
		o.Authenticator = auth.NewStatic(true, nil)
	}
	if o.Authorizer == nil {
		o.Authorizer = auth.AllowAll{}
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MaxPacketSize == 0 {
		o.MaxPacketSize = 1 << 20
	}
	if o.Cluster != nil {
		// A message the cluster cannot carry would be acknowledged and
		// never delivered: refuse the packet instead [MQTT-3.2.2-15].
		o.MaxPacketSize = min(o.MaxPacketSize, o.Cluster.MaxMessageSize())
	}
	if o.MaxConnectSize == 0 {
		o.MaxConnectSize = 64 << 10
	}
	if o.MaxPreAuthMemory <= 0 {
		o.MaxPreAuthMemory = 64 << 20
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 1000
	}
	if o.ExpirySweep <= 0 {
		o.ExpirySweep = time.Minute
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = 16 << 20
	}
	if o.MaxQueuedBytesTotal <= 0 {
		o.MaxQueuedBytesTotal = 1 << 30
	}
	if o.MaxInflight <= 0 || o.MaxInflight > 65535 {
		o.MaxInflight = 100
	}
	if o.ReceiveMaximum <= 0 || o.ReceiveMaximum > 65535 {
		o.ReceiveMaximum = 1024
	}
	if o.TopicAliasMaximum == 0 || o.TopicAliasMaximum > 65535 {
		o.TopicAliasMaximum = 64
	}
	if o.MaxWriteBuffer <= 0 {
		o.MaxWriteBuffer = 1 << 20
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	defaultTo(&o.MaxSubscriptions, 1000)
	defaultTo(&o.MaxFiltersPerSubscribe, 100)
	defaultTo(&o.MaxTopicLevels, 128)
	defaultTo(&o.MaxTopicLength, 4096)
	defaultTo(&o.MaxRetained, 1_000_000)
	defaultTo(&o.MaxRetainedBytes, 256<<20)
	defaultTo(&o.MaxSessionExpiry, 7*24*time.Hour)
	defaultTo(&o.PersistentSessionExpiry, 7*24*time.Hour)
}

// defaultTo sets a limit left at 0 to def; a negative one stays, meaning
// none.
func defaultTo[T int | int64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// limit returns a limit for checks that treat 0 as none.
func limit[T int | int64](v T) T { return max(v, 0) }

// opts returns the options in force.
func (b *Broker) opts() *Options { return b.options.Load() }

// Reload puts new options in force without dropping anyone: limits, the
// Authenticator, Authorizer and EnhancedAuth. Each connection sees them
// at its next check (a re-authentication uses the new EnhancedAuth);
// what its CONNACK announced (Maximum Packet Size, Receive Maximum, Topic
// Alias Maximum, keep alive and the feature switches) holds for that
// connection and changes for new ones. Logger, Store, Hooks and
// SharedStrategy, Observer and Cluster are fixed by New and keep their values.
func (b *Broker) Reload(o Options) {
	old := b.opts()
	o.Logger, o.Store, o.Hooks, o.SharedStrategy = old.Logger, old.Store, old.Hooks, old.SharedStrategy
	o.Observer, o.Cluster = old.Observer, old.Cluster
	o.setDefaults()
	b.options.Store(&o)
}
