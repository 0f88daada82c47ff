package topic

import "testing"

// matchTests are the examples of spec section 4.7 (both versions) plus edge
// cases. The trie tests reuse them.
var matchTests = []struct {
	filter, name string
	want         bool
}{
	// 4.7.1.2 multi-level wildcard.
	{"sport/tennis/player1/#", "sport/tennis/player1", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"sport/tennis/player1/#", "sport/tennis/player2", false},
	{"sport/tennis/player1/#", "sport/tennis", false},
	{"sport/#", "sport", true}, // '#' includes the parent level
	{"sport/#", "sport/", true},
	{"sport/#", "sports", false},
	{"#", "sport", true},
	{"#", "/", true},
	{"#", "a/b/c", true},
	{"sport/tennis/#", "sport/tennis/player1", true},
	{"+/#", "a", true},
	{"+/#", "a/b/c", true},
	{"/#", "/", true},
	{"/#", "a", false},

	// 4.7.1.3 single-level wildcard.
	{"sport/tennis/+", "sport/tennis/player1", true},
	{"sport/tennis/+", "sport/tennis/player2", true},
	{"sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"sport/tennis/+", "sport/tennis", false},
	{"sport/+", "sport", false},
	{"sport/+", "sport/", true}, // '+' matches an empty level
	{"+", "sport", true},
	{"+", "/finance", false},
	{"+/+", "/finance", true},
	{"/+", "/finance", true},
	{"+/tennis/#", "sport/tennis/player1", true},
	{"+/tennis/#", "sport/tennis", true},
	{"+/tennis/#", "sport/golf", false},
	{"sport/+/player1", "sport/tennis/player1", true},
	{"sport/+/player1", "sport//player1", true},
	{"sport/+/player1", "sport/tennis/player2", false},
	{"+/+", "/", true},
	{"+", "/", false},
	{"+/+/+", "a/b", false},

	// 4.7.2 topics beginning with '$' [MQTT-4.7.2-1].
	{"#", "$SYS/monitor/Clients", false},
	{"#", "$SYS", false},
	{"+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"+", "$SYS", false},
	{"$SYS/#", "$SYS/monitor/Clients", true},
	{"$SYS/#", "$SYS", true},
	{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"$SYS/+/Clients", "$SYS/monitor/Clients", true},
	{"a/#", "a/$x", true}, // only the first level is special
	{"a/+", "a/$x", true},

	// 4.7.3 literal, case-sensitive, byte-for-byte [MQTT-4.7.3-4].
	{"ACCOUNTS", "ACCOUNTS", true},
	{"ACCOUNTS", "Accounts", false},
	{"Accounts payable", "Accounts payable", true},
	{"/finance", "/finance", true},
	{"/finance", "finance", false},
	{"finance", "/finance", false},
	{"/", "/", true},
	{"a/b", "a/b/c", false},
	{"a/b/c", "a/b", false},
	{"a/b", "a/bc", false},
	{"a//b", "a//b", true},
	{"a//b", "a/b", false},
}

func TestMatch(t *testing.T) {
	for _, tt := range matchTests {
		if got := Match(tt.filter, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.name, got, tt.want)
		}
	}
	// Match takes a shared filter literally.
	if !Match("$share/g/a", "$share/g/a") || Match("$share/g/a", "a") {
		t.Error("Match must not interpret $share/")
	}
}
