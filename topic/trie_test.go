package topic

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// sub is a test subscription value.
type sub struct{ qos byte }

// matched collects what Trie.Match reports, in a canonical order.
type matched struct {
	plain  []string // "key:qos"
	shared []string // "group|filter|key:qos,key:qos"
}

func collect[V any](tr *Trie[string, V], name string, format func(V) string) matched {
	var m matched
	tr.Match(name,
		func(k string, v V) { m.plain = append(m.plain, k+":"+format(v)) },
		func(g, f string, ms []Member[string, V]) {
			var parts []string
			for _, x := range ms {
				parts = append(parts, x.Key+":"+format(x.Val))
			}
			m.shared = append(m.shared, g+"|"+f+"|"+strings.Join(parts, ","))
		})
	sort.Strings(m.plain)
	sort.Strings(m.shared)
	return m
}

func qosString(v sub) string { return fmt.Sprint(v.qos) }

// isEmpty reports whether the trie holds no nodes below the root.
func (t *Trie[K, V]) isEmpty() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.root.empty()
}

// Checks [MQTT-3.3.2-3] [MQTT-4.7.3-4].
func TestTrieMatchesSpecExamples(t *testing.T) {
	for _, tt := range matchTests {
		tr := NewTrie[string, sub]()
		tr.Add(tt.filter, "c", sub{1})
		got := collect(tr, tt.name, qosString)
		want := matched{}
		if tt.want {
			want.plain = []string{"c:1"}
		}
		if !slices.Equal(got.plain, want.plain) || len(got.shared) != 0 {
			t.Errorf("filter %q, name %q: got %+v, want %+v", tt.filter, tt.name, got, want)
		}

		// The same filter in a shared group.
		tr = NewTrie[string, sub]()
		tr.Add("$share/g/"+tt.filter, "c", sub{2})
		got = collect(tr, tt.name, qosString)
		want = matched{}
		if tt.want {
			want.shared = []string{"g|" + tt.filter + "|c:2"}
		}
		if len(got.plain) != 0 || !slices.Equal(got.shared, want.shared) {
			t.Errorf("shared filter %q, name %q: got %+v, want %+v", tt.filter, tt.name, got, want)
		}
	}
}

func TestTrieAddReplaceRemove(t *testing.T) {
	tr := NewTrie[string, sub]()
	if tr.Add("a/b", "c1", sub{0}) {
		t.Error("first Add reported a replacement")
	}
	if !tr.Add("a/b", "c1", sub{2}) {
		t.Error("second Add of the same key and filter did not report a replacement")
	}
	if tr.Len() != 1 {
		t.Errorf("Len = %d, want 1", tr.Len())
	}
	if got := collect(tr, "a/b", qosString).plain; !slices.Equal(got, []string{"c1:2"}) {
		t.Errorf("after replace: %v, want the new value", got)
	}
	if tr.Add("a/+", "c1", sub{1}) {
		t.Error("Add of another filter reported a replacement")
	}
	if tr.Len() != 2 {
		t.Errorf("Len = %d, want 2", tr.Len())
	}
	if tr.Remove("a/c", "c1") || tr.Remove("a/b", "c2") || tr.Remove("a", "c1") || tr.Remove("a/b/c", "c1") {
		t.Error("Remove of a missing subscription reported success")
	}
	if tr.Remove("$share/g/a/b", "c1") {
		t.Error("Remove of a shared filter removed a plain subscription")
	}
	if !tr.Remove("a/b", "c1") {
		t.Error("Remove failed")
	}
	if tr.Remove("a/b", "c1") {
		t.Error("second Remove reported success")
	}
	if got := collect(tr, "a/b", qosString).plain; !slices.Equal(got, []string{"c1:1"}) {
		t.Errorf("after remove: %v, want only a/+", got)
	}
	if tr.Len() != 1 {
		t.Errorf("Len = %d, want 1", tr.Len())
	}
}

