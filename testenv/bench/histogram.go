package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets, HDR style: exact below 256 ns, then 128
// buckets per power of two, so a reported quantile is within 1/256 (0.4%) of a recorded value.
// Recording is one index computation and an increment, with no allocation; a Histogram is not
// safe for concurrent use: give each worker its own and Merge them.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	min    uint64
	max    uint64
}

const (
	subBits     = 7
	subCount    = 1 << subBits // buckets per power of two
	linearLimit = 2 * subCount // values below this have a bucket each
	// The largest shift is 64-(subBits+1) = 56: every uint64 has a bucket.
	histBuckets = linearLimit + (64-(subBits+1))*subCount
)

func bucketOf(v uint64) int {
	if v < linearLimit {
		return int(v)
	}
	s := bits.Len64(v) - (subBits + 1) // v>>s is in [subCount, 2*subCount)
	return linearLimit + (s-1)*subCount + int(v>>s) - subCount
}

// bucketMid returns the middle of bucket i's range, the value a quantile in it reports.
func bucketMid(i int) uint64 {
	if i < linearLimit {
		return uint64(i)
	}
	k := i - linearLimit
	s := uint(k/subCount + 1)
	low := uint64(k%subCount+subCount) << s
	return low + (uint64(1)<<s)/2
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest recorded value, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min returns the smallest recorded value, exactly.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Quantile returns the q-quantile (0 < q <= 1) by the nearest-rank method: the value below
// which ceil(q*n) of the n recorded values lie, to within the bucket resolution and clamped to
// [Min, Max]. Quantile(1) is Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(bucketMid(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
