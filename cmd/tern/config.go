package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ternmq/tern/bridge"
	"github.com/ternmq/tern/listener"
	"github.com/ternmq/tern/webhook"
)

// Config is the YAML configuration file. Unknown keys are errors.
type Config struct {
	Listeners      []listener.Config `yaml:"listeners"`
	LogLevel       string            `yaml:"log_level"`  // debug, info, warn, error
	LogFormat      string            `yaml:"log_format"` // text or json
	AllowAnonymous *bool             `yaml:"allow_anonymous"`
	// Users is a plain user table (name: password), for tests and small
	// setups.
	Users   map[string]string `yaml:"users"`
	Limits  Limits            `yaml:"limits"`
	Retain  *bool             `yaml:"retain"` // retained messages available; default true
	MQTT    MQTT              `yaml:"mqtt"`
	Storage Storage           `yaml:"storage"`

	// Auth backends beside Users; buildAuth (auth.go) wires them.
	PasswordFile string    `yaml:"password_file"`
	ACLFile      string    `yaml:"acl_file"`
	HTTPAuth     *HTTPAuth `yaml:"http_auth"`

	Admin Admin `yaml:"admin"` // admin.go

	// Webhooks get broker events over HTTP (webhooks.go); read at start,
	// not on reload.
	Webhooks []webhook.Config `yaml:"webhooks"`

	// Bridges link this broker to others (package bridge); SIGHUP
	// applies changes, restarting only the bridges that changed.
	Bridges []bridge.Config `yaml:"bridges"`

	// Cluster joins this node to others that form one broker with it
	// (cluster.go); read at start.
	Cluster ClusterConfig `yaml:"cluster"`
	// clusterKey and clusterValue are the cluster section's nodes in the
	// file, for the lines of its errors.
	clusterKey, clusterValue *yaml.Node

	// SysInterval is how often the broker's counters are published under
	// $SYS/broker/; unset: every 10s; 0 or negative: never. Read at start.
	SysInterval *time.Duration `yaml:"sys_interval"`
}

// defaultSysInterval is the $SYS interval when the configuration sets
// none, Mosquitto's default.
const defaultSysInterval = 10 * time.Second

// sysInterval is the $SYS interval in force; 0: off.
func (c *Config) sysInterval() time.Duration {
	switch {
	case c.SysInterval == nil:
		return defaultSysInterval
	case *c.SysInterval < 0:
		return 0
	}
	return *c.SysInterval
}

// Storage says where and how durably broker state is kept.
type Storage struct {
	Persist      *bool         `yaml:"persist"`       // default true; false keeps everything in memory
	DataDir      string        `yaml:"data_dir"`      // default "data"
	Durability   string        `yaml:"durability"`    // sync (default), batch or none
	SyncInterval time.Duration `yaml:"sync_interval"` // with batch: how often to fsync; default 100ms
}

// MQTT switches protocol features and sets v5 flow-control values.
type MQTT struct {
	SharedSubscriptions     *bool  `yaml:"shared_subscriptions"`     // default true
	SharedStrategy          string `yaml:"shared_strategy"`          // round-robin, random, sticky, hash
	WildcardSubscriptions   *bool  `yaml:"wildcard_subscriptions"`   // default true
	SubscriptionIdentifiers *bool  `yaml:"subscription_identifiers"` // default true
	ReceiveMaximum          int    `yaml:"receive_maximum"`          // QoS 2 messages a v5 client may have unreleased
	TopicAliasMaximum       int    `yaml:"topic_alias_maximum"`      // aliases a v5 client may set up; -1: none
	ResponseInformation     string `yaml:"response_information"`     // offered to v5 clients that ask; %c: client id
}

// Limits bound what one client may cost.
type Limits struct {
	ConnectTimeout    time.Duration `yaml:"connect_timeout"`
	MaxKeepAlive      time.Duration `yaml:"max_keep_alive"`
	MaxPacketSize     uint32        `yaml:"max_packet_size"`
	MaxConnectSize    uint32        `yaml:"max_connect_size"`   // before CONNACK; 0: 64 KiB
	MaxPreAuthMemory  int64         `yaml:"max_preauth_memory"` // all connections before CONNACK; 0: 64 MiB
	MaxClientIDLength int           `yaml:"max_client_id_length"`
	MaxQueuedMessages int           `yaml:"max_queued_messages"`
	MaxQueuedBytes    int64         `yaml:"max_queued_bytes"`       // per session
	MaxQueuedTotal    int64         `yaml:"max_queued_bytes_total"` // all sessions together
	QueueFullPolicy   string        `yaml:"queue_full_policy"`      // drop-newest, drop-oldest or refuse
	MaxInflight       int           `yaml:"max_inflight"`
	MaxConnections    int           `yaml:"max_connections"`        // in total; 0: none
	MaxConnsPerIP     int           `yaml:"max_connections_per_ip"` // 0: none
	ConnectRatePerIP  int           `yaml:"connect_rate_per_ip"`    // new connections per second; 0: none
	// What any client can make the broker hold: 0 is the default, -1 none.
	MaxSubscriptions        int           `yaml:"max_subscriptions"`         // per client
	MaxFiltersPerSubscribe  int           `yaml:"max_filters_per_subscribe"` // in one SUBSCRIBE
	MaxTopicLevels          int           `yaml:"max_topic_levels"`
	MaxTopicLength          int           `yaml:"max_topic_length"` // bytes
	MaxRetained             int           `yaml:"max_retained_messages"`
	MaxRetainedBytes        int64         `yaml:"max_retained_bytes"`
	MaxSessionExpiry        time.Duration `yaml:"max_session_expiry"`        // v5 Session Expiry Interval cap
	PersistentSessionExpiry time.Duration `yaml:"persistent_session_expiry"` // 3.1.1 clean session 0
	MessageRate             int           `yaml:"message_rate"`              // PUBLISH per second per client; 0: none
	ByteRate                int           `yaml:"byte_rate"`                 // bytes per second per client; 0: none
	MaxWriteBuffer          int           `yaml:"max_write_buffer"`
	WriteTimeout            time.Duration `yaml:"write_timeout"`
}

// defaultConfig is what `tern serve` runs with no flags and no file: a
// broker reachable only from this machine.
func defaultConfig() Config {
	return Config{
		Listeners: []listener.Config{{Type: "tcp", Address: "127.0.0.1:1883"}},
		LogLevel:  "info",
		LogFormat: "text",
		Storage:   Storage{DataDir: "data"},
	}
}

// loadConfig reads path strictly over the defaults.
func loadConfig(path string, into *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var file Config
	if err := dec.Decode(&file); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) == nil {
		file.clusterKey, file.clusterValue = findCluster(&doc)
	}
	if file.Listeners == nil {
		file.Listeners = into.Listeners
	}
	if file.LogLevel == "" {
		file.LogLevel = into.LogLevel
	}
	if file.LogFormat == "" {
		file.LogFormat = into.LogFormat
	}
	if file.Storage.DataDir == "" {
		file.Storage.DataDir = into.Storage.DataDir
	}
	*into = file
	return nil
}
