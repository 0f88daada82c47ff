package listener

import "testing"

// SetDefaultProxyTrusted makes ranges the upstreams trusted when
// proxy_trusted is empty, until t ends.
func SetDefaultProxyTrusted(t testing.TB, ranges []string) {
	old := defaultProxyTrusted
	defaultProxyTrusted = ranges
	t.Cleanup(func() { defaultProxyTrusted = old })
}
