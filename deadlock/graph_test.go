package deadlock

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func ring(g *Graph[string], n int) {
	for i := 1; i <= n; i++ {
		next := uint64(i%n + 1)
		g.SetWaits(uint64(i), fmt.Sprintf("k%d", next), []Edge{{Holder: next}})
	}
}

func TestFindCycleRing(t *testing.T) {
	for _, n := range []int{2, 3, 8, 64} {
		g := NewGraph[string]()
		ring(g, n)
		c := g.FindCycle(1)
		if len(c) != n || !IsCycle(c) || c[0].Waiter != 1 {
			t.Fatalf("ring %d: %v", n, c)
		}
		if ChooseVictim(c, Youngest, 1) != uint64(n) || ChooseVictim(c, Requester, 1) != 1 {
			t.Fatalf("ring %d: victims", n)
		}
		// Break it: the last waiter stops waiting.
		g.Remove(uint64(n))
		if c := g.FindCycle(1); c != nil {
			t.Fatalf("ring %d broken but found %v", n, c)
		}
		if c := g.FindAnyCycle(); c != nil {
			t.Fatalf("any: %v", c)
		}
	}
}

func TestSetWaitsReplacesAndDedups(t *testing.T) {
	g := NewGraph[int]()
	g.SetWaits(1, 7, []Edge{{Holder: 2, Soft: true}, {Holder: 2}, {Holder: 1}, {Holder: 3, Soft: true}})
	if got := fmt.Sprint(g.Edges()); got != "[1 -> 2 1 ~> 3]" {
		t.Fatalf("edges %s", got)
	}
	if w, e := g.Len(); w != 1 || e != 2 {
		t.Fatalf("len %d %d", w, e)
	}
	g.SetWaits(1, 8, []Edge{{Holder: 4}})
	if on, ok := g.WaitingOn(1); !ok || on != 8 || fmt.Sprint(g.Edges()) != "[1 -> 4]" {
		t.Fatalf("replace: %v %v %v", on, ok, g.Edges())
	}
	g.Lock()
	if !g.HasEdgeLocked(Edge{Waiter: 1, Holder: 4}) || g.HasEdgeLocked(Edge{Waiter: 1, Holder: 2}) {
		t.Error("HasEdgeLocked")
	}
	if g.mu.indeg[2] != 0 || g.mu.indeg[4] != 1 {
		t.Errorf("in-degrees %v", g.mu.indeg)
	}
	g.Unlock()
	if !g.Remove(1) || g.Remove(1) {
		t.Error("Remove")
	}
	if w, e := g.Len(); w+e != 0 || len(g.mu.indeg) != 0 {
		t.Fatal("not empty")
	}
}

func TestFindCycleNotThroughStart(t *testing.T) {
	// 1 -> 2 -> 3 -> 2: a cycle exists, but not through 1.
	g := NewGraph[int]()
	g.SetWaits(1, 0, []Edge{{Holder: 2}})
	g.SetWaits(2, 0, []Edge{{Holder: 3}})
	g.SetWaits(3, 0, []Edge{{Holder: 2, Soft: true}})
	if c := g.FindCycle(1); c != nil {
		t.Fatalf("through 1: %v", c)
	}
	c := g.FindAnyCycle()
	if !IsCycle(c) || len(c) != 2 || fmt.Sprint(c) != "[2 -> 3 3 ~> 2]" {
		t.Fatalf("any: %v", c)
	}
}

// TestFindCycleRandom compares FindCycle with a brute-force reachability
// closure on random graphs. Replay with the logged seed.
func TestFindCycleRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for trial := range 500 {
		n := 2 + rng.IntN(8)
		g := NewGraph[int]()
		adj := make([][]bool, n+1)
		for i := range adj {
			adj[i] = make([]bool, n+1)
		}
		for w := 1; w <= n; w++ {
			if rng.IntN(3) == 0 {
				continue // not waiting
			}
			var es []Edge
			for range 1 + rng.IntN(2) {
				h := 1 + rng.IntN(n)
				es = append(es, Edge{Holder: uint64(h), Soft: rng.IntN(2) == 0})
				if h != w {
					adj[w][h] = true
				}
			}
			g.SetWaits(uint64(w), w, es)
		}
		// Floyd-Warshall closure.
		for k := 1; k <= n; k++ {
			for i := 1; i <= n; i++ {
				for j := 1; j <= n; j++ {
					adj[i][j] = adj[i][j] || adj[i][k] && adj[k][j]
				}
			}
		}
		anyCycle := false
		for v := 1; v <= n; v++ {
			c := g.FindCycle(uint64(v))
			want := adj[v][v]
			anyCycle = anyCycle || want
			if (c != nil) != want || c != nil && (!IsCycle(c) || c[0].Waiter != uint64(v)) {
				t.Fatalf("seed %d trial %d node %d: got %v, want cycle=%v", seed, trial, v, c, want)
			}
		}
		if c := g.FindAnyCycle(); (c != nil) != anyCycle || c != nil && !IsCycle(c) {
			t.Fatalf("seed %d trial %d: FindAnyCycle %v, want %v", seed, trial, c, anyCycle)
		}
	}
}

