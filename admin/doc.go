// Package admin is what operators see of a running broker: the HTTP
// server (health, Prometheus metrics, REST API, dashboard) and the $SYS
// publisher, which puts the broker's counters under $SYS/broker/... as
// retained messages with Mosquitto's topic names. It sees the broker only
// through small interfaces of its own (SysSource), so that tests drive it
// with fakes.
package admin
