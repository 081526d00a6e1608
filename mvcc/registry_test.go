package mvcc

import (
	"math"
	"testing"
)

// TestCounts checks the registry's small multiset against a map model.
func TestCounts(t *testing.T) {
	rng := newRand(testSeed(t))
	var c counts
	model := map[uint64]int{}
	for i := 0; i < 10_000; i++ {
		v := uint64(rng.IntN(8))
		if model[v] > 0 && rng.IntN(2) == 0 {
			c.remove(v)
			model[v]--
		} else {
			c.add(v)
			model[v]++
		}
		want := uint64(math.MaxUint64)
		total := 0
		for k, n := range model {
			if n > 0 {
				want = min(want, k)
				total += n
			}
		}
		got := 0
		for _, e := range c {
			if e.n <= 0 || model[e.v] != int(e.n) {
				t.Fatalf("step %d: entry %v, model %d", i, e, model[e.v])
			}
			got += int(e.n)
		}
		eq(t, total, got)
		eq(t, want, c.min(math.MaxUint64))
	}
}