func TestTrieManySubscribersPerFilter(t *testing.T) {
	tr := NewTrie[int, int]()
	const n = 1000 // well past indexThreshold
	for i := range n {
		tr.Add("x/y", i, i)
	}
	for i := range n {
		if !tr.Add("x/y", i, i+1) {
			t.Fatalf("replacing %d did not report a replacement", i)
		}
	}
	check := func(want map[int]int) {
		t.Helper()
		got := map[int]int{}
		tr.Match("x/y", func(k, v int) {
			if _, dup := got[k]; dup {
				t.Errorf("key %d reported twice", k)
			}
			got[k] = v
		}, nil)
		if len(got) != len(want) {
			t.Fatalf("matched %d subscribers, want %d", len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("key %d: val %d, want %d", k, got[k], v)
			}
		}
		if tr.Len() != len(want) {
			t.Fatalf("Len = %d, want %d", tr.Len(), len(want))
		}
	}
	want := map[int]int{}
	for i := range n {
		want[i] = i + 1
	}
	check(want)
	// Remove in an order that moves elements around (swap removal) and
	// crosses the index threshold on the way down.
	for i := 0; i < n; i += 2 {
		if !tr.Remove("x/y", i) {
			t.Fatalf("Remove %d failed", i)
		}
		delete(want, i)
	}
	check(want)
	for i := n - 1; i > 0; i -= 2 {
		if !tr.Remove("x/y", i) {
			t.Fatalf("Remove %d failed", i)
		}
		delete(want, i)
		if len(want)%97 == 0 {
			check(want)
		}
	}
	check(want)
	if !tr.isEmpty() {
		t.Error("trie not pruned after removing every subscriber")
	}
}

