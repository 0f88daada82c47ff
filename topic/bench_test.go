package topic

import (
	"strconv"
	"testing"
)

// benchTrie builds a trie of n filters shaped like a device fleet: mostly
// exact "devices/{d}/telemetry", every tenth device also "devices/{d}/+",
// 100 subscribers to "devices/+/status" and a few '#'.
func benchTrie(n int) *Trie[int, byte] {
	tr := NewTrie[int, byte]()
	key := 0
	add := func(f string) { tr.Add(f, key, 1); key++ }
	for range 3 {
		add("#")
		add("devices/#")
	}
	for range 100 {
		add("devices/+/status")
	}
	for d := 0; key < n; d++ {
		add("devices/" + strconv.Itoa(d) + "/telemetry")
		if d%10 == 0 && key < n {
			add("devices/" + strconv.Itoa(d) + "/+")
		}
	}
	return tr
}

func benchMatch(b *testing.B, name string, want int) {
	tr := benchTrie(100_000)
	if tr.Len() != 100_000 {
		b.Fatalf("Len = %d", tr.Len())
	}
	n := 0
	each := func(int, byte) { n++ }
	shared := func(string, string, []Member[int, byte]) { n++ }
	tr.Match(name, each, shared)
	if n != want {
		b.Fatalf("%q matched %d subscriptions, want %d", name, n, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Match(name, each, shared)
	}
}

// BenchmarkMatch: exact + devices/4200/+ + 6 '#'.
func BenchmarkMatch(b *testing.B) { benchMatch(b, "devices/4200/telemetry", 8) }

// BenchmarkMatchMiss: only the '#' filters match.
func BenchmarkMatchMiss(b *testing.B) { benchMatch(b, "devices/4201/nothing", 6) }

// BenchmarkMatchFanout: 100 subscribers to devices/+/status plus 6 '#'.
func BenchmarkMatchFanout(b *testing.B) { benchMatch(b, "devices/4201/status", 106) }

func BenchmarkMatchParallel(b *testing.B) {
	tr := benchTrie(100_000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		each := func(int, byte) { n++ }
		for pb.Next() {
			tr.Match("devices/4200/telemetry", each, nil)
		}
	})
}

func BenchmarkAdd(b *testing.B) {
	const n = 1 << 16
	filters := make([]string, n)
	for i := range filters {
		filters[i] = "devices/" + strconv.Itoa(i) + "/telemetry"
	}
	tr := NewTrie[int, byte]()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == n { // keep measuring inserts, not replacements
			b.StopTimer()
			tr, i = NewTrie[int, byte](), 0
			b.StartTimer()
		}
		tr.Add(filters[i], i, 1)
		i++
	}
}

func BenchmarkAddRemove(b *testing.B) {
	tr := benchTrie(100_000)
	b.ReportAllocs()
	for b.Loop() {
		tr.Add("devices/4200/telemetry", -1, 1)
		tr.Remove("devices/4200/telemetry", -1)
	}
}

func BenchmarkValidateFilter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateFilter("$share/g/devices/+/telemetry/#"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateName(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateName("devices/4200/telemetry"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatchFunc(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if !Match("devices/+/telemetry/#", "devices/4200/telemetry/temp") {
			b.Fatal("no match")
		}
	}
}

func BenchmarkValidateFilterPlain(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateFilter("devices/+/telemetry/#"); err != nil {
			b.Fatal(err)
		}
	}
}
