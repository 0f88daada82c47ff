package topic

import "errors"

// Validation errors. ValidateName, ValidateFilter and Limits.Check wrap them
// with context (position, lengths, a prefix of the offending string); test
// with errors.Is.
var (
	// ErrEmpty: a name or filter must be at least one character long [MQTT-4.7.3-1].
	ErrEmpty = errors.New("topic: empty")
	// ErrTooLong: longer than 65535 bytes [MQTT-4.7.3-3], or than Limits.MaxLength.
	ErrTooLong = errors.New("topic: too long")
	// ErrTooManyLevels: more levels than Limits.MaxLevels.
	ErrTooManyLevels = errors.New("topic: too many levels")
	// ErrNullChar: contains U+0000 [MQTT-4.7.3-2].
	ErrNullChar = errors.New("topic: contains U+0000")
	// ErrInvalidUTF8: not well-formed UTF-8, which includes encoded
	// surrogates U+D800..U+DFFF [MQTT-1.5.3-1] (v5: [MQTT-1.5.4-1]).
	ErrInvalidUTF8 = errors.New("topic: invalid UTF-8")
	// ErrWildcardInName: a topic name contains '+' or '#' [MQTT-3.3.2-2].
	ErrWildcardInName = errors.New("topic: wildcard in topic name")
	// ErrInvalidWildcard: '+' not alone in its level [MQTT-4.7.1-3], or '#'
	// not alone in the last level [MQTT-4.7.1-2].
	ErrInvalidWildcard = errors.New("topic: misplaced wildcard")
	// ErrInvalidShare: a "$share/" filter without a valid group name or
	// without a filter after it [MQTT-4.8.2-1] [MQTT-4.8.2-2].
	ErrInvalidShare = errors.New("topic: invalid shared subscription filter")
)

// errContextLen bounds how much of an offending string goes into an error:
// a topic can be 64 KiB and errors end up in logs.
const errContextLen = 64

// excerpt returns s, or its first errContextLen bytes followed by "...".
func excerpt(s string) string {
	if len(s) <= errContextLen {
		return s
	}
	return s[:errContextLen] + "..."
}
