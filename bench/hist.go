package bench

import (
	"math"
	"math/bits"
	"time"
)

// latencyHist is a log-linear (HDR-style) histogram of durations in
// nanoseconds: exact below 256 ns, then 128 buckets per power of two, so a
// bucket is at most 1/128 of its value wide and the midpoint we report is
// within 0.4% of any value in it. It covers 0 to 2^36 ns (about 68 s);
// larger values land in the last bucket and still set max exactly.
//
// One histogram belongs to one goroutine (a subscriber's reader) and is
// merged at the end, so recording takes no lock and no atomic.
type latencyHist struct {
	counts [histBuckets]uint32 // uint32: 4e9 samples in one bucket of one subscriber is beyond any run
	n      uint64
	max    int64
	sum    float64
}

const (
	histSubBits = 7                // 128 sub-buckets per power of two
	histExact   = 2 << histSubBits // values below 256 have their own bucket
	histTopBits = 36               // 2^36 ns ≈ 68.7 s
	histBuckets = histExact + (histTopBits-histSubBits-1)*(1<<histSubBits)
	histMaxIdx  = histBuckets - 1
)

// histIndex maps a value to its bucket.
func histIndex(v int64) int {
	if v < histExact {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - histSubBits - 1 // v>>e is in [128, 256)
	i := histExact + (e-1)<<histSubBits + int(v>>e) - 1<<histSubBits
	if i > histMaxIdx {
		return histMaxIdx
	}
	return i
}

// histBounds returns the smallest and largest value of bucket i.
func histBounds(i int) (lo, hi int64) {
	if i < histExact {
		return int64(i), int64(i)
	}
	e := (i-histExact)>>histSubBits + 1
	m := int64((i-histExact)&(1<<histSubBits-1) + 1<<histSubBits)
	return m << e, (m+1)<<e - 1
}

func (h *latencyHist) record(v int64) {
	if v < 0 {
		v = 0 // clocks of two hosts can disagree; a negative latency is 0, not garbage
	}
	h.counts[histIndex(v)]++
	h.n++
	h.sum += float64(v)
	if v > h.max {
		h.max = v
	}
}

func (h *latencyHist) merge(o *latencyHist) {
	if o == nil {
		return
	}
	for i, c := range o.counts {
		// Saturate: the merged histogram of many subscribers can pass
		// 2^32 in one bucket, and a wrapped count would skew every
		// percentile; a saturated one skews only that bucket's weight.
		if sum := uint64(h.counts[i]) + uint64(c); sum > math.MaxUint32 {
			h.counts[i] = math.MaxUint32
		} else {
			h.counts[i] = uint32(sum)
		}
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0..1): the midpoint of the
// bucket holding the q·n-th sample, never more than the true maximum.
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	// Nearest rank: the smallest sample with at least q·n samples at or
	// below it (the epsilon keeps 0.07·100 from becoming 8).
	rank := uint64(math.Ceil(q*float64(h.n) - 1e-9))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			if i == histMaxIdx {
				return time.Duration(h.max) // values beyond the range land here
			}
			lo, hi := histBounds(i)
			return time.Duration(min((lo+hi)/2, h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *latencyHist) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Coarse buckets, for charts and JSON: 8 per power of two (each at most
// 12.5% of its value wide), single values below 16 ns.
const coarseSub = 3

// coarseIndex maps a value (ns, not negative) to its coarse bucket.
func coarseIndex(v int64) int {
	if v < 2<<coarseSub {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - coarseSub - 1 // v>>e is in [8, 16)
	return 2<<coarseSub + (e-1)<<coarseSub + int(v>>e) - 1<<coarseSub
}

// coarseBounds returns the smallest and largest value of coarse bucket i.
func coarseBounds(i int) (lo, hi int64) {
	if i < 2<<coarseSub {
		return int64(i), int64(i)
	}
	e := (i-2<<coarseSub)>>coarseSub + 1
	m := int64((i-2<<coarseSub)&(1<<coarseSub-1) + 1<<coarseSub)
	return m << e, (m+1)<<e - 1
}

// buckets returns the histogram at coarse resolution, in microseconds,
// from the first bucket with a sample to the last (empty ones between
// included). A fine bucket lies within one coarse bucket, since both
// split powers of two evenly; the last fine bucket, which holds the
// values beyond the range, is counted at the maximum.
func (h *latencyHist) buckets() []Bucket {
	if h.n == 0 {
		return nil
	}
	counts := map[int]uint64{}
	first, last := -1, -1
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		lo, _ := histBounds(i)
		if i == histMaxIdx {
			lo = h.max
		}
		ci := coarseIndex(lo)
		counts[ci] += uint64(c)
		if first < 0 || ci < first {
			first = ci
		}
		last = max(last, ci)
	}
	out := make([]Bucket, 0, last-first+1)
	for i := first; i <= last; i++ {
		lo, hi := coarseBounds(i)
		out = append(out, Bucket{Lo: float64(lo) / 1e3, Hi: float64(hi) / 1e3, Count: counts[i]})
	}
	return out
}
