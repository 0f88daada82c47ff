package file

import (
	"testing"

	"github.com/ternmq/tern/topic"
)

func TestCovers(t *testing.T) {
	cases := []struct {
		filter, sub string
		want        bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/#", "a/+/b", true},
		{"a/#", "a/#", true},
		{"a/#", "a", true}, // "a/#" matches the parent level
		{"a/#", "a/b/c/d", true},
		{"a/+", "a/#", false}, // "a/#" also matches a/b/c
		{"a/+", "a/+", true},
		{"a/+", "a/b", true},
		{"a/+", "a", false},
		{"a/+", "a/b/c", false},
		{"a/b", "a/+", false},
		{"a/+/c", "a/+/c", true},
		{"a/+/c", "a/b/+", false},
		{"+/+", "a/+", true},
		{"+/#", "a", true}, // "+/#" matches "a" through its parent rule
		{"+", "a/b", false},
		{"#", "#", true},
		{"#", "a/+/#", true},
		{"a", "a/#", false}, // the sub also matches a/b
		{"a/b/#", "a/#", false},
		{"/a", "/a", true}, // empty levels are levels
		{"+/a", "/a", true},
		{"a//b", "a/+/b", false},
		{"a/+/b", "a//b", true},
		// [MQTT-4.7.2-1] a leading wildcard grants no '$' topics.
		{"#", "$SYS/#", false},
		{"#", "$SYS/broker", false},
		{"+/broker", "$SYS/broker", false},
		{"$SYS/#", "$SYS/broker/+", true},
		{"$SYS/#", "$SYS", true},
		{"$SYS/+", "$SYS/#", false},
		{"#", "+/broker", true}, // "+" never matches '$' names either
		// Shared subscriptions are judged by their filter.
		{"a/#", "$share/g/a/b", true},
		{"a/b", "$share/g/a/#", false},
		{"#", "$share/g/#", true},
	}
	for _, tc := range cases {
		if got := Covers(tc.filter, tc.sub); got != tc.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tc.filter, tc.sub, got, tc.want)
		}
	}
}

// TestCoversAgreesWithMatch checks Covers against its definition on every
// pair of small filters: filter covers sub exactly when every name sub
// matches, filter matches too. The names are deep enough and include a
// level ("z") that no filter names, so that a counterexample, when there
// is one, is among them.
func TestCoversAgreesWithMatch(t *testing.T) {
	filters := allFilters([]string{"a", "$SYS", "", "+", "#"}, 4)
	names := allNames([]string{"a", "$SYS", "", "z"}, 5)
	matches := make([][]bool, len(filters))
	for i, f := range filters {
		matches[i] = make([]bool, len(names))
		for j, n := range names {
			matches[i][j] = topic.Match(f, n)
		}
	}
	for i, f := range filters {
		for k, s := range filters {
			want := true
			for j := range names {
				if matches[k][j] && !matches[i][j] {
					want = false
					break
				}
			}
			if got := Covers(f, s); got != want {
				t.Fatalf("Covers(%q, %q) = %v, but by Match it is %v", f, s, got, want)
			}
		}
	}
}

func allNames(levels []string, depth int) []string {
	return all(levels, depth, topic.ValidateName)
}

func allFilters(levels []string, depth int) []string {
	return all(levels, depth, topic.ValidateFilter)
}

// all returns every string of 1..depth levels from levels that valid
// accepts.
func all(levels []string, depth int, valid func(string) error) []string {
	var out []string
	cur := []string{""}
	for d := 1; d <= depth; d++ {
		var next []string
		for _, p := range cur {
			for _, l := range levels {
				s := l
				if d > 1 {
					s = p + "/" + l
				}
				next = append(next, s)
			}
		}
		for _, s := range next {
			if valid(s) == nil {
				out = append(out, s)
			}
		}
		cur = next
	}
	return out
}
