package topic

import "strings"

// SharePrefix starts every shared subscription filter [MQTT-4.8.2-1].
const SharePrefix = "$share/"

// isShared reports whether filter claims to be a shared subscription.
func isShared(filter string) bool {
	return strings.HasPrefix(filter, SharePrefix)
}

// ParseShared splits a shared subscription filter "$share/{group}/{filter}"
// into its group name and inner filter. ok is false when filter does not have
// that shape (no "$share/" prefix, or no '/' after the group). It does not
// validate group or inner; ValidateFilter does.
func ParseShared(filter string) (group, inner string, ok bool) {
	if !isShared(filter) {
		return "", "", false
	}
	rest := filter[len(SharePrefix):]
	group, inner, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", false
	}
	return group, inner, true
}
