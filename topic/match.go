package topic

import "strings"

// Match reports whether the topic filter matches the topic name. Both are
// assumed valid (ValidateFilter, ValidateName). filter is taken literally: for
// a shared subscription pass the inner filter from ParseShared.
//
// Comparison is byte for byte [MQTT-4.7.3-4]; '+' matches exactly one level,
// which may be empty; '#' matches the remaining levels, including none.
func Match(filter, name string) bool {
	// [MQTT-4.7.2-1] names starting with '$' are not matched by filters
	// starting with a wildcard.
	if len(name) > 0 && name[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	f, n := 0, 0 // start of the current level in filter and name
	for {
		fe := levelEnd(filter, f)
		fl := filter[f:fe]
		if fl == "#" {
			return true // the rest of the name, however many levels
		}
		ne := levelEnd(name, n)
		if fl != "+" && fl != name[n:ne] {
			return false
		}
		lastF, lastN := fe == len(filter), ne == len(name)
		switch {
		case lastF && lastN:
			return true
		case lastF:
			return false // the name has more levels
		case lastN:
			// The name ran out; only a final "#" matches the parent
			// level: "sport/#" matches "sport".
			return filter[fe+1:] == "#"
		}
		f, n = fe+1, ne+1
	}
}

// levelEnd returns the index of the '/' ending the level of s that starts at
// start, or len(s) for the last level. start must be <= len(s).
func levelEnd(s string, start int) int {
	if i := strings.IndexByte(s[start:], '/'); i >= 0 {
		return start + i
	}
	return len(s)
}
