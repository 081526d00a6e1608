package deadlock

import (
	"fmt"
	"testing"
)

// BenchmarkFindCycle: the search from the request that closes a ring of
// length n (the worst case: every node is visited). Expect linear growth.
func BenchmarkFindCycle(b *testing.B) {
	for _, n := range []int{2, 4, 8, 16, 32, 64} {
		b.Run(fmt.Sprintf("len=%d", n), func(b *testing.B) {
			g := NewGraph[string]()
			ring(g, n)
			g.Lock()
			defer g.Unlock()
			b.ReportAllocs()
			for b.Loop() {
				if c := g.FindCycleLocked(1); len(c) != n {
					b.Fatal(c)
				}
			}
		})
	}
}

// BenchmarkFindCycleNoInEdges: a new waiter nobody waits for, behind a
// chain of n waiters (a hot key's queue): answered without a search.
func BenchmarkFindCycleNoInEdges(b *testing.B) {
	for _, n := range []int{16, 256} {
		b.Run(fmt.Sprintf("chain=%d", n), func(b *testing.B) {
			g := NewGraph[int]()
			for i := 1; i < n; i++ {
				g.SetWaits(uint64(i+1), 0, []Edge{{Holder: uint64(i), Soft: true}})
			}
			g.Lock()
			defer g.Unlock()
			for b.Loop() {
				if g.FindCycleLocked(uint64(n)) != nil {
					b.Fatal("cycle")
				}
			}
		})
	}
}
