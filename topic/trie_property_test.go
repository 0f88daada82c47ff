package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Over a small alphabet of levels, random filters and names collide often,
// so the trie is checked against Match on many real overlaps.
var (
	propNameLevels   = []string{"a", "b", "$x", ""}
	propFilterLevels = []string{"a", "b", "$x", "", "+"}
)

func randomName(r *rand.Rand) string {
	levels := make([]string, 1+r.IntN(4))
	for i := range levels {
		levels[i] = propNameLevels[r.IntN(len(propNameLevels))]
	}
	return strings.Join(levels, "/")
}

func randomFilter(r *rand.Rand) string {
	levels := make([]string, 1+r.IntN(4))
	for i := range levels {
		levels[i] = propFilterLevels[r.IntN(len(propFilterLevels))]
	}
	if r.IntN(4) == 0 {
		levels[len(levels)-1] = "#"
	}
	f := strings.Join(levels, "/")
	if r.IntN(5) == 0 {
		f = fmt.Sprintf("$share/g%d/%s", r.IntN(2), f)
	}
	return f
}

// expectMatch computes with Match what Trie.Match should report for name,
// given subscriptions filters[i] by key i, in collect's canonical form.
func expectMatch(filters []string, removed map[int]bool, name string) matched {
	var m matched
	groups := map[string][]string{} // "group|filter" -> members in insertion order
	var order []string
	for i, f := range filters {
		if removed[i] {
			continue
		}
		key := fmt.Sprint(i)
		if g, inner, ok := ParseShared(f); ok {
			if Match(inner, name) {
				id := g + "|" + inner
				if _, seen := groups[id]; !seen {
					order = append(order, id)
				}
				groups[id] = append(groups[id], key+":"+f)
			}
			continue
		}
		if Match(f, name) {
			m.plain = append(m.plain, key+":"+f)
		}
	}
	for _, id := range order {
		m.shared = append(m.shared, id+"|"+strings.Join(groups[id], ","))
	}
	sort.Strings(m.plain)
	sort.Strings(m.shared)
	return m
}

func TestTrieAgreesWithMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		filters := make([]string, 1+r.IntN(40))
		for i := range filters {
			filters[i] = randomFilter(r)
			for ValidateFilter(filters[i]) != nil { // "" is a filter of one empty level
				filters[i] = randomFilter(r)
			}
		}
		tr := NewTrie[string, string]()
		for i, f := range filters {
			tr.Add(f, fmt.Sprint(i), f)
		}
		removed := map[int]bool{}
		check := func() {
			t.Helper()
			for range 30 {
				name := randomName(r)
				if name == "" {
					continue
				}
				got := collect(tr, name, func(s string) string { return s })
				want := expectMatch(filters, removed, name)
				if !slices.Equal(got.plain, want.plain) || !slices.Equal(got.shared, want.shared) {
					t.Fatalf("round %d, name %q, filters %q (removed %v):\ngot  %+v\nwant %+v",
						round, name, filters, removed, got, want)
				}
			}
		}
		check()
		// Remove about half and check again: pruning must not lose
		// anything still subscribed.
		for i := range filters {
			if r.IntN(2) == 0 {
				if !tr.Remove(filters[i], fmt.Sprint(i)) {
					t.Fatalf("Remove(%q) failed", filters[i])
				}
				removed[i] = true
			}
		}
		if tr.Len() != len(filters)-len(removed) {
			t.Fatalf("Len = %d, want %d", tr.Len(), len(filters)-len(removed))
		}
		check()
	}
}
