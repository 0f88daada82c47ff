package topic

import (
	"strings"
	"testing"
)

// FuzzValidate checks the validators against each other and against
// properties that hold for every input.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"a/b", "sport/#", "+/+", "$share/g/a/#", "$share/g", "a+", "#/", "\x00", "\xff", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		nameErr := ValidateName(s)
		filterErr := ValidateFilter(s)
		if nameErr == nil {
			if HasWildcard(s) {
				t.Errorf("valid name %q has a wildcard", s)
			}
			if filterErr != nil && !strings.HasPrefix(s, SharePrefix) {
				t.Errorf("valid name %q is not a valid filter: %v", s, filterErr)
			}
			if !strings.HasPrefix(s, SharePrefix) && !Match(s, s) {
				t.Errorf("name %q does not match itself as a filter", s)
			}
		}
		if filterErr == nil {
			if g, inner, ok := ParseShared(s); ok && (g == "" || inner == "") {
				t.Errorf("valid shared filter %q has group %q, inner %q", s, g, inner)
			}
		}
	})
}

// FuzzTrieMatch checks Trie.Match against Match for one valid filter and
// one valid name.
func FuzzTrieMatch(f *testing.F) {
	for _, tt := range matchTests {
		f.Add(tt.filter, tt.name)
	}
	f.Fuzz(func(t *testing.T, filter, name string) {
		if ValidateFilter(filter) != nil || ValidateName(name) != nil {
			return
		}
		tr := NewTrie[int, int]()
		tr.Add(filter, 1, 1)
		inner := filter
		if _, in, ok := ParseShared(filter); ok {
			inner = in
		}
		n := 0
		tr.Match(name, func(int, int) { n++ }, func(_, _ string, ms []Member[int, int]) { n += len(ms) })
		if want := Match(inner, name); (n == 1) != want || n > 1 {
			t.Errorf("filter %q, name %q: trie matched %d, Match says %v", filter, name, n, want)
		}
		if !tr.Remove(filter, 1) || tr.Len() != 0 || !tr.isEmpty() {
			t.Errorf("filter %q: Remove did not empty the trie", filter)
		}
	})
}
