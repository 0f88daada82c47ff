package bench

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestHistBucketsCoverValues(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := int64(r.Uint64N(1 << histTopBits))
		if r.IntN(4) == 0 {
			v = int64(r.IntN(4096)) // dense near the exact range's edge
		}
		lo, hi := histBounds(histIndex(v))
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, histIndex(v), lo, hi)
		}
		if lo > 0 && float64(hi-lo)/float64(lo) > 1.0/128 {
			t.Fatalf("bucket [%d, %d] wider than 1/128 of its value", lo, hi)
		}
	}
	// Buckets are contiguous: each starts one past where the last ended.
	for i := 1; i < histBuckets; i++ {
		_, prevHi := histBounds(i - 1)
		if lo, _ := histBounds(i); lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, prevHi)
		}
	}
	if histIndex(100*int64(time.Second)) != histMaxIdx || histIndex(-5) != 0 {
		t.Fatal("out-of-range values are not clamped")
	}
}

func TestHistQuantiles(t *testing.T) {
	// 1 µs, 2 µs, ... 100 ms: quantile q is q·100 ms.
	var uniform latencyHist
	for i := int64(1); i <= 100000; i++ {
		uniform.record(i * 1000)
	}
	// Two halves merged: the percentiles of the whole.
	var a, b latencyHist
	for i := int64(1); i <= 100000; i++ {
		if i%2 == 0 {
			a.record(i * 1000)
		} else {
			b.record(i * 1000)
		}
	}
	a.merge(&b)
	// Ten samples of 1 ms and one of 60 s: the tail is the outlier, exactly.
	var outlier latencyHist
	for range 999 {
		outlier.record(int64(time.Millisecond))
	}
	outlier.record(int64(60 * time.Second))
	// Small values are exact.
	var small latencyHist
	for _, v := range []int64{10, 20, 30, 40, 200} {
		small.record(v)
	}
	cases := []struct {
		name string
		h    *latencyHist
		q    float64
		want time.Duration
	}{
		{"uniform p50", &uniform, 0.5, 50 * time.Millisecond},
		{"uniform p90", &uniform, 0.9, 90 * time.Millisecond},
		{"uniform p99", &uniform, 0.99, 99 * time.Millisecond},
		{"uniform p99.9", &uniform, 0.999, 99900 * time.Microsecond},
		{"uniform max", &uniform, 1, 100 * time.Millisecond},
		{"uniform min", &uniform, 0, time.Microsecond},
		{"merged p50", &a, 0.5, 50 * time.Millisecond},
		{"merged p99", &a, 0.99, 99 * time.Millisecond},
		{"outlier p50", &outlier, 0.5, time.Millisecond},
		{"outlier p99.9", &outlier, 0.999, time.Millisecond},
		{"outlier max", &outlier, 1, 60 * time.Second},
		{"small p50", &small, 0.5, 30},
		{"small p80", &small, 0.8, 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.h.quantile(tc.q)
			if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 0.005 {
				t.Errorf("quantile(%g) = %v, want %v within 0.5%% (off by %.3f%%)", tc.q, got, tc.want, rel*100)
			}
		})
	}
	if uniform.n != 100000 || a.n != 100000 || time.Duration(uniform.max) != 100*time.Millisecond || uniform.mean() != 50000500*time.Nanosecond {
		t.Errorf("n %d/%d max %v mean %v", uniform.n, a.n, time.Duration(uniform.max), uniform.mean())
	}
	var empty latencyHist
	if empty.quantile(0.5) != 0 || empty.mean() != 0 {
		t.Error("empty histogram is not zero")
	}
}

func TestSeqTracker(t *testing.T) {
	cases := []struct {
		name         string
		seqs         []uint32
		unique, dups int
	}{
		{"in order", []uint32{0, 1, 2, 3}, 4, 0},
		{"repeat", []uint32{0, 1, 1, 2, 0}, 3, 2},
		{"gap then fill", []uint32{0, 5, 3, 4, 5}, 4, 1},
		{"far ahead slides, old is not fresh", []uint32{0, 1, seqWindow * 3, 0, seqWindow * 3}, 3, 2},
		{"just inside the window", []uint32{0, seqWindow - 1, 0}, 2, 1},
		{"slide by a little keeps the recent", []uint32{100, 200, seqWindow + 100, 200, 100}, 3, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tr seqTracker
			dups := 0
			for _, s := range tc.seqs {
				if !tr.add(s) {
					dups++
				}
			}
			if int(tr.count()) != tc.unique || dups != tc.dups {
				t.Errorf("unique %d dups %d, want %d %d", tr.count(), dups, tc.unique, tc.dups)
			}
		})
	}
}

// Values beyond the histogram's range: every sample is 100 s, so every
// percentile must be 100 s (max is exact, and the docs say it covers them).
func TestHistBeyondRange(t *testing.T) {
	var h latencyHist
	for range 10 {
		h.record(int64(100 * time.Second))
	}
	if got := h.quantile(0.5); got != 100*time.Second {
		t.Errorf("p50 of ten 100 s samples = %v, max = %v", got, time.Duration(h.max))
	}
}

// Nearest-rank: p99 of 60 samples is the 60th (ceil(0.99*60) = 60), so
// one outlier among 60 is the p99. Rounding picks the 59th.
func TestHistRank(t *testing.T) {
	var h latencyHist
	for range 59 {
		h.record(int64(time.Millisecond))
	}
	h.record(int64(time.Second))
	if got := h.quantile(0.99); got < 900*time.Millisecond {
		t.Errorf("p99 of 59x1ms + 1x1s = %v: only 59/60 = 98.3%% of samples are <= it", got)
	}
	var g latencyHist
	for range 1598 {
		g.record(int64(time.Millisecond))
	}
	g.record(int64(time.Second))
	g.record(int64(time.Second))
	if got := g.quantile(0.999); got < 900*time.Millisecond {
		t.Errorf("p99.9 of 1598x1ms + 2x1s = %v: 1598/1600 = 99.875%% <= it", got)
	}
}

// Merging many subscribers' histograms saturates a bucket rather than
// wrapping it to a small count.
func TestHistMergeSaturates(t *testing.T) {
	var a, b latencyHist
	a.counts[5], b.counts[5] = math.MaxUint32-1, 10
	a.merge(&b)
	if a.counts[5] != math.MaxUint32 {
		t.Fatalf("merged count %d, want %d", a.counts[5], uint32(math.MaxUint32))
	}
}
