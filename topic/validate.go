package topic

import (
	"fmt"
	"unicode/utf8"
)

// maxLen is the protocol limit: names and filters are UTF-8 strings with a
// two-byte length prefix [MQTT-4.7.3-3].
const maxLen = 65535

// ValidateName reports whether name is a valid topic name for PUBLISH.
// Errors wrap ErrEmpty, ErrTooLong, ErrNullChar, ErrInvalidUTF8 or
// ErrWildcardInName.
func ValidateName(name string) error {
	return check(name, false)
}

// ValidateFilter reports whether filter is a valid topic filter for
// SUBSCRIBE or UNSUBSCRIBE, including shared filters "$share/{group}/{filter}".
// Errors wrap ErrEmpty, ErrTooLong, ErrNullChar, ErrInvalidUTF8,
// ErrInvalidWildcard or ErrInvalidShare.
func ValidateFilter(filter string) error {
	if len(filter) > maxLen {
		return fmt.Errorf("%w: %d bytes, max %d", ErrTooLong, len(filter), maxLen)
	}
	if !isShared(filter) {
		return check(filter, true)
	}
	group, inner, ok := ParseShared(filter)
	// [MQTT-4.8.2-1] a ShareName at least one character long;
	// [MQTT-4.8.2-2] followed by '/' and then a topic filter.
	if !ok || group == "" || inner == "" {
		return fmt.Errorf("%w: want $share/{group}/{filter}, got %q", ErrInvalidShare, excerpt(filter))
	}
	// [MQTT-4.8.2-2] the ShareName must not contain '/', '+' or '#'
	// ('/' cannot occur: the group ends at the first '/').
	for i := 0; i < len(group); i++ {
		if group[i] == '+' || group[i] == '#' {
			return fmt.Errorf("%w: wildcard in group name %q", ErrInvalidShare, excerpt(group))
		}
	}
	if err := check(group, false); err != nil {
		return fmt.Errorf("share group: %w", err)
	}
	// The inner filter is a plain filter: "$share/a/$share/b/c" shares the
	// literal filter "$share/b/c".
	if err := check(inner, true); err != nil {
		return fmt.Errorf("shared filter: %w", err)
	}
	return nil
}

// special marks the bytes check must look at; the rest are skipped with one
// table lookup, which keeps validation of ordinary topics a tight loop.
var special = func() (t [256]bool) {
	for _, c := range []byte{0, '/', '+', '#'} {
		t[c] = true
	}
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = true
	}
	return t
}()

// check validates s as a filter (wildcards allowed in whole levels) or as a
// name (no wildcards), in one pass over the bytes.
func check(s string, filter bool) error {
	if len(s) == 0 {
		return ErrEmpty // [MQTT-4.7.3-1]
	}
	if len(s) > maxLen {
		return fmt.Errorf("%w: %d bytes, max %d", ErrTooLong, len(s), maxLen) // [MQTT-4.7.3-3]
	}
	level := 0 // start of the current level
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !special[c] {
			continue
		}
		switch c {
		case '/':
			level = i + 1
		case 0:
			// [MQTT-4.7.3-2] no U+0000 in names or filters.
			return fmt.Errorf("%w: at byte %d of %q", ErrNullChar, i, excerpt(s))
		case '+':
			if !filter {
				return fmt.Errorf("%w: '+' at byte %d of %q", ErrWildcardInName, i, excerpt(s)) // [MQTT-3.3.2-2]
			}
			// [MQTT-4.7.1-3] '+' must occupy an entire level.
			if i != level || (i+1 < len(s) && s[i+1] != '/') {
				return fmt.Errorf("%w: '+' not alone in its level at byte %d of %q", ErrInvalidWildcard, i, excerpt(s))
			}
		case '#':
			if !filter {
				return fmt.Errorf("%w: '#' at byte %d of %q", ErrWildcardInName, i, excerpt(s)) // [MQTT-3.3.2-2]
			}
			// [MQTT-4.7.1-2] '#' must be last and alone in its level.
			if i != level || i != len(s)-1 {
				return fmt.Errorf("%w: '#' not alone in the last level at byte %d of %q", ErrInvalidWildcard, i, excerpt(s))
			}
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
		}
	}
	// The codec checks UTF-8 too; here it costs one more pass only for
	// non-ASCII topics. [MQTT-1.5.3-1] well-formed, no surrogates
	// (utf8.ValidString rejects encoded surrogates).
	if !ascii && !utf8.ValidString(s) {
		return fmt.Errorf("%w: %q", ErrInvalidUTF8, excerpt(s))
	}
	return nil
}

// HasWildcard reports whether filter contains '+' or '#'. For a valid
// filter that means it can match more than one topic name.
func HasWildcard(filter string) bool {
	for i := 0; i < len(filter); i++ {
		if filter[i] == '+' || filter[i] == '#' {
			return true
		}
	}
	return false
}
