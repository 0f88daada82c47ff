// Package mqtttest is the test harness: a broker on 127.0.0.1:0, a raw
// packet client for scripting what well-behaved client libraries never
// send, Eventually for asynchronous conditions, and Versions to run one
// behaviour test for every protocol level it applies to.
package mqtttest
