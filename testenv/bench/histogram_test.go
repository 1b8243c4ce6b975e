package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramKnownData(t *testing.T) {
	var h Histogram
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 5000 * time.Microsecond},
		{0.9, 9000 * time.Microsecond},
		{0.99, 9900 * time.Microsecond},
		{0.999, 9990 * time.Microsecond},
		{0.0001, 1 * time.Microsecond},
	} {
		if got := h.Quantile(tc.q); !within(got, tc.want, 0.01) {
			t.Errorf("Quantile(%v) = %v, want %v within 1%%", tc.q, got, tc.want)
		}
	}
	if h.Count() != 10000 || h.Max() != 10*time.Millisecond || h.Min() != time.Microsecond || h.Quantile(1) != h.Max() {
		t.Errorf("count %d max %v min %v q1 %v", h.Count(), h.Max(), h.Min(), h.Quantile(1))
	}
}

func TestHistogramRandomAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var a, b Histogram
	var all []time.Duration
	for i := range 20000 {
		// Log-uniform from 1 ns to about 17 s: every bucket range is crossed.
		d := time.Duration(1 << r.IntN(34))
		d += time.Duration(r.Int64N(int64(d)))
		all = append(all, d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	slices.Sort(all)
	for _, q := range []float64{0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999} {
		want := all[int(q*float64(len(all))+0.999999)-1] // nearest rank
		if got := a.Quantile(q); !within(got, want, 0.01) {
			t.Errorf("Quantile(%v) = %v, want %v within 1%%", q, got, want)
		}
	}
	if a.Count() != uint64(len(all)) || a.Max() != all[len(all)-1] || a.Min() != all[0] {
		t.Errorf("after Merge: count %d max %v min %v", a.Count(), a.Max(), a.Min())
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Contiguous, monotonic, and every value within 1/256 of its bucket's middle.
	prev := -1
	for v := uint64(0); v < 1<<16; v++ {
		i := bucketOf(v)
		if i != prev && i != prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d", v, i, prev)
		}
		prev = i
	}
	for _, v := range []uint64{255, 256, 1000, 123456789, 1 << 40, 1<<63 - 1, 1<<64 - 1} {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of range", v, i)
		}
		mid := bucketMid(i)
		diff := max(mid, v) - min(mid, v)
		if float64(diff) > float64(v)/256+1 {
			t.Errorf("value %d reported as %d", v, mid)
		}
	}
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 {
		t.Error("empty histogram reports values")
	}
	h.Record(-time.Second)
	if h.Max() != 0 {
		t.Errorf("negative duration recorded as %v", h.Max())
	}
}

func within(got, want time.Duration, rel float64) bool {
	d := float64(got - want)
	return d <= rel*float64(want) && -d <= rel*float64(want)
}