func TestTrieOverlappingFiltersReportedOnceEach(t *testing.T) {
	tr := NewTrie[string, sub]()
	filters := []string{"#", "a/#", "a/b/#", "a/+/c", "+/b/c", "a/b/c", "+/+/+", "a/b/c/#", "b/#"}
	for i, f := range filters {
		tr.Add(f, "c1", sub{byte(i)})
	}
	tr.Add("a/b/c", "c2", sub{9})
	got := collect(tr, "a/b/c", qosString).plain
	want := []string{"c1:0", "c1:1", "c1:2", "c1:3", "c1:4", "c1:5", "c1:6", "c1:7", "c2:9"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestTrieHashMatchesParent(t *testing.T) {
	tr := NewTrie[string, sub]()
	tr.Add("sport/tennis/player1/#", "c", sub{1})
	for _, name := range []string{"sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon"} {
		if got := collect(tr, name, qosString).plain; len(got) != 1 {
			t.Errorf("%q: got %v, want one match", name, got)
		}
	}
	if got := collect(tr, "sport/tennis", qosString).plain; len(got) != 0 {
		t.Errorf("sport/tennis: got %v, want none", got)
	}
}

// Checks [MQTT-4.7.2-1].
func TestTrieDollarTopics(t *testing.T) {
	tr := NewTrie[string, sub]()
	tr.Add("#", "all", sub{})
	tr.Add("+/monitor/Clients", "plus", sub{})
	tr.Add("$SYS/#", "sys", sub{})
	tr.Add("$SYS/monitor/+", "sysplus", sub{})
	tr.Add("$share/g/#", "shared-all", sub{})
	tr.Add("$share/g/$SYS/#", "shared-sys", sub{})
	got := collect(tr, "$SYS/monitor/Clients", qosString)
	if want := []string{"sys:0", "sysplus:0"}; !slices.Equal(got.plain, want) {
		t.Errorf("plain: got %v, want %v", got.plain, want)
	}
	if want := []string{"g|$SYS/#|shared-sys:0"}; !slices.Equal(got.shared, want) {
		t.Errorf("shared: got %v, want %v", got.shared, want)
	}
	got = collect(tr, "x/monitor/Clients", qosString)
	if want := []string{"all:0", "plus:0"}; !slices.Equal(got.plain, want) {
		t.Errorf("non-$ name: got %v, want %v", got.plain, want)
	}
}

func TestTrieSharedGroups(t *testing.T) {
	tr := NewTrie[string, sub]()
	tr.Add("$share/consumer1/sport/tennis/+", "a", sub{0})
	tr.Add("$share/consumer1/sport/tennis/+", "b", sub{1})
	tr.Add("$share/consumer1/sport/tennis/+", "c", sub{2})
	tr.Add("$share/consumer2/sport/tennis/+", "a", sub{1})
	tr.Add("$share/consumer1/sport/#", "d", sub{0}) // same name, different filter: another group
	tr.Add("sport/tennis/+", "a", sub{2})           // plain subscription to the inner filter
	if tr.Len() != 6 {
		t.Errorf("Len = %d, want 6", tr.Len())
	}
	if !tr.Add("$share/consumer1/sport/tennis/+", "a", sub{1}) {
		t.Error("re-adding a group member did not report a replacement")
	}
	got := collect(tr, "sport/tennis/player1", qosString)
	wantShared := []string{
		"consumer1|sport/#|d:0",
		"consumer1|sport/tennis/+|a:1,b:1,c:2", // insertion order kept across the replacement
		"consumer2|sport/tennis/+|a:1",
	}
	if !slices.Equal(got.shared, wantShared) {
		t.Errorf("shared: got %v, want %v", got.shared, wantShared)
	}
	if want := []string{"a:2"}; !slices.Equal(got.plain, want) {
		t.Errorf("plain: got %v, want %v", got.plain, want)
	}

	if tr.Remove("$share/consumer3/sport/tennis/+", "a") || tr.Remove("$share/consumer1/sport/tennis/+", "x") {
		t.Error("Remove of a missing membership reported success")
	}
	if !tr.Remove("$share/consumer1/sport/tennis/+", "b") {
		t.Error("Remove of a member failed")
	}
	got = collect(tr, "sport/tennis/player1", qosString)
	wantShared[1] = "consumer1|sport/tennis/+|a:1,c:2" // order kept
	if !slices.Equal(got.shared, wantShared) {
		t.Errorf("after remove: got %v, want %v", got.shared, wantShared)
	}
	tr.Remove("$share/consumer1/sport/tennis/+", "a")
	tr.Remove("$share/consumer1/sport/tennis/+", "c")
	got = collect(tr, "sport/tennis/player1", qosString)
	wantShared = []string{"consumer1|sport/#|d:0", "consumer2|sport/tennis/+|a:1"}
	if !slices.Equal(got.shared, wantShared) {
		t.Errorf("after emptying a group: got %v, want %v", got.shared, wantShared)
	}
	if tr.Len() != 3 {
		t.Errorf("Len = %d, want 3", tr.Len())
	}
}

func TestTriePruning(t *testing.T) {
	tr := NewTrie[int, int]()
	filters := []string{
		"a", "a/b", "a/b/c", "a/+/c", "a/#", "#", "+", "+/+", "/", "//", "/+",
		"$SYS/#", "$share/g/a/b", "$share/h/a/b", "$share/g/#", "x/y/z/w/v",
	}
	for k := range 3 {
		for _, f := range filters {
			tr.Add(f, k, 0)
		}
	}
	if tr.Len() != 3*len(filters) {
		t.Fatalf("Len = %d, want %d", tr.Len(), 3*len(filters))
	}
	// Remove in reverse so parents are emptied before and after children.
	for k := range 3 {
		for i := len(filters) - 1; i >= 0; i-- {
			if !tr.Remove(filters[i], k) {
				t.Fatalf("Remove(%q, %d) failed", filters[i], k)
			}
		}
	}
	if tr.Len() != 0 {
		t.Errorf("Len = %d, want 0", tr.Len())
	}
	if !tr.isEmpty() {
		r := tr.root
		t.Errorf("root not empty: %d children, more %+v, %d subscriptions", len(r.kids), r.x, len(r.subs.list))
	}
	// Remove of an intermediate level that has no subscription of its own
	// must not prune its live children.
	tr.Add("a/b/c", 1, 0)
	if tr.Remove("a/b", 1) {
		t.Error("Remove of a prefix reported success")
	}
	if got := collectInt(tr, "a/b/c"); len(got.plain) != 1 {
		t.Errorf("a/b/c lost after removing its prefix: %v", got)
	}
}

func collectInt(tr *Trie[int, int], name string) matched { // helper for int keys
	var m matched
	tr.Match(name, func(k, v int) { m.plain = append(m.plain, fmt.Sprint(k)) }, nil)
	return m
}

func TestTrieNilCallbacks(t *testing.T) {
	tr := NewTrie[int, int]()
	tr.Add("a", 1, 1)
	tr.Add("$share/g/a", 1, 1)
	tr.Match("a", nil, nil) // must not panic
	if got := collectInt(tr, "a"); len(got.plain) != 1 {
		t.Errorf("got %v", got)
	}
}

func TestTrieKeepsNoReferenceToCallerStrings(t *testing.T) {
	// The filter is a substring of a bigger buffer, as it would be if taken
	// from a packet; the trie must not keep pointers into it.
	buf := strings.Repeat("x", 1024) + "$share/grp/a/b"
	lo := uintptr(unsafe.Pointer(unsafe.StringData(buf)))
	inBuf := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return p >= lo && p < lo+uintptr(len(buf))
	}
	tr := NewTrie[int, int]()
	tr.Add(buf[1024:], 1, 1)
	tr.Add(buf[1024+len("$share/grp/"):], 1, 1) // plain "a/b"
	tr.Match("a/b", nil, func(g, f string, _ []Member[int, int]) {
		if inBuf(g) || inBuf(f) {
			t.Error("group or filter points into the caller's buffer")
		}
	})
	for _, k := range tr.root.kids {
		if inBuf(k.level) {
			t.Error("a level key points into the caller's buffer")
		}
	}
}

// TestTrieManyChildren crosses smallKids both ways: children move from
// the slice to a map and all stay reachable, and pruning empties both.
func TestTrieManyChildren(t *testing.T) {
	tr := NewTrie[int, int]()
	const n = 3 * smallKids
	for i := range n {
		tr.Add(fmt.Sprintf("a/%d/x", i), i, i)
		tr.Add(fmt.Sprintf("$share/g/a/%d", i), i, i)
	}
	for i := range n {
		if got := collectInt(tr, fmt.Sprintf("a/%d/x", i)); len(got.plain) != 1 || got.plain[0] != fmt.Sprint(i) {
			t.Fatalf("a/%d/x matched %v", i, got.plain)
		}
	}
	if a := tr.root.literal("a"); a == nil || a.x == nil || a.x.kids == nil || a.kids != nil {
		t.Fatal("children past smallKids are not in a map")
	}
	for i := range n {
		if !tr.Remove(fmt.Sprintf("a/%d/x", i), i) || !tr.Remove(fmt.Sprintf("$share/g/a/%d", i), i) {
			t.Fatalf("remove %d failed", i)
		}
	}
	if !tr.isEmpty() {
		t.Error("trie not empty after removing everything")
	}
}

func TestTrieConcurrent(t *testing.T) {
	tr := NewTrie[int, int]()
	filters := []string{"a/b", "a/+", "a/#", "#", "+/b", "$share/g/a/b", "$share/g/+/+", "c/d/e", "$SYS/x"}
	names := []string{"a/b", "a/c", "c/d/e", "$SYS/x", "a"}
	const workers, iters = 4, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(2)
		go func() { // writer: add and remove its own keys
			defer wg.Done()
			for i := range iters {
				f := filters[i%len(filters)]
				key := w*1000 + i%7
				tr.Add(f, key, i)
				if i%3 != 0 {
					tr.Remove(f, key)
				}
			}
			for i := range 7 { // clean up whatever is left
				for _, f := range filters {
					tr.Remove(f, w*1000+i)
				}
			}
		}()
		go func() { // reader
			defer wg.Done()
			n := 0
			for i := range iters {
				tr.Match(names[i%len(names)],
					func(int, int) { n++ },
					func(_, _ string, ms []Member[int, int]) { n += len(ms) })
				_ = tr.Len()
			}
		}()
	}
	wg.Wait()
	if tr.Len() != 0 {
		t.Errorf("Len = %d after everything was removed", tr.Len())
	}
	if !tr.isEmpty() {
		t.Error("trie not pruned")
	}
}

// TestNodeSize: most subscriptions make a node or two of their own, each
// within the 64 bytes size class.
func TestNodeSize(t *testing.T) {
	if n := unsafe.Sizeof(node[*int, [8]byte]{}); n > 64 {
		t.Errorf("node is %d bytes, more than 64", n)
	}
}