func TestWriteDOT(t *testing.T) {
	g := NewGraph[string]()
	g.SetWaits(2, `X "a"`, []Edge{{Holder: 1}})
	g.SetWaits(3, `S "a"`, []Edge{{Holder: 2, Soft: true}})
	var b strings.Builder
	err := g.WriteDOT(&b, &DOTOptions[string]{
		WaitLabel: func(s string) string { return s },
		NodeLabel: func(id uint64) string { return fmt.Sprintf("T%d", id) },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `digraph "waitfor" {
  rankdir=LR;
  node [shape=box];
  t1 [label="T1"];
  t2 [label="T2"];
  t3 [label="T3"];
  t2 -> t1 [label="X \"a\""];
  t3 -> t2 [label="S \"a\"", style=dashed];
}
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := NewGraph[int]().WriteDOT(&b, nil); err != nil || !strings.Contains(b.String(), "digraph") {
		t.Fatal(err, b.String())
	}
}

func TestEnums(t *testing.T) {
	if Immediate.String() != "immediate" || Periodic.String() != "periodic" || Off.String() != "off" || Mode(9).String() != "deadlock.Mode(9)" {
		t.Error("Mode.String")
	}
	if Youngest.String() != "youngest" || Requester.String() != "requester" || VictimPolicy(5).Valid() {
		t.Error("VictimPolicy")
	}
	if !strings.HasPrefix(ErrDeadlock.Error(), "txkv: ") {
		t.Error("prefix")
	}
	if ChooseVictim(nil, Youngest, 3) != 0 || IsCycle(nil) {
		t.Error("empty cycle")
	}
	if ChooseVictim([]Edge{{Waiter: 1, Holder: 2}, {Waiter: 2, Holder: 1}}, Requester, 9) != 2 {
		t.Error("requester outside the cycle falls back to youngest")
	}
}

func TestSweeper(t *testing.T) {
	var n atomic.Int64
	fired := make(chan struct{}, 1)
	s, err := StartSweeper(time.Millisecond, func() {
		if n.Add(1) == 3 {
			fired <- struct{}{}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("sweeper did not run")
	}
	s.Stop()
	s.Stop()
	if _, err := StartSweeper(0, func() {}); err == nil {
		t.Error("zero interval accepted")
	}
	if _, err := StartSweeper(time.Second, nil); err == nil || errors.Is(err, ErrDeadlock) {
		t.Error("nil sweep accepted")
	}
}

// TestChooseVictimByAge: Youngest picks the largest age, ties by the
// larger ID; a transaction without an age of its own is as old as its ID;
// Requester ignores ages.
func TestChooseVictimByAge(t *testing.T) {
	cycle := []Edge{{Waiter: 9, Holder: 5}, {Waiter: 5, Holder: 7}, {Waiter: 7, Holder: 9}}
	ages := map[uint64]uint64{9: 2} // txn 9 retries a transaction first started as txn 2
	age := func(txn uint64) uint64 {
		if a, ok := ages[txn]; ok {
			return a
		}
		return txn
	}
	if v := ChooseVictimByAge(cycle, Youngest, 9, age); v != 7 {
		t.Errorf("youngest by age: %d, want 7", v)
	}
	if v := ChooseVictimByAge(cycle, Youngest, 9, nil); v != 9 {
		t.Errorf("youngest by ID: %d, want 9", v)
	}
	ages[5] = 7 // ties with txn 7: the larger ID loses
	if v := ChooseVictimByAge(cycle, Youngest, 9, age); v != 7 {
		t.Errorf("tie: %d, want 7", v)
	}
	ages[5] = 8
	if v := ChooseVictimByAge(cycle, Youngest, 9, age); v != 5 {
		t.Errorf("youngest by age: %d, want 5", v)
	}
	if v := ChooseVictimByAge(cycle, Requester, 9, age); v != 9 {
		t.Errorf("requester: %d, want 9", v)
	}
	if v := ChooseVictimByAge(nil, Youngest, 9, age); v != 0 {
		t.Errorf("empty cycle: %d", v)
	}
}
