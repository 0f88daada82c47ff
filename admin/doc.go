// Package admin is what operators see of a running broker: the HTTP
// server (health and readiness probes, Prometheus metrics, a JSON REST API
// under /api/v1/ and the embedded web dashboard at /) and the $SYS
// publisher, which puts the broker's counters under $SYS/broker/... as
// retained messages with Mosquitto's topic names.
//
// It sees the broker only through small interfaces of its own (Broker,
// SysSource), so its tests run against fakes and the broker does not know
// about HTTP.
//
// # Access
//
// /healthz, /readyz and the dashboard's static files are open to anyone
// who can reach the server: they tell nothing but "up" and carry no data.
// Everything else (/metrics, /api/...) needs credentials, with one
// exception: a server bound to a loopback address lets requests without
// credentials read (GET, HEAD) but not change anything (401). A server
// bound to any other address refuses to start without credentials
// configured. Credentials are "Authorization: Bearer <token>" or HTTP
// Basic for a user of the password file who is listed as an admin; a
// valid user who is not an admin gets 403.
//
// # Errors
//
// Every error of the API is JSON, {"error": "..."}, with a 4xx status for
// anything the request got wrong (unknown client: 404, bad paging or body:
// 400, state conflict: 409). A 5xx means the broker failed, never that
// the input was bad.
//
// docs/openapi.yaml describes every endpoint; a test keeps it and the
// routes in step.
package admin
