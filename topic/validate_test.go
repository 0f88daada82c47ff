package topic

import (
	"errors"
	"strings"
	"testing"
)

// Checks [MQTT-4.7.0-1] [MQTT-4.7.1-1].
func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		want error
	}{
		// Spec section 4.7.3 examples.
		{"sport/tennis/player1", nil},
		{"ACCOUNTS", nil},
		{"Accounts payable", nil}, // spaces are allowed
		{"/", nil},                // two empty levels
		{"/finance", nil},
		{"finance", nil},
		{"$SYS/monitor/Clients", nil},
		{"sport//tennis", nil},
		{"日本/東京", nil},
		{strings.Repeat("a", 65535), nil},

		{"", ErrEmpty}, // [MQTT-4.7.3-1]
		{strings.Repeat("a", 65536), ErrTooLong},
		{"a\x00b", ErrNullChar},
		{"sport/+", ErrWildcardInName}, // [MQTT-3.3.2-2]
		{"sport/#", ErrWildcardInName},
		{"#", ErrWildcardInName},
		{"a+b", ErrWildcardInName},
		{"a\xffb", ErrInvalidUTF8},
		{"\xed\xa0\x80", ErrInvalidUTF8}, // encoded surrogate U+D800
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("ValidateName(%q) = %v, want %v", excerpt(tt.name), err, tt.want)
		}
	}
}

// Checks [MQTT-4.7.1-1].
func TestValidateFilter(t *testing.T) {
	tests := []struct {
		filter string
		want   error
	}{
		// Spec section 4.7.1 examples.
		{"sport/tennis/player1/#", nil},
		{"sport/#", nil},
		{"#", nil},
		{"sport/tennis/#", nil},
		{"+", nil},
		{"+/tennis/#", nil},
		{"sport/+/player1", nil},
		{"+/+", nil},
		{"/+", nil},
		{"sport/tennis/+", nil},
		{"$SYS/#", nil},
		{"$SYS/monitor/+", nil},
		{"+/monitor/Clients", nil},
		{"/", nil},
		{"+/#", nil},
		{"//#", nil},
		{"$share", nil},       // not "$share/": a plain filter
		{"$sharex/g/a", nil},  // likewise
		{"a/$share/g/b", nil}, // likewise
		{"$share/g/#", nil},   // v5 section 4.8.2
		{"$share/consumer1/sport/tennis/+", nil},
		{"$share/consumer1//finance", nil}, // inner filter "/finance"
		{"$share/g/$share/h/x", nil},       // inner filter is the literal "$share/h/x"
		{"$share/g/+", nil},
		{strings.Repeat("a", 65535), nil},

		{"", ErrEmpty},
		{strings.Repeat("a", 65536), ErrTooLong},
		{"$share/g/" + strings.Repeat("a", 65535), ErrTooLong},
		{"a/\x00", ErrNullChar},
		{"a/\xc3", ErrInvalidUTF8},
		{"sport/tennis#", ErrInvalidWildcard},          // [MQTT-4.7.1-2]
		{"sport/tennis/#/ranking", ErrInvalidWildcard}, // [MQTT-4.7.1-2]
		{"##", ErrInvalidWildcard},
		{"#/", ErrInvalidWildcard},
		{"sport+", ErrInvalidWildcard}, // [MQTT-4.7.1-3]
		{"+sport", ErrInvalidWildcard},
		{"sport/+tennis", ErrInvalidWildcard},
		{"++", ErrInvalidWildcard},
		{"$share/g/a+", ErrInvalidWildcard},
		{"$share/", ErrInvalidShare},   // [MQTT-4.8.2-1]
		{"$share/g", ErrInvalidShare},  // [MQTT-4.8.2-2] no '/' after the group
		{"$share/g/", ErrInvalidShare}, // no filter after it
		{"$share//a", ErrInvalidShare}, // empty group
		{"$share/g+/a", ErrInvalidShare},
		{"$share/+/a", ErrInvalidShare},
		{"$share/#/a", ErrInvalidShare},
		{"$share/g\x00/a", ErrNullChar},
	}
	for _, tt := range tests {
		err := ValidateFilter(tt.filter)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("ValidateFilter(%q) = %v, want %v", excerpt(tt.filter), err, tt.want)
		}
	}
}

func TestErrorContextIsBounded(t *testing.T) {
	err := ValidateName(strings.Repeat("a", 1000) + "+")
	if !errors.Is(err, ErrWildcardInName) {
		t.Fatalf("err = %v", err)
	}
	if len(err.Error()) > 200 {
		t.Errorf("error message is %d bytes, want a bounded excerpt", len(err.Error()))
	}
}

func TestHasWildcard(t *testing.T) {
	tests := []struct {
		filter string
		want   bool
	}{
		{"a/b", false},
		{"/", false},
		{"$share/g/a", false},
		{"a/+", true},
		{"#", true},
		{"$share/g/a/#", true},
	}
	for _, tt := range tests {
		if got := HasWildcard(tt.filter); got != tt.want {
			t.Errorf("HasWildcard(%q) = %v, want %v", tt.filter, got, tt.want)
		}
	}
}

func TestLimitsCheck(t *testing.T) {
	tests := []struct {
		limits Limits
		s      string
		want   error
	}{
		{Limits{}, strings.Repeat("a/", 1000), nil},
		{Limits{MaxLevels: 3}, "a/b/c", nil},
		{Limits{MaxLevels: 3}, "a/b/c/d", ErrTooManyLevels},
		{Limits{MaxLevels: 2}, "/", nil},
		{Limits{MaxLevels: 1}, "/", ErrTooManyLevels},
		{Limits{MaxLevels: 2}, "$share/g/a/b", nil}, // counts the inner filter
		{Limits{MaxLevels: 2}, "$share/g/a/b/c", ErrTooManyLevels},
		{Limits{MaxLength: 5}, "abcde", nil},
		{Limits{MaxLength: 5}, "abcdef", ErrTooLong},
		{Limits{MaxLength: 10}, "$share/g/a", nil}, // counts the whole string
		{Limits{MaxLength: 9}, "$share/g/a", ErrTooLong},
	}
	for _, tt := range tests {
		err := tt.limits.Check(tt.s)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%+v.Check(%q) = %v, want %v", tt.limits, excerpt(tt.s), err, tt.want)
		}
	}
}
