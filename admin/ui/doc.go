// Package ui is the web dashboard: static files (HTML, CSS and plain
// JavaScript modules, no framework and no build step) that the admin HTTP
// server serves at "/" and that talk to its REST API under /api/v1/ and,
// for the subscribe panel, MQTT over WebSocket to a ws/wss listener.
package ui
