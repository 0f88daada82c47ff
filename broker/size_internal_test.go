package broker

import (
	"testing"
	"unsafe"
)

// TestIdleSizes guards the size of what every connection holds, idle or
// not: each is just within a size class of the allocator, so a field
// more moves it to the next (conn 288 bytes, session 208).
func TestIdleSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		size, max uintptr
	}{
		{"conn", unsafe.Sizeof(conn{}), 288},
		{"session", unsafe.Sizeof(session{}), 208},
	} {
		if c.size > c.max {
			t.Errorf("%s is %d bytes, more than %d", c.name, c.size, c.max)
		}
	}
}
