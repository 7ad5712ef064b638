package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h histogram
	var all []time.Duration
	for range 100000 {
		// Log-uniform from 1 µs to 1 s, the span of round trips.
		d := time.Duration(float64(time.Microsecond) * float64(uint64(1)<<rng.IntN(20)) * (1 + rng.Float64()))
		h.record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 1} {
		exact := all[int(q*float64(len(all)))-1]
		got := h.quantile(q)
		if got < exact || float64(got) > float64(exact)*(1+1.0/histSub)+1 {
			t.Errorf("quantile(%v) = %v, exact %v: off by more than 1/%d", q, got, exact, histSub)
		}
	}
	if h.max != all[len(all)-1] || h.n != uint64(len(all)) {
		t.Errorf("max %v n %d, want %v %d", h.max, h.n, all[len(all)-1], len(all))
	}
}

func TestHistogramEdges(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Errorf("empty histogram quantile = %v, want 0", h.quantile(0.5))
	}
	h.record(-5) // clock oddities count as zero, not a panic
	h.record(1<<63 - 1)
	if h.quantile(1) != 1<<63-1 || h.quantile(0.5) != 0 {
		t.Errorf("quantiles %v %v, want 0 and max", h.quantile(0.5), h.quantile(1))
	}
	for i := range histBuckets {
		if histIndex(histUpper(i)) != i || (i > 0 && histIndex(histUpper(i-1)+1) != i) {
			t.Fatalf("bucket %d: upper bound %d does not map back", i, histUpper(i))
		}
	}
	var m histogram
	m.merge(&h)
	m.merge(&h)
	if m.n != 4 || m.max != h.max {
		t.Errorf("merge: n %d max %v, want 4 and %v", m.n, m.max, h.max)
	}
}
