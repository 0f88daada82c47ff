package topic

import (
	"fmt"
	"strings"
)

// Limits are configurable bounds on names and filters, stricter than the
// protocol's. A zero field means unlimited (the protocol's 65535-byte limit
// still applies through ValidateName and ValidateFilter).
type Limits struct {
	// MaxLevels bounds the number of levels ("a/b/c" has 3, "/" has 2). For
	// a shared filter it counts the levels of the inner filter, which is
	// what determines the depth of the trie.
	MaxLevels int
	// MaxLength bounds the length in bytes of the whole string, "$share/"
	// prefix and group included.
	MaxLength int
}

// Check reports whether s (a name or a filter) is within l. Errors wrap
// ErrTooLong or ErrTooManyLevels.
func (l Limits) Check(s string) error {
	if l.MaxLength > 0 && len(s) > l.MaxLength {
		return fmt.Errorf("%w: %d bytes, max %d", ErrTooLong, len(s), l.MaxLength)
	}
	if l.MaxLevels > 0 {
		if _, inner, ok := ParseShared(s); ok {
			s = inner
		}
		if n := strings.Count(s, "/") + 1; n > l.MaxLevels {
			return fmt.Errorf("%w: %d levels, max %d", ErrTooManyLevels, n, l.MaxLevels)
		}
	}
	return nil
}
