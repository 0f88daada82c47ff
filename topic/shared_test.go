package topic

import "testing"

// Checks [MQTT-4.8.2-1] [MQTT-4.8.2-2].
func TestParseShared(t *testing.T) {
	tests := []struct {
		filter       string
		group, inner string
		ok           bool
	}{
		{"$share/consumer1/sport/tennis/+", "consumer1", "sport/tennis/+", true},
		{"$share/consumer2/sport/tennis/+", "consumer2", "sport/tennis/+", true},
		{"$share/consumer1//finance", "consumer1", "/finance", true},
		{"$share/g/#", "g", "#", true},
		{"$share/g/$share/h/x", "g", "$share/h/x", true},
		{"$share//a", "", "a", true}, // shape only; ValidateFilter rejects it
		{"$share/g/", "g", "", true},
		{"$share/g", "", "", false},
		{"$share/", "", "", false},
		{"$share", "", "", false},
		{"$SHARE/g/a", "", "", false}, // case-sensitive
		{"sport/tennis", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		g, in, ok := ParseShared(tt.filter)
		if g != tt.group || in != tt.inner || ok != tt.ok {
			t.Errorf("ParseShared(%q) = %q, %q, %v; want %q, %q, %v", tt.filter, g, in, ok, tt.group, tt.inner, tt.ok)
		}
	}
}
