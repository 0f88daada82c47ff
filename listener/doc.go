// Package listener opens the network listeners the broker accepts
// connections on. Each kind yields a plain net.Listener, so the broker does
// not care how the bytes arrive.
package listener
